"""File writers: DuckDB formats and writes the large CSV / JSONL / Parquet outputs from arrow tables."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa

from cip.sql import literal_list, quote_literal
from pipelines.generate.behaviour import PAGES, SPELLINGS
from pipelines.generate.config import CURRENCIES, DEVICE_TYPES, STORES


def sql_list(values: tuple[str, ...] | list[str]) -> str:
    """A DuckDB list literal of strings (1-based indexing in SQL)."""
    return "[" + literal_list(values) + "]"


@contextmanager
def duck(tmp_dir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """In-memory DuckDB with deterministic settings and the timestamp-formatting macros."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2")
        con.execute("SET preserve_insertion_order = true")
        con.execute(f"SET temp_directory = {quote_literal(tmp_dir)}")
        con.execute("SET memory_limit = '6GB'")
        con.execute(
            "CREATE MACRO isosec(ms, off) AS strftime(epoch_ms(ms + off * 60000), '%Y-%m-%dT%H:%M:%S')"
            " || printf('%+03d:%02d', off // 60, abs(off) % 60)"
        )
        con.execute("CREATE MACRO utcsec(ms) AS strftime(epoch_ms(ms), '%Y-%m-%dT%H:%M:%SZ')")
        yield con
    finally:
        con.close()
        shutil.rmtree(tmp_dir, ignore_errors=True)


def write_csv(con: duckdb.DuckDBPyConnection, select_sql: str, path: Path) -> None:
    """COPY a query to CSV with a header (values quoted only when needed, NULL = blank)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"COPY ({select_sql}) TO {quote_literal(path)} (FORMAT CSV, HEADER true)")


def _event_json_sql() -> str:
    """One JSON line per event, assembled by string concatenation (all strings are JSON-safe or
    pre-encoded, see ``write_events``). Row order is the scan order (``preserve_insertion_order``)."""
    sp = sql_list(SPELLINGS)
    cur = sql_list(CURRENCIES)
    slug = sql_list([SPELLINGS[i * 6].lower().replace(" ", "-").replace("&", "and") for i in range(8)])
    kinds = sql_list(["identify", "alias", "page", "track", "track", "track", "track"])
    heads = sql_list(
        [
            "",
            "",
            "",
            '"event":"Product Viewed",',
            '"event":"Product Added",',
            '"event":"Checkout Started",',
            '"event":"Order Completed",',
        ]
    )
    product = f"""'"product_id":"SKU', lpad(CAST(product AS VARCHAR), 5, '0'), '","category":"', {sp}[spelling + 1], '","price":', CAST(price AS VARCHAR)"""
    path = f"""CASE page WHEN 0 THEN '/' WHEN 1 THEN '/c/' || {slug}[cat + 1] WHEN 2 THEN '/p/SKU' || lpad(CAST(product AS VARCHAR), 5, '0')
        WHEN 3 THEN '/search' WHEN 4 THEN '/cart' WHEN 5 THEN '/account' ELSE '/account/signup' END"""
    body = f"""CASE kind
           WHEN 0 THEN concat(',', traits)
           WHEN 1 THEN concat(',"previousId":"', anon, '"')
           WHEN 2 THEN concat(',"properties":{{"path":"', {path}, '"}}')
           WHEN 3 THEN concat(',"properties":{{', {product}, '}}')
           WHEN 4 THEN concat(',"properties":{{', {product}, ',"quantity":', CAST(qty AS VARCHAR), '}}')
           WHEN 5 THEN concat(',"properties":{{"value":', CAST(price AS VARCHAR), ',"currency":"', {cur}[cur + 1], '"}}')
           ELSE concat(',"properties":{{"order_id":"O', CAST(order_num AS VARCHAR), '","revenue":', CAST(price AS VARCHAR),
                ',"currency":"', {cur}[cur + 1], '","products":', products, '}}')
         END"""
    return f"""
    SELECT concat('{{"type":"', {kinds}[kind + 1], '",',
      CASE WHEN kind = 2 THEN concat('"name":"', {sql_list(PAGES)}[page + 1], '",') ELSE {heads}[kind + 1] END,
      '"messageId":"', mid, '","timestamp":"', tss, '","userId":',
      CASE WHEN uid > 0 THEN concat('"C', CAST(uid AS VARCHAR), '"') ELSE 'null' END, ',', devpart, {body}, '}}\n') AS j
    FROM ev_m
    """


def products_json_sql() -> str:
    """JSON array of basket lines per online order (``lines_src`` grouped by order position)."""
    sp = sql_list(SPELLINGS)
    return f"""
    SELECT pos, '[' || string_agg('{{"product_id":"' || printf('SKU%05d', product) || '","category":"' || {sp}[spelling + 1]
        || '","price":' || CAST(price AS VARCHAR) || ',"quantity":' || qty || '}}', ',' ORDER BY line) || ']' AS products
    FROM lines_src GROUP BY pos ORDER BY pos
    """


def device_json_sql() -> str:
    """Per device: the ``anonymousId`` and ``context`` members of its events."""
    return f"""
    SELECT '"anonymousId":"' || anon || '","context":{{"channel":"' || ['web', 'app'][chan + 1]
        || coalesce('","locale":"' || loc, '')
        || '","device":{{"id":"' || devid || '","type":"' || {sql_list(DEVICE_TYPES)}[dtype + 1] || '"}}}}' AS devpart
    FROM dev_src ORDER BY dev
    """


def write_lines(fh: BinaryIO, reader: pa.RecordBatchReader) -> int:
    """Write the first (string) column of every batch verbatim: the values already end in a newline,
    so each batch's value buffer is exactly the bytes of its lines."""
    n = 0
    for batch in reader:
        arr = batch.column(0)
        if arr.null_count:
            raise ValueError("null line")
        if pa.types.is_string_view(arr.type):
            arr = arr.cast(pa.string())
        bufs = arr.buffers()
        wide = pa.types.is_large_string(arr.type)
        offs = np.frombuffer(bufs[1], dtype=np.int64 if wide else np.int32)
        lo, hi = int(offs[arr.offset]), int(offs[arr.offset + len(arr)])
        fh.write(memoryview(bufs[2])[lo:hi])
        n += len(arr)
    return n


def write_events(
    con: duckdb.DuckDBPyConnection,
    month_tables: Iterator[tuple[str, pa.Table]],
    planted: dict[str, list[str]],
    out_dir: Path,
) -> dict[str, int]:
    """One ``events/YYYY-MM.jsonl`` per month (events sorted by time), then the planted lines appended.

    ``month_tables`` yields (label, event table) with the columns used by ``_event_json_sql``.
    Returns the number of lines of each file.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    sql = _event_json_sql()
    counts: dict[str, int] = {}
    for label, tbl in month_tables:
        con.register("ev_m", tbl)
        path = out_dir / f"{label}.jsonl"
        with path.open("wb") as fh:
            write_lines(fh, con.sql(sql).to_arrow_reader())
            extra = planted.get(label, [])
            if extra:
                fh.write(("\n".join(extra) + "\n").encode("utf-8"))
        con.unregister("ev_m")
        counts[f"events/{label}.jsonl"] = tbl.num_rows + len(extra)
    return counts


def month_bounds(ts_utc_ms: np.ndarray) -> list[tuple[str, int, int]]:
    """(``YYYY-MM``, first row, end row) of every UTC month of a time-sorted epoch-ms array."""
    months = np.unique(ts_utc_ms.astype("datetime64[ms]").astype("datetime64[M]"))
    out = []
    for m in months:
        lo = np.datetime64(m, "ms").astype(np.int64)
        hi = np.datetime64(m + 1, "ms").astype(np.int64)
        a, b = np.searchsorted(ts_utc_ms, [lo, hi])
        out.append((str(m), int(a), int(b)))
    return out


def store_columns() -> dict[str, str]:
    """SQL list literals of store attributes, indexed by store number + 1."""
    from pipelines.generate.config import COUNTRIES, TIMEZONES

    return {
        "id": sql_list([s[0] for s in STORES]),
        "country": sql_list([COUNTRIES[s[1]] for s in STORES]),
        "tz": sql_list([TIMEZONES[s[3]] for s in STORES]),
    }
