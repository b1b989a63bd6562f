"""Standardization rules as DuckDB SQL expressions, and lookup tables built from the Python
rules in ``standardize.py`` over *distinct* raw values (so Python runs once per value, not row).

Timestamp rules (DuckDB ICU semantics, tested in tests/test_standardize.py):
- ISO-8601 with offset or ``Z`` → UTC; a value without offset is taken as UTC.
- Local wall-clock time in an IANA zone → UTC; an ambiguous fall-back time takes the later
  (standard-time) occurrence, a non-existent spring-forward time is read with the offset in
  force before the jump. Unknown zone names give NULL (the row is quarantined).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import duckdb
import pandas as pd
import pyarrow as pa

from cip.categories import canonical_category
from cip.sql import quote_literal
from pipelines.ingest import standardize as std


def utc_timestamp(expr: str) -> str:
    return f"try_cast({expr} AS TIMESTAMPTZ)"


def local_to_utc(expr: str, tz_expr: str) -> str:
    naive = f"try_strptime({expr}, '%Y-%m-%d %H:%M:%S')"
    return f"CASE WHEN {tz_expr} IN (SELECT name FROM tz_names) THEN timezone({tz_expr}, {naive}) END"


def locale_region(locale_expr: str, default: str) -> str:
    """The region of a locale tag (``en-GB``, ``fr_CA`` → ``GB``, ``CA``): the country phones
    written without a calling code are read in. ``default`` when the tag has none (``en``)."""
    region = f"regexp_extract({locale_expr}, '^[A-Za-z]{{2,3}}[-_]([A-Za-z]{{2}})$', 1)"
    return f"coalesce(upper(nullif({region}, '')), {quote_literal(default)})"


def amount(expr: str) -> str:
    return f"try_cast({expr} AS DOUBLE)"


def prepare(con: duckdb.DuckDBPyConnection) -> None:
    """Session settings and static lookups every ingestion query relies on."""
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE OR REPLACE TEMP TABLE tz_names AS SELECT name FROM pg_timezone_names()")


def _distinct(con: duckdb.DuckDBPyConnection, sql: str) -> pd.DataFrame:
    return con.sql(sql).df()


#: Lookup results per distinct input, kept across files (the rules are pure functions of it).
_CACHE: dict[str, tuple[dict[tuple, tuple], pd.Series]] = {}
CACHE_MAX = 4_000_000
_LOCK = threading.Lock()


def cached_lookup(
    name: str, frame: pd.DataFrame, build: Callable[[pd.DataFrame], pd.DataFrame]
) -> pd.DataFrame:
    """``build(frame)``, computed only for input rows not seen before under ``name``."""
    keys = list(frame.columns)
    with _LOCK:
        memo, dtypes = _CACHE.get(name, ({}, None))
    inputs = list(zip(*(frame[c].tolist() for c in keys), strict=True)) if keys else []
    todo = [i for i, key in enumerate(inputs) if key not in memo]
    fresh: dict[tuple, tuple] = {}
    if todo or dtypes is None:
        built = build(frame.iloc[todo].reset_index(drop=True))
        dtypes = built.dtypes.drop(keys)
        results = zip(*(built[c].tolist() for c in dtypes.index), strict=True)
        fresh = dict(zip((inputs[i] for i in todo), results, strict=True))
        with _LOCK:
            store = memo if len(memo) + len(fresh) <= CACHE_MAX else {}
            store.update(fresh)
            _CACHE[name] = (store, dtypes)
    values = [fresh[key] if key in fresh else memo[key] for key in inputs]
    out = frame.reset_index(drop=True).copy()
    for j, (col, dtype) in enumerate(dtypes.items()):
        out[col] = pd.Series([v[j] for v in values], dtype=dtype)
    return out


def register_email_map(con: duckdb.DuckDBPyConnection, exprs: list[str], source: str = "raw") -> None:
    """``email_map(raw, email, valid)`` for every distinct trimmed raw e-mail in ``source``."""
    union = (
        " UNION ".join(f"SELECT nullif(trim({e}), '') AS raw FROM {source}" for e in exprs)
        if exprs
        else "SELECT NULL::VARCHAR AS raw"
    )
    frame = _distinct(con, f"SELECT DISTINCT raw FROM ({union}) WHERE raw IS NOT NULL")
    frame["raw"] = frame["raw"].astype(std.STR)
    _register(con, "email_map", cached_lookup("email_map", frame, email_lookup))


def email_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    """raw → email (normalized), valid."""
    email = std.normalize_email(frame["raw"])
    return frame.assign(email=email, valid=std.is_valid_email(email).fillna(False).astype(bool))


def register_lookup(con: duckdb.DuckDBPyConnection, name: str, sql: str, build) -> None:
    """Register ``name`` = ``build(distinct values frame)`` for the distinct rows of ``sql``."""
    frame = _distinct(con, f"SELECT DISTINCT * FROM ({sql})")
    for col in frame.columns:
        frame[col] = frame[col].astype(std.STR)
    _register(con, name, cached_lookup(f"{name}:{build.__name__}", frame, build))


def _register(con: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    con.register(f"{name}_arrow", table)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_arrow")
    con.unregister(f"{name}_arrow")


# --- builders for register_lookup: distinct raw values in → standardized values out ------------
def phone_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    """(raw, region) → e164."""
    return frame.assign(e164=std.normalize_phone(frame["raw"], frame["region"]))


def name_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    """raw → name (display form), name_key (ASCII matching key)."""
    name = std.normalize_name(frame["raw"])
    return frame.assign(name=name, name_key=std.ascii_key(name))


def address_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(value=std.normalize_address(frame["raw"]))


def postcode_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(value=std.normalize_postcode(frame["raw"]))


def birth_date_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    """(raw, country) → date."""
    parsed = std.parse_birth_date(frame["raw"], frame["country"])
    return frame.assign(value=pd.to_datetime(parsed, errors="coerce").dt.date)


def flag_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(value=std.parse_flag(frame["raw"]))


def category_lookup(frame: pd.DataFrame) -> pd.DataFrame:
    categories = [canonical_category(v) if pd.notna(v) else None for v in frame["raw"]]
    return frame.assign(
        category=pd.Series(categories, index=frame.index, dtype=std.STR)
    )  # typed even if empty


def fx_tables(fx: pd.DataFrame, base: str) -> dict[str, pa.Table]:
    """``fx_daily(currency, date, rate)``: the latest rate on or before each day from a currency's
    first to its last known rate, and ``fx_edges(currency, first_date, first_rate, last_rate)``
    for days outside that span. The base currency has rate 1 on every date. Converting is then
    a plain equality join (an ASOF join over every row costs several times more). Built once
    per distinct rates table and kept (the frame is not to be changed in place afterwards)."""
    last = _FX_LAST
    if last is not None and last[0] is fx and last[1] == base:  # the run's frame, again
        return last[2]
    frame = fx[["date", "currency", "rate_to_base"]].copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    key = (base, len(frame), int(pd.util.hash_pandas_object(frame, index=False).sum()))
    with _LOCK:
        if key in _FX:
            _remember_fx(fx, base, _FX[key])
            return _FX[key]
    with duckdb.connect() as con:
        con.register("fx_raw", pa.Table.from_pandas(frame, preserve_index=False))
        con.execute(
            f"""CREATE TEMP TABLE fx AS
                SELECT upper(currency) AS currency, date::DATE AS date, rate_to_base AS rate FROM fx_raw
                UNION ALL SELECT {quote_literal(base)}, DATE '1900-01-01', 1.0"""
        )
        tables = {
            "fx_edges": con.sql(
                """SELECT currency, min(date) AS first_date, arg_min(rate, date) AS first_rate,
                          arg_max(rate, date) AS last_rate
                   FROM fx GROUP BY currency"""
            ).to_arrow_table(),
            "fx_daily": con.sql(
                """SELECT d.currency, d.date, f.rate
                   FROM (SELECT currency, unnest(generate_series(min(date), max(date), INTERVAL 1 DAY))::DATE AS date
                         FROM fx GROUP BY currency) d
                   ASOF JOIN fx f ON f.currency = d.currency AND f.date <= d.date"""
            ).to_arrow_table(),
        }
    with _LOCK:
        _FX[key] = tables
    _remember_fx(fx, base, tables)
    return tables


_FX: dict[tuple, dict[str, pa.Table]] = {}
#: The frame last asked for, so the files of a run (one frame) skip hashing it: 8 ms a file.
_FX_LAST: tuple[pd.DataFrame, str, dict[str, pa.Table]] | None = None


def _remember_fx(fx: pd.DataFrame, base: str, tables: dict[str, pa.Table]) -> None:
    global _FX_LAST
    _FX_LAST = (fx, base, tables)


def register_fx(con: duckdb.DuckDBPyConnection, fx: pd.DataFrame, base: str) -> None:
    """Make ``fx_daily`` and ``fx_edges`` (see :func:`fx_tables`) readable in ``con``."""
    for name, table in fx_tables(fx, base).items():
        con.register(name, table)


def to_base(amount_expr: str, currency_expr: str, date_expr: str, alias: str) -> tuple[str, str]:
    """(select expression, join clauses) converting an amount with the rate of the UTC date:
    the latest rate on or before it, else the earliest known rate."""
    joins = (
        f"LEFT JOIN fx_daily {alias} ON {alias}.currency = {currency_expr} AND {alias}.date = ({date_expr})::DATE "
        f"LEFT JOIN fx_edges {alias}_e ON {alias}_e.currency = {currency_expr}"
    )
    edge = (
        f"CASE WHEN ({date_expr})::DATE < {alias}_e.first_date THEN {alias}_e.first_rate "
        f"ELSE {alias}_e.last_rate END"
    )
    return f"{amount_expr} * coalesce({alias}.rate, {edge})", joins
