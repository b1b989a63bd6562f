"""Read raw files into all-string frames with a ``_row`` number; whole-file problems raise."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from cip.contracts import Contract
from cip.errors import SourceFileError

ROW = "_row"  # 1-based record number in the file (header excluded; = line number for JSONL)


def read_csv_strings(path: Path, contract: Contract) -> pd.DataFrame:
    """Every declared column as string (missing optional columns are added empty)."""
    try:
        with open(path, encoding="utf-8") as fh:
            header = fh.readline().rstrip("\r\n").split(",")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceFileError(path, f"cannot be read ({exc})", fix="check the file exists and is UTF-8 CSV") from exc
    header = [h.strip().strip('"') for h in header]
    missing = [c for c in contract.required_columns if c not in header]
    if missing:
        raise SourceFileError(
            path,
            f"missing required column(s) {', '.join(missing)} for source '{contract.source}'",
            fix=f"export the file with columns {', '.join(f.name for f in contract.fields)} (see docs/sources.md)",
        )
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={h: pa.string() for h in header},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise SourceFileError(path, f"is not a readable CSV ({exc})", fix="fix the quoting/encoding of the file") from exc
    frame = table.to_pandas(types_mapper=pd.ArrowDtype).astype("string")
    for f in contract.fields:
        if f.name not in frame.columns:
            frame[f.name] = pd.Series(pd.NA, index=frame.index, dtype="string")
    frame[ROW] = range(1, len(frame) + 1)
    return frame


def _read_lines(path: Path) -> pa.Table:
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["line"], block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter="\x01", quote_char=False, escape_char=False, ignore_empty_lines=False),
            convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}, strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise SourceFileError(path, f"cannot be read as JSON lines ({exc})", fix="write one UTF-8 JSON object per line") from exc


def read_jsonl_strings(path: Path, contract: Contract) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Extract declared JSON paths as strings. Returns (frame, products) where ``frame`` has a
    ``_malformed`` flag and ``products`` holds one row per element of the products array."""
    lines = _read_lines(path)
    lines = lines.append_column(ROW, pa.array(range(1, lines.num_rows + 1), type=pa.int64()))
    paths = [f.path for f in contract.fields]
    names = [f.name for f in contract.fields]
    path_list = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    select = ", ".join(f"v[{i + 1}] AS \"{n}\"" for i, n in enumerate(names))
    with duckdb.connect() as con:
        con.execute("SET threads TO 2")
        con.register("lines", lines)
        con.execute(
            f"""CREATE TEMP TABLE parsed AS
            SELECT {ROW}, line, ok, {select} FROM (
                SELECT {ROW}, line, ok,
                       CASE WHEN ok THEN json_extract_string(line, {path_list}) END AS v
                FROM (SELECT {ROW}, line,
                             CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END AS ok
                      FROM lines))
            ORDER BY {ROW}"""
        )
        frame = con.sql(f"SELECT * EXCLUDE (ok), NOT ok AS _malformed FROM parsed ORDER BY {ROW}").df()
        products_path = contract.extra.get("products_path")
        products = pd.DataFrame()
        if products_path:
            products = con.sql(
                f"""SELECT {ROW}, line_number, item->>'$.product_id' AS product_id,
                           item->>'$.category' AS category, item->>'$.price' AS price,
                           item->>'$.quantity' AS quantity
                    FROM (SELECT {ROW}, unnest(items) AS item, generate_subscripts(items, 1) AS line_number
                          FROM (SELECT {ROW}, json_extract(line, '{products_path}[*]') AS items
                                FROM parsed WHERE ok AND json_type(line, '{products_path}') = 'ARRAY'))
                    ORDER BY {ROW}, line_number"""
            ).df()
            for key in ("product_id", "category", "price", "quantity"):
                products[key] = products[key].astype("string")
    string_cols = [c for c in frame.columns if c not in (ROW, "_malformed", "line")]
    frame[string_cols] = frame[string_cols].astype("string")
    return frame, products

