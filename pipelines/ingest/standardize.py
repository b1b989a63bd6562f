"""Standardization rules: pure, vectorized functions (Series in → Series out).

Every rule keeps what it cannot standardize visible: a value that cannot be parsed becomes
``<NA>`` here, and the caller keeps the raw value next to it and flags or quarantines the row.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Hashable

import numpy as np
import pandas as pd
import phonenumbers

from cip.categories import canonical_category

EMAIL_RE = re.compile(r"^[a-z0-9._%+\-]+@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,}$")
_SPACES = re.compile(r"\s+")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _map_unique(s: pd.Series, fn: Callable[[Hashable], object], dtype: str = "string") -> pd.Series:
    """Apply a scalar function once per distinct non-null value (fast on repetitive columns)."""
    out = pd.Series(pd.NA, index=s.index, dtype=dtype)
    present = s.notna()
    if not present.any():
        return out
    codes, uniques = pd.factorize(s[present])
    mapped = np.array([fn(u) for u in uniques], dtype=object)
    out[present] = pd.array(mapped[codes], dtype=dtype)
    return out


def blank_to_na(s: pd.Series) -> pd.Series:
    """Strip surrounding white space; empty strings become ``<NA>``."""
    s = s.astype("string").str.strip()
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


def _phone_e164(raw: str, region: str) -> str | None:
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
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
    pairs = raw.str.cat(regions.fillna("US").astype("string"), sep="\x1f")
    pairs = pairs.where(raw.notna())
    return _map_unique(pairs, lambda v: _phone_e164(*str(v).split("\x1f", 1)))


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


def parse_utc(s: pd.Series) -> pd.Series:
    """ISO-8601 timestamps with offsets (or ``Z``) to UTC; unparseable → NaT."""
    s = blank_to_na(s)
    return pd.to_datetime(s, utc=True, format="ISO8601", errors="coerce")


def local_to_utc(local: pd.Series, tz: pd.Series) -> pd.Series:
    """Local wall-clock times in per-row IANA zones to UTC. Ambiguous (DST fall-back) times take
    the first occurrence; non-existent (spring-forward) times shift forward. Bad → NaT."""
    naive = pd.to_datetime(blank_to_na(local), format="%Y-%m-%d %H:%M:%S", errors="coerce")
    out = pd.Series(pd.NaT, index=local.index, dtype="datetime64[ns, UTC]")
    zones = blank_to_na(tz)
    for zone, idx in naive.groupby(zones, sort=False).groups.items():
        try:
            values = naive.loc[idx].dt.tz_localize(
                str(zone), ambiguous=np.ones(len(idx), dtype=bool), nonexistent="shift_forward"
            )
        except Exception:  # unknown zone name: leave NaT so the row is quarantined
            continue
        out.loc[idx] = values.dt.tz_convert("UTC")
    return out


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


def parse_amount(s: pd.Series) -> pd.Series:
    """Numbers (``.`` decimal) to float; anything else → NaN."""
    return pd.to_numeric(blank_to_na(s), errors="coerce").astype("float64")


def map_category(s: pd.Series) -> pd.Series:
    """Raw category spellings to the eight canonical categories (``unknown`` if unmapped)."""
    return _map_unique(blank_to_na(s), canonical_category).fillna("unknown")


def to_base_currency(
    amount: pd.Series, currency: pd.Series, ts_utc: pd.Series, fx: pd.DataFrame, base: str = "USD"
) -> pd.Series:
    """Convert amounts with the rate of the transaction's UTC date (latest rate on or before it,
    else the earliest known). ``fx`` has columns date, currency, rate_to_base. Currencies with no
    rate at all give NaN (the caller quarantines them as ``unknown_currency``)."""
    frame = pd.DataFrame(
        {
            "_pos": np.arange(len(amount)),
            "amount": amount.to_numpy(dtype="float64"),
            "currency": currency.astype("string").to_numpy(),
            "date": pd.to_datetime(ts_utc).dt.tz_localize(None).dt.normalize().astype("datetime64[ns]").to_numpy(),
        }
    )
    rates = fx[["date", "currency", "rate_to_base"]].copy()
    rates["date"] = pd.to_datetime(rates["date"]).astype("datetime64[ns]")
    rates["currency"] = rates["currency"].astype("string")
    rate = np.full(len(frame), np.nan)
    rate[(frame["currency"] == base).to_numpy()] = 1.0
    for cur, part in frame[frame["currency"] != base].groupby("currency", sort=False):
        table = rates[rates["currency"] == cur].sort_values("date")
        if table.empty:
            continue
        part = part.sort_values("date")
        joined = pd.merge_asof(part, table[["date", "rate_to_base"]], on="date", direction="backward")
        joined["rate_to_base"] = joined["rate_to_base"].fillna(table["rate_to_base"].iloc[0])
        rate[joined["_pos"].to_numpy()] = joined["rate_to_base"].to_numpy()
    return pd.Series(frame["amount"].to_numpy() * rate, index=amount.index)
