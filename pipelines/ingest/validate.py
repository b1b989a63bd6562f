"""Contract validation: every row gets at most one reason (the first rule it breaks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd

from cip.contracts import Contract, Field
from pipelines.ingest import standardize as std


@dataclass
class Validation:
    """Outcome of validating one raw frame against its contract."""

    reason: pd.Series  # string reason code, <NA> for good rows
    field: pd.Series  # field that failed
    parsed: dict[str, pd.Series] = field(default_factory=dict)
    flags: dict[str, pd.Series] = field(default_factory=dict)

    @property
    def ok(self) -> pd.Series:
        return self.reason.isna()


def _condition(frame: pd.DataFrame, f: Field) -> pd.Series:
    if f.when is None:
        return pd.Series(True, index=frame.index)
    col, value = f.when
    return (frame[col] == value).fillna(False).astype(bool)


def validate(
    frame: pd.DataFrame,
    contract: Contract,
    *,
    now: datetime,
    future_tolerance: pd.Timedelta,
    currencies: set[str],
) -> Validation:
    """Check a raw (all-string) frame against ``contract``; parse typed fields on the way.

    ``currencies`` are the codes that can be converted to the base currency.
    """
    idx = frame.index
    out = Validation(
        reason=pd.Series(pd.NA, index=idx, dtype="string"),
        field=pd.Series(pd.NA, index=idx, dtype="string"),
    )

    def fail(mask: pd.Series, reason: str, name: str) -> None:
        m = mask.fillna(False).astype(bool) & out.reason.isna()
        out.reason[m] = reason
        out.field[m] = name

    limit = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    limit = limit + future_tolerance
    for group in contract.require_any:
        blank = pd.concat([std.blank_to_na(frame[c]).isna() for c in group], axis=1).all(axis=1)
        fail(blank, "missing_required", "|".join(group))

    for f in contract.fields:
        values = std.blank_to_na(frame[f.name])
        applies = _condition(frame, f)
        present = values.notna() & applies
        if f.required:
            fail(values.isna() & applies, "missing_required", f.name)
        if f.kind == "timestamp":
            ts = std.parse_utc(values)
            out.parsed[f.name] = ts
            fail(present & ts.isna(), "invalid_timestamp", f.name)
            fail(present & (ts > limit), "future_timestamp", f.name)
        elif f.kind == "local_timestamp":
            tz = frame[contract.extra["timezone_field"]]
            ts = std.local_to_utc(values, tz)
            out.parsed[f.name] = ts
            fail(present & ts.isna(), "invalid_timestamp", f.name)
            fail(present & (ts > limit), "future_timestamp", f.name)
        elif f.kind == "date":
            d = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
            out.parsed[f.name] = d
            fail(present & d.isna(), "invalid_timestamp", f.name)
        elif f.kind == "amount":
            amount = std.parse_amount(values)
            out.parsed[f.name] = amount
            fail(present & ~(amount >= 0), "invalid_amount", f.name)
        elif f.kind == "int":
            number = pd.to_numeric(values, errors="coerce")
            out.parsed[f.name] = number
            fail(present & ~((number >= 1) & (number % 1 == 0)), "invalid_int", f.name)
        elif f.kind == "currency":
            code = values.str.upper()
            out.parsed[f.name] = code
            fail(present & ~code.isin(list(currencies)).fillna(False), "unknown_currency", f.name)
        elif f.kind == "enum":
            fail(present & ~values.isin(list(f.values or ())).fillna(False), "invalid_value", f.name)
        elif f.kind == "email":
            email = std.normalize_email(values)
            valid = std.is_valid_email(email)
            bad = present & ~valid.fillna(False)
            if f.on_invalid == "quarantine":
                fail(bad, "invalid_email", f.name)
                out.parsed[f.name] = email
            else:
                out.flags[f"invalid_{f.name}"] = bad.astype(bool)
                out.parsed[f.name] = email.mask(bad)
    if contract.unique:
        key = std.blank_to_na(frame[contract.unique])
        fail(key.notna() & key.duplicated(keep="first"), "duplicate_key", contract.unique)
    return out
