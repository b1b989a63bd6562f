"""Feature snapshots: every batch feature of every customer as of each snapshot date, in DuckDB SQL.

The resolved activity tables are first reduced to per-customer-per-day aggregates (one pass over
each table); each snapshot date is then a GROUP BY over at most ``365 + history`` days of those
aggregates plus a per-customer "before the first window" base, so the cost does not grow with the
lake's full history. Activity at or after the snapshot instant never enters a snapshot.

:func:`compute_snapshots` is the one source of truth for these aggregates (the profiles stage
reuses it for traits at a single as-of date); :func:`build_snapshots` writes one Parquet file per
date under the feature data dir, recomputing only what changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from cip.categories import CATEGORIES
from cip.sql import quote_literal
from features import catalog as cat
from features.config import FeatureConfig, FeatureSettings
from features.paths import feature_data_dir, snapshot_dir

Progress = Callable[[str, int, int], None]

#: The resolved activity tables this module reads, with their columns (see docs/tables.md).
ACTIVITY_SCHEMAS: dict[str, dict[str, str]] = {
    "customer_orders": {
        "order_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "channel": "VARCHAR",
        "amount_base": "DOUBLE",
        "n_items": "BIGINT",
        "source": "VARCHAR",
    },
    "customer_order_lines": {
        "order_id": "VARCHAR",
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "channel": "VARCHAR",
        "category": "VARCHAR",
        "quantity": "BIGINT",
        "amount_base": "DOUBLE",
    },
    "customer_events": {
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "event": "VARCHAR",
        "channel": "VARCHAR",
        "category": "VARCHAR",
    },
    "customer_email_events": {
        "customer_id": "VARCHAR",
        "ts": "TIMESTAMPTZ",
        "event_type": "VARCHAR",
        "campaign_id": "VARCHAR",
    },
    "customer_exposures": {
        "customer_id": "VARCHAR",
        "exposure_id": "VARCHAR",
        "campaign_id": "VARCHAR",
        "offer": "VARCHAR",
        "assignment_probability": "DOUBLE",
        "exposed_at": "TIMESTAMPTZ",
        "channel": "VARCHAR",
    },
}
_SQL_TYPES = {"float": "DOUBLE", "int": "BIGINT", "timestamp": "TIMESTAMPTZ"}
#: Events that are not customer activity (identity plumbing).
_NON_ACTIVITY_EVENTS = ("identify", "alias")


_EPOCH = date(1970, 1, 1)


def _day(x: date) -> int:
    """UTC epoch day number of a date."""
    return (x - _EPOCH).days


def _day_of(col: str) -> str:
    return f"CAST(epoch_us({col}) // 86400000000 AS INTEGER)"


def _sec_of(col: str) -> str:
    return f"epoch_us({col}) // 1000000"


def _cents(col: str) -> str:
    return f"CAST(round(coalesce({col}, 0) * 100) AS BIGINT)"


def _us(x: date) -> str:
    return f"make_timestamptz({_day(x) * 86_400_000_000})"


# --- preparation: per-customer-day aggregates -------------------------------------------------
def prepare(con: duckdb.DuckDBPyConnection, first: date, last: date) -> None:
    """Create the temp tables the snapshot queries read, for snapshot dates in ``[first, last]``.

    Customers get a dense integer key (``cid``) and times become integers (epoch days and
    seconds, UTC), so the per-snapshot aggregations hash small integers. Day tables hold one row
    per customer and day, only for the days the windows of these snapshots reach (orders 365
    days before ``first``, web and e-mail events 90); everything older is folded into one row per
    customer that seeds the lifetime state (:func:`advance_state`). So the tables stay small and
    a snapshot scans only its windows.
    """
    hi = _us(last)
    lo_o = _day(first) - cat.MAX_WINDOW_DAYS
    lo_e = _day(first) - max(cat.ENGAGEMENT_WINDOWS)
    con.execute("SET TimeZone = 'UTC'")
    skip = ", ".join(f"'{e}'" for e in _NON_ACTIVITY_EVENTS)
    ok = f"customer_id IS NOT NULL AND ts < {hi}"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _f_ids AS
        SELECT customer_id, CAST(row_number() OVER (ORDER BY customer_id) AS INTEGER) AS cid, min(first_s) AS first_s
        FROM (
            SELECT customer_id, min({_sec_of("ts")}) AS first_s FROM customer_orders WHERE {ok} GROUP BY ALL
            UNION ALL SELECT customer_id, min({_sec_of("ts")}) FROM customer_events
                WHERE {ok} AND event NOT IN ({skip}) GROUP BY ALL
            UNION ALL SELECT customer_id, min({_sec_of("ts")}) FROM customer_email_events WHERE {ok} GROUP BY ALL
            UNION ALL SELECT customer_id, min({_sec_of("exposed_at")}) FROM customer_exposures
                WHERE customer_id IS NOT NULL AND exposed_at < {hi} GROUP BY ALL
        ) GROUP BY customer_id""")

    def day_or_base(ts: str, lo: int) -> str:  # NULL day = "before the windows": one base row per customer
        return f"CASE WHEN {ts} >= make_timestamptz({lo * 86_400_000_000}) THEN {_day_of(ts)} END"

    def n(cond: str) -> str:
        return f"CAST(count(*) FILTER (WHERE {cond}) AS INTEGER)"

    ch = ", ".join(f"{n(f'o.channel = {c!r}')} AS n_{c}" for c in cat.ORDER_CHANNELS)
    spend_cat = ", ".join(f"sum(amount) FILTER (WHERE category = '{c}') AS spend_{c}" for c in CATEGORIES)
    bit = (
        "CASE category "
        + " ".join(f"WHEN '{c}' THEN {1 << i}" for i, c in enumerate(CATEGORIES))
        + " ELSE 0 END"
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _f_o_day AS
        WITH od AS (
            SELECT i.cid, {day_or_base("o.ts", lo_o)} AS day, CAST(count(*) AS INTEGER) AS n,
                   sum({_cents("o.amount_base")}) AS spend, {ch}, max({_sec_of("o.ts")}) AS last_s
            FROM customer_orders o JOIN _f_ids i USING (customer_id) WHERE o.ts < {hi} GROUP BY ALL),
        ld AS (
            SELECT cid, day, sum(amount) AS line_spend, {spend_cat}, bit_or(bit) AS cats FROM (
                SELECT i.cid, {_day_of("l.ts")} AS day, {_cents("l.amount_base")} AS amount,
                       coalesce(l.category, 'unknown') AS category, {bit} AS bit
                FROM customer_order_lines l JOIN _f_ids i USING (customer_id)
                WHERE l.ts < {hi} AND l.ts >= make_timestamptz({lo_o * 86_400_000_000}))
            GROUP BY ALL)
        SELECT * FROM od FULL OUTER JOIN ld USING (cid, day)""")
    stems = ", ".join(f"{n(f'e.event = {ev!r}')} AS {s}" for s, ev in cat.WEB_EVENTS.items())
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _f_e_day AS
        SELECT i.cid, {day_or_base("e.ts", lo_e)} AS day, {stems}, max({_sec_of("e.ts")}) AS last_s
        FROM customer_events e JOIN _f_ids i USING (customer_id)
        WHERE e.ts < {hi} AND e.event NOT IN ({skip}) GROUP BY ALL""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _f_m_day AS
        SELECT i.cid, {day_or_base("m.ts", lo_e)} AS day,
               {n("m.event_type = 'send'")} AS sends, {n("m.event_type = 'open'")} AS opens,
               {n("m.event_type = 'click'")} AS clicks, {n("m.event_type = 'unsubscribe'")} AS unsubs,
               max({_sec_of("m.ts")}) FILTER (WHERE m.event_type IN ('open', 'click')) AS last_s
        FROM customer_email_events m JOIN _f_ids i USING (customer_id) WHERE m.ts < {hi} GROUP BY ALL""")
    # Response = an order in [exposed_at, exposed_at + 14 days): the first order at or after exposure.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _f_x AS
        SELECT x.cid, x.s, coalesce(o.s < x.s + {cat.RESPONSE_WINDOW_DAYS * 86400}, false) AS responded
        FROM (SELECT i.cid, {_sec_of("x.exposed_at")} AS s FROM customer_exposures x JOIN _f_ids i USING (customer_id)
              WHERE x.exposed_at >= make_timestamptz({lo_o * 86_400_000_000}) AND x.exposed_at < {hi}
                AND x.offer IS DISTINCT FROM 'no_offer') x
        ASOF LEFT JOIN (SELECT i.cid, {_sec_of("o.ts")} AS s FROM customer_orders o JOIN _f_ids i USING (customer_id)) o
          ON x.cid = o.cid AND o.s >= x.s""")
    # The lifetime state starts from the folded rows (as_of NULL: the first advance adds every day row).
    con.execute("""
        CREATE OR REPLACE TEMP TABLE _f_state AS
        WITH o AS (SELECT cid, n, spend, last_s FROM _f_o_day WHERE day IS NULL AND n IS NOT NULL),
             e AS (SELECT cid, last_s FROM _f_e_day WHERE day IS NULL),
             m AS (SELECT cid, unsubs, last_s FROM _f_m_day WHERE day IS NULL)
        SELECT coalesce(o.cid, e.cid, m.cid) AS cid, CAST(coalesce(o.n, 0) AS BIGINT) AS o_n,
               CAST(coalesce(o.spend, 0) AS BIGINT) AS o_spend, o.last_s AS o_last, e.last_s AS e_last,
               CAST(coalesce(m.unsubs, 0) AS BIGINT) AS m_unsubs, m.last_s AS m_last, CAST(NULL AS INTEGER) AS as_of
        FROM o FULL OUTER JOIN e ON e.cid = o.cid FULL OUTER JOIN m ON m.cid = coalesce(o.cid, e.cid)""")
    for t in ("_f_o_day", "_f_e_day", "_f_m_day"):
        con.execute(f"DELETE FROM {t} WHERE day IS NULL")


def advance_state(con: duckdb.DuckDBPyConnection, d: date) -> None:
    """Bring the lifetime state (orders, spend, last order/visit/e-mail engagement, unsubscribes)
    to ``d``: fold in the days between the state's date and ``d``. Dates must not go backwards."""
    prev = con.execute("SELECT max(as_of) FROM _f_state").fetchone()[0]
    if prev is not None and prev > _day(d):
        raise ValueError(f"snapshot dates must be increasing ({prev} > {_day(d)})")
    where = (f"day >= {prev} AND " if prev is not None else "") + f"day < {_day(d)}"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _f_state AS
        WITH delta AS (
            SELECT cid, sum(o_n) AS o_n, sum(o_spend) AS o_spend, max(o_last) AS o_last,
                   max(e_last) AS e_last, sum(m_unsubs) AS m_unsubs, max(m_last) AS m_last FROM (
                SELECT cid, n AS o_n, spend AS o_spend, last_s AS o_last, NULL::BIGINT AS e_last,
                       NULL::BIGINT AS m_unsubs, NULL::BIGINT AS m_last FROM _f_o_day WHERE {where} AND n > 0
                UNION ALL SELECT cid, NULL, NULL, NULL, last_s, NULL, NULL FROM _f_e_day WHERE {where}
                UNION ALL SELECT cid, NULL, NULL, NULL, NULL, unsubs, last_s FROM _f_m_day WHERE {where}
            ) GROUP BY cid)
        SELECT coalesce(s.cid, d.cid) AS cid,
               coalesce(s.o_n, 0) + coalesce(d.o_n, 0) AS o_n,
               coalesce(s.o_spend, 0) + coalesce(d.o_spend, 0) AS o_spend,
               greatest(s.o_last, d.o_last) AS o_last, greatest(s.e_last, d.e_last) AS e_last,
               coalesce(s.m_unsubs, 0) + coalesce(d.m_unsubs, 0) AS m_unsubs,
               greatest(s.m_last, d.m_last) AS m_last, {_day(d)} AS as_of
        FROM _f_state s FULL OUTER JOIN delta d ON s.cid = d.cid""")


# --- one snapshot -----------------------------------------------------------------------------
def snapshot_sql(d: date) -> str:
    """SELECT of every batch feature as of ``d`` (00:00 UTC).

    Reads the tables made by :func:`prepare`; the lifetime state must have been advanced to ``d``
    (:func:`advance_state`). Rows are in no particular order.
    """
    D = _day(d)
    o_cols = ["sum(line_spend) AS line_spend_365d"]
    o_cols += [f"sum(n_{c}) AS n_{c}_365d" for c in cat.ORDER_CHANNELS]
    o_cols += [f"sum(spend_{c}) AS spend_{c}_365d" for c in CATEGORIES]
    for w in cat.TXN_WINDOWS:
        o_cols += [
            f"sum(n) FILTER (WHERE day >= {D - w}) AS n_{w}d",
            f"sum(spend) FILTER (WHERE day >= {D - w}) AS spend_{w}d",
            f"bit_count(bit_or(cats) FILTER (WHERE day >= {D - w})) AS categories_{w}d",
        ]
    e_cols, m_cols = [], []
    for w in cat.ENGAGEMENT_WINDOWS:
        since = f"day >= {D - w}"
        e_cols += [f"sum({s}) FILTER (WHERE {since}) AS {s}_{w}d" for s in cat.WEB_EVENTS]
        e_cols.append(f"count(*) FILTER (WHERE {since}) AS active_days_{w}d")
        m_cols += [f"sum({s}) FILTER (WHERE {since}) AS {s}_{w}d" for s in ("sends", "opens", "clicks")]
    eng = max(cat.ENGAGEMENT_WINDOWS)
    S = D * 86400
    matured = f"s + {cat.RESPONSE_WINDOW_DAYS * 86400} <= {S}"
    x_cols = [f"count(*) FILTER (WHERE {matured}) AS matured_365d"]
    for w in cat.CAMPAIGN_WINDOWS:
        since = f"s >= {S - w * 86400}"
        x_cols += [
            f"count(*) FILTER (WHERE {since}) AS offers_{w}d",
            f"count(*) FILTER (WHERE {since} AND responded AND {matured}) AS responded_{w}d",
        ]

    def typed(f: cat.Feature) -> str:
        expr = f"to_timestamp({f.sql})" if f.kind == "timestamp" else f.sql
        return f"CAST({expr} AS {_SQL_TYPES[f.kind]}) AS {f.name}"

    feats = ",\n       ".join(typed(f) for f in cat.SNAPSHOT_FEATURES)
    j = ", ".join
    return f"""
WITH sp AS (SELECT customer_id, cid, first_s FROM _f_ids WHERE first_s < {S}),
o AS (SELECT cid, {j(o_cols)} FROM _f_o_day WHERE day < {D} AND day >= {D - 365} GROUP BY cid),
e AS (SELECT cid, {j(e_cols)} FROM _f_e_day WHERE day < {D} AND day >= {D - eng} GROUP BY cid),
m AS (SELECT cid, {j(m_cols)} FROM _f_m_day WHERE day < {D} AND day >= {D - eng} GROUP BY cid),
x AS (SELECT cid, {j(x_cols)} FROM _f_x WHERE s < {S} AND s >= {S - 365 * 86400} GROUP BY cid)
SELECT sp.customer_id AS {cat.JOIN_KEY}, to_timestamp(snap.s) AS {cat.TIMESTAMP_FIELD},
       {feats}
FROM sp CROSS JOIN (SELECT CAST({S} AS BIGINT) AS s) snap
LEFT JOIN _f_state st ON st.cid = sp.cid
LEFT JOIN o ON o.cid = sp.cid
LEFT JOIN e ON e.cid = sp.cid
LEFT JOIN m ON m.cid = sp.cid
LEFT JOIN x ON x.cid = sp.cid"""


def snapshot_schema() -> pa.Schema:
    """Arrow schema of a snapshot table."""
    types = {"float": pa.float64(), "int": pa.int64(), "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema(
        [pa.field(cat.JOIN_KEY, pa.string()), pa.field(cat.TIMESTAMP_FIELD, pa.timestamp("us", tz="UTC"))]
        + [pa.field(f.name, types[f.kind]) for f in cat.SNAPSHOT_FEATURES]
    )


# --- connections ------------------------------------------------------------------------------
def ensure_activity_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Create empty views for resolved tables the connection lacks; returns the names created."""
    have = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    made = []
    for name, cols in ACTIVITY_SCHEMAS.items():
        if name not in have:
            body = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in cols.items())
            con.execute(f'CREATE TEMP VIEW "{name}" AS SELECT {body} WHERE false')
            made.append(name)
    return made


def connect(
    lake: Any, *, threads: int | None = None, memory_limit: str | None = None, temp_dir: Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the resolved tables of ``lake`` (missing ones empty)."""
    con = lake.connect(list(ACTIVITY_SCHEMAS))
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        con.execute(f"SET memory_limit = {quote_literal(memory_limit)}")
    if temp_dir:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {quote_literal(temp_dir)}")
    con.execute("SET preserve_insertion_order = false")
    ensure_activity_views(con)
    return con


def activity_span(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """First and last UTC day with any resolved activity, or None for an empty lake."""
    con.execute("SET TimeZone = 'UTC'")
    row = con.execute("""
        SELECT min(lo), max(hi) FROM (
          SELECT min(ts) AS lo, max(ts) AS hi FROM customer_orders
          UNION ALL SELECT min(ts), max(ts) FROM customer_events
          UNION ALL SELECT min(ts), max(ts) FROM customer_email_events
          UNION ALL SELECT min(exposed_at), max(exposed_at) FROM customer_exposures)""").fetchone()
    if row is None or row[0] is None:
        return None
    return row[0].astimezone(UTC).date(), row[1].astimezone(UTC).date()


# --- public API -------------------------------------------------------------------------------
def compute_snapshots(source: Any, snapshot_dates: Iterable[date]) -> pa.Table:
    """Every batch feature of every customer as of each date (``event_timestamp`` = date 00:00 UTC).

    ``source`` is a :class:`cip.lake.Lake` or a DuckDB connection that has the resolved activity
    tables as tables or views (missing ones count as empty). Returns one Arrow table, sorted by
    ``event_timestamp`` then ``customer_id``; columns follow :func:`snapshot_schema`.
    """
    dates = sorted(set(snapshot_dates))
    own = not isinstance(source, duckdb.DuckDBPyConnection)
    con = connect(source) if own else source
    try:
        if not own:
            ensure_activity_views(con)
        if not dates:
            return snapshot_schema().empty_table()
        prepare(con, dates[0], dates[-1])
        parts = []
        for d in dates:
            advance_state(con, d)
            parts.append(con.sql(snapshot_sql(d)).to_arrow_table().cast(snapshot_schema()))
        return pa.concat_tables(parts).sort_by(
            [(cat.TIMESTAMP_FIELD, "ascending"), (cat.JOIN_KEY, "ascending")]
        )
    finally:
        if own:
            con.close()


@dataclass
class SnapshotBuild:
    """What :func:`build_snapshots` did."""

    directory: Path
    dates: list[date]
    computed: list[date] = field(default_factory=list)
    removed: list[date] = field(default_factory=list)
    rows: int = 0
    seconds: float = 0.0


def _catalog_version() -> str:
    text = snapshot_sql(date(2000, 1, 3)) + json.dumps([f.name for f in cat.SNAPSHOT_FEATURES])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _input_fingerprint(lake: Any) -> str:
    parts = [_catalog_version()]
    for name in ACTIVITY_SCHEMAS:
        files: list[Path] = []
        if lake.derived_path(name).exists():
            files = [lake.derived_path(name)]
        elif hasattr(lake, "table_files"):
            files = lake.table_files(name)
        for f in files:
            st = f.stat()
            parts.append(f"{name}:{f}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_snapshots(
    settings: FeatureSettings,
    *,
    dates: Sequence[date] | None = None,
    config: FeatureConfig | None = None,
    progress: Progress | None = None,
    force: bool = False,
) -> SnapshotBuild:
    """Write one Parquet snapshot per date under ``<features dir>/snapshots/customer_snapshots/``.

    Dates default to the grid of :meth:`FeatureConfig.snapshot_dates` ending after the lake's last
    activity. Existing snapshots are kept when the resolved tables and the catalogue are unchanged
    (only missing dates are computed); otherwise all are recomputed. Files outside the grid are removed.
    """
    from cip.lake import Lake

    t0 = time.perf_counter()
    cfg = config or settings.features
    data_dir = feature_data_dir(settings)
    out_dir = snapshot_dir(data_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lake = Lake(settings.lake_dir)
    con = connect(lake, threads=os.cpu_count() or 2, memory_limit="3GB", temp_dir=data_dir / "_duckdb_tmp")
    try:
        if dates is None:
            span = activity_span(con)
            grid = cfg.snapshot_dates(span[1], span[0]) if span else []
        else:
            grid = sorted(set(dates))
        manifest_path = out_dir / "_manifest.json"
        fingerprint = _input_fingerprint(lake)
        old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        existing = {date.fromisoformat(p.stem) for p in out_dir.glob("*.parquet")}
        reuse = not force and old.get("fingerprint") == fingerprint
        todo = [d for d in grid if not (reuse and d in existing)]
        build = SnapshotBuild(out_dir, grid)
        if todo:
            if progress:
                progress("preparing daily aggregates", 0, len(todo))
            prepare(con, min(todo), max(todo))
            for i, d in enumerate(todo):
                advance_state(con, d)
                final = out_dir / f"{d.isoformat()}.parquet"
                tmp = out_dir / f".{d.isoformat()}.parquet.tmp"
                con.execute(
                    f"COPY ({snapshot_sql(d)}) TO {quote_literal(tmp)} "
                    "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
                )
                os.replace(tmp, final)
                build.rows += pq.ParquetFile(final).metadata.num_rows
                build.computed.append(d)
                if progress:
                    progress(f"snapshot {d.isoformat()}", i + 1, len(todo))
        for d in sorted(existing - set(grid)):
            (out_dir / f"{d.isoformat()}.parquet").unlink(missing_ok=True)
            build.removed.append(d)
        tmp_manifest = manifest_path.with_suffix(".tmp")
        tmp_manifest.write_text(
            json.dumps(
                {
                    "fingerprint": fingerprint,
                    "dates": [d.isoformat() for d in grid],
                    "built_at": datetime.now(UTC).isoformat(),
                },
                indent=1,
            )
        )
        os.replace(tmp_manifest, manifest_path)
    finally:
        con.close()
        shutil.rmtree(data_dir / "_duckdb_tmp", ignore_errors=True)
    build.seconds = time.perf_counter() - t0
    return build


def snapshot_dates_on_disk(settings: FeatureSettings) -> list[date]:
    """Dates that have a snapshot file."""
    return sorted(
        date.fromisoformat(p.stem) for p in snapshot_dir(feature_data_dir(settings)).glob("*.parquet")
    )
