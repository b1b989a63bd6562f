"""Standardization rules: pure, vectorized functions (Series in → Series out).

Every rule keeps what it cannot standardize visible: a value that cannot be parsed becomes
``<NA>`` here, and the caller keeps the raw value next to it and flags or quarantines the row.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Hashable
from concurrent.futures import ProcessPoolExecutor
from functools import partial

import numpy as np
import pandas as pd
import phonenumbers

from cip.categories import canonical_category

EMAIL_RE = re.compile(
    r"^[a-z0-9._%+\-]+@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}$"
)
_SPACES = re.compile(r"\s+")
#: Arrow-backed strings: vectorized string kernels instead of per-element Python.
STR = "string[pyarrow]"
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


#: Distinct values above which a slow scalar rule runs in worker processes (one per core).
PARALLEL_MIN = 40_000


def _apply_all(fn: Callable[[Hashable], object], values: list) -> list:
    return [fn(v) for v in values]


def _map_unique(
    s: pd.Series, fn: Callable[[Hashable], object], dtype: str = STR, parallel: bool = False
) -> pd.Series:
    """Apply a scalar function once per distinct non-null value (fast on repetitive columns).
    ``parallel`` spreads many distinct values over worker processes (``fn`` must be picklable)."""
    out = pd.Series(pd.NA, index=s.index, dtype=dtype)
    present = s.notna()
    if not present.any():
        return out
    codes, uniques = pd.factorize(s[present])
    workers = os.cpu_count() or 1
    if parallel and workers > 1 and len(uniques) >= PARALLEL_MIN:
        chunks = np.array_split(np.asarray(uniques, dtype=object), workers * 4)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = pool.map(partial(_apply_all, fn), [list(c) for c in chunks])
            mapped = np.array([v for part in parts for v in part], dtype=object)
    else:
        mapped = np.array([fn(u) for u in uniques], dtype=object)
    out[present] = pd.array(mapped[codes], dtype=dtype)
    return out


def blank_to_na(s: pd.Series) -> pd.Series:
    """Strip surrounding white space; empty strings become ``<NA>``."""
    s = s.astype(STR).str.strip()
    return s.mask(s == "")


def normalize_email(s: pd.Series) -> pd.Series:
    """Trim, NFKC-normalize and lower-case an e-mail. Gmail dots and ``+tags`` are kept:
    ``john.smith+shop@gmail.com`` and ``johnsmith@gmail.com`` stay different identifiers
    (merging them is the identity stage's decision, not a cleaning rule)."""
    s = blank_to_na(s)
    return _map_unique(s, lambda v: unicodedata.normalize("NFKC", str(v)).strip().lower())


def is_valid_email(normalized: pd.Series) -> pd.Series:
    """True where a normalized e-mail is well formed; ``<NA>`` stays ``<NA>``."""
    return normalized.str.fullmatch(EMAIL_RE.pattern).astype("boolean")


#: A plainly written phone: digits and the usual separators, an optional leading ``+`` or ``(``.
_PLAIN_PHONE = re.compile(r"^\+?\(?[0-9][0-9 ().\-/]*$")
_NOT_DIGIT = re.compile(r"[^0-9]")
#: Regions whose national numbers this module reads without the general parser:
#: region → (trunk prefix, country calling code).
_NATIONAL = {"US": ("1", 1), "CA": ("1", 1), "GB": ("0", 44), "DE": ("0", 49), "FR": ("0", 33)}
#: Whether a number is valid, and its E.164 text, by (calling code, national number): one
#: number is written many ways (``(406) 486-9834``, ``406.486.9834``, ``+1 406 486 9834``) and
#: ``phonenumbers.is_valid_number`` costs about 19 µs.
_E164_BY_NUMBER: dict[tuple[int, int], str | None] = {}
_E164_BY_NUMBER_MAX = 2_000_000
_UNKNOWN = "?"  # the quick reading cannot tell; the general parser decides


def _quick_e164(text: str, region: str | None) -> str | None:
    """E.164 of a plainly written phone read directly (``phonenumbers.parse`` costs about
    24 µs a value, most of the rule's time); None when the number is surely not valid;
    :data:`_UNKNOWN` when the text is not that plain, is in a region not in :data:`_NATIONAL`,
    or reads as an invalid number (it may be a misreading: the general parser decides)."""
    if not _PLAIN_PHONE.match(text):
        return _UNKNOWN
    digits = _NOT_DIGIT.sub("", text)
    if text.startswith("+"):
        for size in (1, 2, 3):  # calling codes are prefix-free, as phonenumbers reads them
            if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
                code, national = int(digits[:size]), digits[size:]
                break
        else:
            return _UNKNOWN
    elif region in _NATIONAL:
        trunk, code = _NATIONAL[region]
        if trunk == "1" and digits.startswith("0") and not digits.startswith("011"):
            return None  # no US/CA number starts with 0, bar the 011 international prefix
        national = digits[len(trunk) :] if digits.startswith(trunk) else digits
    else:
        return _UNKNOWN
    if not national or national.startswith("0") or len(national) > 17:
        return _UNKNOWN
    key = (code, int(national))
    e164 = _E164_BY_NUMBER.get(key, _UNKNOWN)
    if e164 == _UNKNOWN:
        number = phonenumbers.PhoneNumber(country_code=code, national_number=key[1])
        e164 = f"+{code}{key[1]}" if phonenumbers.is_valid_number(number) else None
        if len(_E164_BY_NUMBER) >= _E164_BY_NUMBER_MAX:
            _E164_BY_NUMBER.clear()
        _E164_BY_NUMBER[key] = e164
    return _UNKNOWN if e164 is None else e164


def _phone_e164(raw: str, region: str) -> str | None:
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    quick = _quick_e164(text, region)
    return _parsed_e164(text, region) if quick == _UNKNOWN else quick


def _parsed_e164(text: str, region: str | None) -> str | None:
    """E.164 through ``phonenumbers``' general parser (``text``: trimmed, ``00`` already ``+``)."""
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(raw: pd.Series, region: pd.Series | str) -> pd.Series:
    """Phone numbers to E.164. Numbers without a country code use ``region`` (the customer's or
    store's ISO-2 country); an international prefix (``+`` or ``00``) wins over the region.
    Unparseable or invalid numbers become ``<NA>``."""
    raw = blank_to_na(raw)
    regions = pd.Series(region, index=raw.index) if isinstance(region, str) else region
    pairs = raw.str.cat(regions.fillna("US").astype(STR), sep="\x1f")
    pairs = pairs.where(raw.notna())
    return _map_unique(pairs, _phone_pair, parallel=True)


def _phone_pair(value: object) -> str | None:
    raw, region = str(value).split("\x1f", 1)
    return _phone_e164(raw, region)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text).strip()


def normalize_name(s: pd.Series) -> pd.Series:
    """Unicode-normalize (NFC), collapse spaces and title-case a personal name; accents are kept."""
    s = blank_to_na(s)
    return _map_unique(s, lambda v: unicodedata.normalize("NFC", _fold(str(v)).title()) or None)


def ascii_key(s: pd.Series) -> pd.Series:
    """Lower-case, accent-free matching key (``Müller`` → ``muller``, ``José`` → ``jose``)."""

    def key(v: object) -> str | None:
        decomposed = unicodedata.normalize("NFKD", str(v))
        text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
        text = re.sub(r"[^a-z0-9 ]", "", text)
        return _SPACES.sub(" ", text).strip() or None

    return _map_unique(s, key)


def normalize_address(s: pd.Series) -> pd.Series:
    """Collapse spaces and title-case street/city text (abbreviations are left to matching)."""
    s = blank_to_na(s)
    return _map_unique(s, lambda v: unicodedata.normalize("NFC", _fold(str(v)).title()) or None)


def normalize_postcode(s: pd.Series) -> pd.Series:
    """Upper-case postcodes and collapse inner spaces (``sw1a  1aa`` → ``SW1A 1AA``)."""
    s = blank_to_na(s)
    return _map_unique(s, lambda v: _fold(str(v)).upper() or None)


_DATE_FORMATS: dict[str, str] = {"US": "%m/%d/%Y", "CA": "%m/%d/%Y"}
_DAY_FIRST_SLASH = "%d/%m/%Y"


def parse_birth_date(raw: pd.Series, country: pd.Series) -> pd.Series:
    """Birth dates in ISO, ``DD.MM.YYYY`` or slash format; slash order follows the country
    (``MM/DD/YYYY`` for US/CA, ``DD/MM/YYYY`` elsewhere). Impossible dates → NaT."""
    raw = blank_to_na(raw)
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    iso = raw.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False)
    dotted = raw.str.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4}").fillna(False)
    slash = raw.str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}").fillna(False)
    out[iso] = pd.to_datetime(raw[iso], format="%Y-%m-%d", errors="coerce")
    out[dotted] = pd.to_datetime(raw[dotted], format="%d.%m.%Y", errors="coerce")
    month_first = slash & country.isin(list(_DATE_FORMATS)).fillna(False)
    out[month_first] = pd.to_datetime(raw[month_first], format="%m/%d/%Y", errors="coerce")
    day_first = slash & ~month_first
    out[day_first] = pd.to_datetime(raw[day_first], format=_DAY_FIRST_SLASH, errors="coerce")
    return out.dt.date.astype("object").where(out.notna(), None)


def parse_flag(s: pd.Series) -> pd.Series:
    """Consent-style flags (true/false/yes/no/1/0/y/n, any case) to nullable booleans."""
    s = blank_to_na(s).str.lower()
    out = pd.Series(pd.NA, index=s.index, dtype="boolean")
    out[s.isin(_TRUE).fillna(False)] = True
    out[s.isin(_FALSE).fillna(False)] = False
    return out


def map_category(s: pd.Series) -> pd.Series:
    """Raw category spellings to the eight canonical categories (``unknown`` if unmapped)."""
    return _map_unique(blank_to_na(s), canonical_category).fillna("unknown")
