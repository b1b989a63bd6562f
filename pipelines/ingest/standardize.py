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
import pyarrow as pa
import pyarrow.compute as pc

from cip.categories import canonical_category
from pipelines.ingest.phone_validity import true_mask, valid_numbers

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


def _apply(fn: Callable[[Hashable], object], values: list, parallel: bool = False) -> list:
    """``[fn(v) for v in values]``; with ``parallel`` and many values, in worker processes (one
    per core; ``fn`` must be picklable)."""
    workers = os.cpu_count() or 1
    if not (parallel and workers > 1 and len(values) >= PARALLEL_MIN):
        return [fn(v) for v in values]
    chunks = np.array_split(np.asarray(values, dtype=object), workers * 4)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = pool.map(partial(_apply_all, fn), [list(c) for c in chunks])
        return [v for part in parts for v in part]


def _per_distinct(s: pd.Series, rule: Callable[[pa.Array], pa.Array]) -> pd.Series:
    """``rule`` (Arrow strings in → Arrow strings out) over the distinct values of ``s`` at once,
    mapped back to every row; nulls stay null."""
    encoded = pa.chunked_array(pa.array(s.astype(STR).array)).combine_chunks().dictionary_encode()
    values = rule(encoded.dictionary)
    return pd.Series(pd.arrays.ArrowStringArray(values.take(encoded.indices)), index=s.index)


#: White space as Python's ``str.strip`` and ``\s`` see it, within ASCII.
_ASCII_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
_ASCII_SPACE_RUNS = "[\t\n\x0b\x0c\r\x1c-\x1f ]+"


def _text_rule(fn: Callable[[str], str | None], ascii_fn: Callable[[pa.Array], pa.Array]):
    """A rule for :func:`_per_distinct`: ``fn`` (Python, per value) on text with non-ASCII
    characters, and ``ascii_fn`` (Arrow kernels giving what ``fn`` gives on ASCII text, checked
    in ``tests/test_standardize.py``) on all-ASCII text at once."""

    def rule(values: pa.Array) -> pa.Array:
        ascii_ = true_mask(pc.string_is_ascii(values))
        out = np.full(len(values), None, dtype=object)
        if ascii_.any():
            out[ascii_] = ascii_fn(values.filter(pa.array(ascii_))).to_numpy(zero_copy_only=False)
        rest = np.flatnonzero(~ascii_ & true_mask(pc.is_valid(values)))
        out[rest] = [fn(v) for v in values.take(pa.array(rest, pa.int64())).to_pylist()]
        return pa.array(out, pa.string())

    return rule


def _ascii_fold(values: pa.Array) -> pa.Array:
    """:func:`_fold` for ASCII text: white-space runs to one space, trimmed."""
    return pc.utf8_trim(pc.replace_substring_regex(values, _ASCII_SPACE_RUNS, " "), " ")


def _empty_to_null(values: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)


def blank_to_na(s: pd.Series) -> pd.Series:
    """Strip surrounding white space; empty strings become ``<NA>``."""
    s = s.astype(STR).str.strip()
    return s.mask(s == "")


def normalize_email(s: pd.Series) -> pd.Series:
    """Trim, NFKC-normalize and lower-case an e-mail. Gmail dots and ``+tags`` are kept:
    ``john.smith+shop@gmail.com`` and ``johnsmith@gmail.com`` stay different identifiers
    (merging them is the identity stage's decision, not a cleaning rule)."""
    return _per_distinct(blank_to_na(s), _EMAIL)


def _email_text(value: str) -> str:
    return unicodedata.normalize("NFKC", value).strip().lower()


_EMAIL = _text_rule(_email_text, lambda a: pc.ascii_lower(pc.utf8_trim(a, _ASCII_SPACE)))


def is_valid_email(normalized: pd.Series) -> pd.Series:
    """True where a normalized e-mail is well formed; ``<NA>`` stays ``<NA>``."""
    return normalized.str.fullmatch(EMAIL_RE.pattern).astype("boolean")


#: A plainly written phone: digits and the usual separators, an optional leading ``+`` or ``(``.
_PLAIN_PHONE = re.compile(r"^\+?\(?[0-9][0-9 ().\-/]*$")
_NOT_DIGIT = re.compile(r"[^0-9]")
#: Regions whose national numbers this module reads without the general parser:
#: region → (trunk prefix, country calling code).
_NATIONAL = {"US": ("1", 1), "CA": ("1", 1), "GB": ("0", 44), "DE": ("0", 49), "FR": ("0", 33)}


_UNREAD, _INVALID, _READ = 0, 1, 2
_CALLING_CODES = pa.array(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE), pa.int64())


def _quick_numbers(texts: pa.Array, regions: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read plainly written phones directly, all at once (``phonenumbers.parse`` costs about
    24 µs a value). Returns ``(status, calling codes, national numbers)``: status
    :data:`_READ` for a number read, :data:`_INVALID` for one that is surely not valid (a US/CA
    number starting with 0, bar the ``011`` international prefix), and :data:`_UNREAD` where the
    text is not that plain or its region is not in :data:`_NATIONAL` (the general parser decides).
    ``texts`` are trimmed, with a ``00`` prefix already written as ``+``."""
    n = len(texts)
    status = np.full(n, _UNREAD, dtype=np.int8)
    codes = np.zeros(n, dtype=np.int64)
    nationals = np.zeros(n, dtype=np.int64)
    plain = true_mask(pc.match_substring_regex(texts, _PLAIN_PHONE.pattern))
    plus = plain & true_mask(pc.starts_with(texts, "+"))
    digits = pc.replace_substring_regex(texts, _NOT_DIGIT.pattern, "")

    def finish(at: np.ndarray, code: np.ndarray, national: pa.Array) -> None:
        length = pc.utf8_length(national).to_numpy(zero_copy_only=False)
        ok = (length > 0) & (length <= 17) & ~true_mask(pc.starts_with(national, "0"))
        status[at[ok]] = _READ
        codes[at[ok]] = code[ok]
        nationals[at[ok]] = pc.cast(national.filter(pa.array(ok)), pa.int64()).to_numpy()

    # +<calling code><national number>: calling codes are prefix-free, as phonenumbers reads them
    at = np.flatnonzero(plus)
    rest = digits.take(pa.array(at))
    for size in (1, 2, 3):
        if not len(at):
            break
        head = pc.cast(pc.utf8_slice_codeunits(rest, 0, size), pa.int64())
        known = true_mask(pc.is_in(head, value_set=_CALLING_CODES))
        finish(at[known], head.to_numpy()[known], pc.utf8_slice_codeunits(rest.filter(pa.array(known)), size))
        at, rest = at[~known], rest.filter(pa.array(~known))
    # national numbers of the regions in _NATIONAL, with or without their trunk prefix
    for region, (trunk, code) in _NATIONAL.items():
        at = np.flatnonzero(plain & ~plus & true_mask(pc.equal(regions, region)))
        if not len(at):
            continue
        number = digits.take(pa.array(at))
        if trunk == "1":
            zero = true_mask(pc.starts_with(number, "0")) & ~true_mask(pc.starts_with(number, "011"))
            status[at[zero]] = _INVALID
            at, number = at[~zero], number.filter(pa.array(~zero))
        trunked = pc.starts_with(number, trunk)
        national = pc.if_else(trunked, pc.utf8_slice_codeunits(number, len(trunk)), number)
        finish(at, np.full(len(at), code, dtype=np.int64), national)
    return status, codes, nationals


def _phones_e164(raws: pa.Array, regions: pa.Array) -> pa.Array:
    """E.164 of each (phone text, region). Plainly written numbers are read directly and checked
    all at once (:func:`phone_validity.valid_numbers`, what ``is_valid_number`` says); the rest,
    and plain numbers that read as invalid (perhaps a misreading), go through the general parser.
    ``raws``: trimmed (Arrow's white space; the general parser's input is trimmed by Python's)."""
    texts = pc.replace_substring_regex(raws, "^00", "+")
    status, codes, nationals = _quick_numbers(texts, regions)
    read = np.flatnonzero(status == _READ)
    valid = valid_numbers(codes[read], nationals[read])
    out = np.full(len(raws), None, dtype=object)
    good = read[valid]
    e164 = pc.binary_join_element_wise(
        "+", pc.cast(pa.array(codes[good]), pa.string()), pc.cast(pa.array(nationals[good]), pa.string()), ""
    )
    out[good] = e164.to_numpy(zero_copy_only=False)
    general = np.concatenate([np.flatnonzero(status == _UNREAD), read[~valid]])
    pairs = [
        (_international(raw.strip()), region)
        for raw, region in zip(
            raws.take(pa.array(general, pa.int64())).to_pylist(),
            regions.take(pa.array(general, pa.int64())).to_pylist(),
            strict=True,
        )
    ]
    out[general] = _apply(_parsed_pair, pairs, parallel=True)
    return pa.array(out, pa.string())


def _international(text: str) -> str:
    return "+" + text[2:] if text.startswith("00") else text


def _parsed_pair(pair: tuple[str, str | None]) -> str | None:
    return _parsed_e164(*pair)


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
    Unparseable or invalid numbers become ``<NA>``. Each distinct (number, region) is read once."""
    raw = blank_to_na(raw)
    regions = pd.Series(region, index=raw.index) if isinstance(region, str) else region
    pairs = raw.str.cat(regions.fillna("US").astype(STR), sep="\x1f").where(raw.notna())

    def e164(distinct: pa.Array) -> pa.Array:
        parts = pc.split_pattern(distinct, "\x1f", max_splits=1)
        return _phones_e164(pc.list_element(parts, 0), pc.list_element(parts, 1))

    return _per_distinct(pairs, e164)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return _SPACES.sub(" ", text).strip()


def normalize_name(s: pd.Series) -> pd.Series:
    """Unicode-normalize (NFC), collapse spaces and title-case a personal name; accents are kept."""
    return _per_distinct(blank_to_na(s), _TITLED)


def _titled(value: str) -> str | None:
    return unicodedata.normalize("NFC", _fold(value).title()) or None


_TITLED = _text_rule(_titled, lambda a: _empty_to_null(pc.ascii_title(_ascii_fold(a))))


def ascii_key(s: pd.Series) -> pd.Series:
    """Lower-case, accent-free matching key (``Müller`` → ``muller``, ``José`` → ``jose``)."""

    return _per_distinct(s, _KEY)


def _key_text(value: str) -> str | None:
    decomposed = unicodedata.normalize("NFKD", value)
    text = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    text = re.sub(r"[^a-z0-9 ]", "", text)
    return _SPACES.sub(" ", text).strip() or None


def _ascii_key(values: pa.Array) -> pa.Array:
    kept = pc.replace_substring_regex(pc.ascii_lower(values), "[^a-z0-9 ]", "")
    return _empty_to_null(pc.utf8_trim(pc.replace_substring_regex(kept, " +", " "), " "))


_KEY = _text_rule(_key_text, _ascii_key)


def normalize_address(s: pd.Series) -> pd.Series:
    """Collapse spaces and title-case street/city text (abbreviations are left to matching)."""
    return _per_distinct(blank_to_na(s), _TITLED)


def normalize_postcode(s: pd.Series) -> pd.Series:
    """Upper-case postcodes and collapse inner spaces (``sw1a  1aa`` → ``SW1A 1AA``)."""
    return _per_distinct(blank_to_na(s), _POSTCODE)


def _postcode_text(value: str) -> str | None:
    return _fold(value).upper() or None


_POSTCODE = _text_rule(_postcode_text, lambda a: _empty_to_null(pc.ascii_upper(_ascii_fold(a))))


_DATE_FORMATS: dict[str, str] = {"US": "%m/%d/%Y", "CA": "%m/%d/%Y"}
_DAY_FIRST_SLASH = "%d/%m/%Y"


def parse_birth_date(raw: pd.Series, country: pd.Series) -> pd.Series:
    """Birth dates in ISO (``YYYY-MM-DD`` or compact ``YYYYMMDD``), ``DD.MM.YYYY`` or slash format; slash order follows the country
    (``MM/DD/YYYY`` for US/CA, ``DD/MM/YYYY`` elsewhere). Impossible dates → NaT."""
    raw = blank_to_na(raw)
    out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]")
    iso = raw.str.fullmatch(r"\d{4}-\d{2}-\d{2}").fillna(False)
    compact = raw.str.fullmatch(r"\d{8}").fillna(False)  # YYYYMMDD (ISO 8601 basic format)
    dotted = raw.str.fullmatch(r"\d{1,2}\.\d{1,2}\.\d{4}").fillna(False)
    slash = raw.str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}").fillna(False)
    out[iso] = pd.to_datetime(raw[iso], format="%Y-%m-%d", errors="coerce")
    out[compact] = pd.to_datetime(raw[compact], format="%Y%m%d", errors="coerce")
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

    def canonical(values: pa.Array) -> pa.Array:
        return pa.array(
            [None if v is None else canonical_category(v) for v in values.to_pylist()], pa.string()
        )

    return _per_distinct(blank_to_na(s), canonical).fillna("unknown")
