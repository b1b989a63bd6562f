"""Load one raw file into DuckDB as table ``raw`` (all VARCHAR, named after the contract's fields,
with a 1-based ``_row``); JSON sources also get ``_malformed`` and a ``products`` table.
Whole-file problems raise :class:`SourceFileError`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv

from cip.contracts import Contract
from cip.errors import SourceFileError

ROW = "_row"  # 1-based record number in the file (header excluded; = line number for JSONL)


def load_csv(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract) -> int:
    """Create ``raw`` from a CSV file; returns the row count."""
    try:
        with open(path, encoding="utf-8") as fh:
            header = [h.strip().strip('"') for h in fh.readline().rstrip("\r\n").split(",")]
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceFileError(
            path, f"cannot be read ({exc})", fix="check the file exists and is UTF-8 CSV"
        ) from exc
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
        raise SourceFileError(
            path, f"is not a readable CSV ({exc})", fix="fix the quoting/encoding of the file"
        ) from exc
    table = table.append_column(ROW, pa.array(range(1, table.num_rows + 1), type=pa.int64()))
    con.register("raw_arrow", table)
    cols = [f'"{f.name}"' if f.name in header else f'NULL::VARCHAR AS "{f.name}"' for f in contract.fields]
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw AS SELECT {ROW}, {', '.join(cols)} FROM raw_arrow")
    con.unregister("raw_arrow")
    return table.num_rows


def _read_lines(path: Path) -> pa.Table:
    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=["line"], block_size=1 << 24),
            parse_options=pacsv.ParseOptions(
                delimiter="\x01", quote_char=False, escape_char=False, ignore_empty_lines=False
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={"line": pa.string()}, strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError, OSError) as exc:
        raise SourceFileError(
            path, f"cannot be read as JSON lines ({exc})", fix="write one UTF-8 JSON object per line"
        ) from exc


def json_structure(contract: Contract) -> dict:
    """The nested VARCHAR structure of the contract's JSON paths (for one-pass ``json_transform``)."""
    root: dict = {}

    def put(path: str, leaf: object) -> None:
        keys = path.removeprefix("$.").split(".")
        node = root
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = leaf

    for f in contract.fields:
        put(f.path or f"$.{f.name}", "VARCHAR")
    if "products_path" in contract.extra:
        put(contract.extra["products_path"], [{k: "VARCHAR" for k in PRODUCT_KEYS}])
    return root


PRODUCT_KEYS = ("product_id", "category", "price", "quantity")


def _duckdb_type(node: object) -> str:
    if isinstance(node, dict):
        return "STRUCT(" + ", ".join(f'"{k}" {_duckdb_type(v)}' for k, v in node.items()) + ")"
    if isinstance(node, list):
        return _duckdb_type(node[0]) + "[]"
    return str(node)


def load_jsonl(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract) -> int:
    """Create ``raw`` (declared JSON paths as strings) and ``products`` (one row per element of
    the contract's products array) from a JSON-lines file; returns the line count.

    DuckDB's parallel NDJSON reader parses the file once against the contract's structure (every
    leaf VARCHAR); unparseable lines come back as NULL rows in place, so rows stay aligned with
    the lines, whose validity is checked separately (``_malformed``: not a JSON object)."""
    lines = _read_lines(path)
    lines = lines.append_column(ROW, pa.array(range(1, lines.num_rows + 1), type=pa.int64()))
    con.register("lines", lines)  # stays registered: quarantine keeps the raw line
    structure = json_structure(contract)
    columns = "{" + ", ".join(f"'{k}': '{_duckdb_type(v)}'" for k, v in structure.items()) + "}"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE parsed AS
            SELECT * FROM read_json('{path.as_posix()}', format = 'newline_delimited', ignore_errors = true,
                                    columns = {columns}, maximum_object_size = 67108864)"""
    )
    parsed_rows = con.execute("SELECT count(*) FROM parsed").fetchall()[0][0]
    if parsed_rows != lines.num_rows:  # blank lines shift rows: parse line by line instead
        con.execute("DROP TABLE parsed")
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE parsed AS
                SELECT UNNEST(CASE WHEN json_valid(line) THEN json_transform(line, '{json.dumps(structure)}') END)
                FROM lines ORDER BY {ROW}"""
        )
    select = ", ".join(f'p{_accessor(f.path or "$." + f.name)} AS "{f.name}"' for f in contract.fields)
    products = contract.extra.get("products_path")
    items = f"p{_accessor(products)}" if products else "NULL"
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE raw AS
            SELECT l.{ROW}, NOT l.ok AS _malformed, {select}, CASE WHEN l.ok THEN {items} END AS _products
            FROM (SELECT * FROM parsed) p POSITIONAL JOIN
                 (SELECT {ROW}, json_valid(line) AND starts_with(ltrim(line), '{{') AS ok FROM lines) l"""
    )
    con.execute("DROP TABLE parsed")
    fields = ", ".join(f"item.{k} AS {k}" for k in PRODUCT_KEYS)
    if products:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE products AS
                SELECT {ROW}, line_number, {fields}
                FROM (SELECT {ROW}, unnest(_products) AS item, generate_subscripts(_products, 1) AS line_number
                      FROM raw WHERE len(_products) > 0)"""
        )
    return lines.num_rows


def _accessor(path: str) -> str:
    return "".join(f'."{k}"' for k in path.removeprefix("$.").split("."))
