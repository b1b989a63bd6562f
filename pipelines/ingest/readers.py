"""Load one raw file into DuckDB as ``raw`` (all VARCHAR, named after the contract's fields,
with a 1-based ``_row``): a table for CSV, a view over the parsing reader for JSON lines (which
also get ``_malformed`` and ``_products``).
Whole-file problems raise :class:`SourceFileError`."""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from cip.contracts import Contract
from cip.errors import CipError, SourceFileError
from cip.sql import quote_ident, quote_literal

ROW = "_row"  # 1-based record number in the file (header excluded; = line number for JSONL)


def load_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    contract: Contract,
    *,
    name: Path | None = None,
    columns: dict[str, str] | None = None,
) -> int:
    """Create ``raw`` from a CSV file (``name``: the file errors name, if ``path`` is a copy);
    ``columns`` maps the file's own header names to contract fields (``ingest.column_map``).
    Returns the row count."""
    name = name or path
    try:
        with open(path, encoding="utf-8-sig") as fh:
            header = [h.strip().strip('"') for h in fh.readline().rstrip("\r\n").split(",")]
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceFileError(
            name, f"cannot be read ({exc})", fix="check the file exists and is UTF-8 CSV"
        ) from exc
    columns = columns or {}
    field_of = {h: columns.get(h, h) for h in header}  # file header -> contract field
    present = set(field_of.values())
    missing = [c for c in contract.required_columns if c not in present]
    if missing:
        mapped = f" (after ingest.column_map {columns})" if columns else ""
        raise SourceFileError(
            name,
            f"missing required column(s) {', '.join(missing)} for source '{contract.source}'{mapped}",
            fix=f"export the file with columns {', '.join(f.name for f in contract.fields)}, or map your"
            " header names in ingest.column_map (see docs/sources.md)",
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
            name, f"is not a readable CSV ({exc})", fix="fix the quoting/encoding of the file"
        ) from exc
    table = table.append_column(ROW, pa.array(np.arange(1, table.num_rows + 1, dtype=np.int64)))
    con.register("raw_arrow", table)  # scanned in place: not copied into a DuckDB table
    source_of = {}  # contract field -> the file's column (the first one mapped to it)
    for h in header:
        source_of.setdefault(field_of[h], h)
    cols = [
        f'{quote_ident(source_of[f.name])} AS "{f.name}"'
        if f.name in source_of
        else f'NULL::VARCHAR AS "{f.name}"'
        for f in contract.fields
    ]
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw AS SELECT {ROW}, {', '.join(cols)} FROM raw_arrow")
    return table.num_rows


def _read_lines(path: Path, name: Path) -> pa.Table:
    """``(line, invalid_utf8)`` for every line of ``path``, numbered as :class:`LineIndex` numbers
    them (lines end at ``\\n``; an ``\\r`` before it is dropped, a lone ``\\r`` is part of its line).
    Read as bytes, so a line that is not UTF-8 is flagged (its bytes escaped, see
    :func:`decode_line`) instead of failing the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SourceFileError(
            name, f"cannot be read as JSON lines ({exc})", fix="write one UTF-8 JSON object per line"
        ) from exc
    raw = data.split(b"\n")
    if raw[-1] == b"":  # the newline that ends the last line (or an empty file)
        raw.pop()
    raw = [r[:-1] if r.endswith(b"\r") else r for r in raw]
    column = pa.array(raw, type=pa.binary())
    try:  # the usual case: every line is UTF-8, checked in C
        lines = column.cast(pa.string())
        invalid = pa.array(np.zeros(len(lines), dtype=bool))
    except pa.ArrowInvalid:
        decoded = [decode_line(r) for r in raw]
        lines = pa.array([text for text, _ in decoded], type=pa.string())
        invalid = pa.array([bad for _, bad in decoded], type=pa.bool_())
    return pa.table({"line": lines, "invalid_utf8": invalid})


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


class LineIndex:
    """The lines of a JSON-lines file (ending at ``\\n``; an ``\\r`` before it is dropped): their
    count, the file's SHA-256 (same read), and the text of a few of them without indexing them
    all: newlines are counted per chunk, and only the chunks holding a wanted line are searched.
    A line that is not valid UTF-8 (DuckDB's reader already rejects it as malformed JSON) is
    fetched with its bad bytes escaped (``\\xff``) and flagged, so it is quarantined with its
    line number while the rest of the file lands."""

    CHUNK = 1 << 24

    def __init__(self, path: Path, copy_to: Path | None = None) -> None:
        """Count and hash ``path``; with ``copy_to``, also write its bytes there in the same
        read, and read later lines from that copy (see :func:`take_snapshot`)."""
        self.path = self.source = path
        digest = hashlib.sha256()
        self._ends: list[int] = []  # newlines in the file up to the end of each chunk
        self._starts: list[int] = []  # byte offset of each chunk (reads can come short)
        self._newlines: dict[int, np.ndarray] = {}  # chunk → offsets of its newlines (when needed)
        self.count, last = 0, b"\n"

        offset = 0

        def take(chunk: memoryview) -> None:
            nonlocal last, offset
            self._starts.append(offset)
            offset += len(chunk)
            digest.update(chunk)
            self.count += _newlines(chunk)
            self._ends.append(self.count)
            last = bytes(chunk[-1:])

        try:  # read, not mapped: a file truncated meanwhile (log rotation) must not crash the process
            read_chunks(path, take, chunk_size=self.CHUNK, copy_to=copy_to)
        except OSError as exc:
            raise self._error(exc) from exc
        self.path = copy_to or path
        self.sha256 = digest.hexdigest()
        self.count += last != b"\n"
        self.in_place = True  # rows of ``raw`` parsed in place (not line by line)

    def _error(self, exc: Exception) -> SourceFileError:
        return SourceFileError(
            self.source, f"cannot be read as JSON lines ({exc})", fix="write one UTF-8 JSON object per line"
        )

    def _start(self, fh: BinaryIO, row: int) -> int:
        """Byte offset where 1-based line ``row`` starts (after the ``row - 1``-th newline)."""
        before = row - 1
        if before == 0:
            return 0
        c = bisect.bisect_left(self._ends, before)
        found = self._newlines  # per chunk, kept: rejected lines are fetched more than once
        if c not in found:
            start = self._starts[c]
            end = self._starts[c + 1] if c + 1 < len(self._starts) else None
            fh.seek(start)
            block = fh.read(end - start) if end is not None else fh.read()
            found[c] = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == 10) + start
        return int(found[c][before - (self._ends[c - 1] if c else 0) - 1]) + 1

    @staticmethod
    def _line_at(fh: BinaryIO, start: int) -> bytes:
        """The bytes from ``start`` up to the next newline (or the end of the file)."""
        fh.seek(start)
        parts = []
        while block := fh.read(1 << 16):
            cut = block.find(b"\n")
            parts.append(block if cut < 0 else block[:cut])
            if cut >= 0:
                break
        return b"".join(parts)

    def table(self, rows: list[int]) -> pa.Table:
        """``(_row, line, invalid_utf8)`` for the given 1-based line numbers (see :func:`decode_line`).
        The file is read, not mapped: one truncated meanwhile gives a clear error, not a crash."""
        texts, invalid = [], []
        if rows:
            with open(self.path, "rb") as fh:
                for row in rows:
                    try:
                        raw = self._line_at(fh, self._start(fh, row))
                        text, bad = decode_line(raw[:-1] if raw.endswith(b"\r") else raw)
                        texts.append(text)
                        invalid.append(bad)
                    except IndexError as exc:  # fewer lines than counted: the file changed
                        raise SourceFileError(
                            self.source,
                            f"changed while ingested (line {row} is gone)",
                            fix="ingest it again once nothing writes to it (rotate logs by renaming, not copytruncate)",
                        ) from exc
                    except OSError as exc:
                        raise self._error(exc) from exc
        return pa.table(
            {
                ROW: pa.array(rows, type=pa.int64()),
                "line": pa.array(texts, type=pa.string()),
                "invalid_utf8": pa.array(invalid, type=pa.bool_()),
            }
        )


def decode_line(raw: bytes) -> tuple[str, bool]:
    """A line's text and whether it was valid UTF-8; invalid bytes are kept as ``\\xNN`` escapes
    (the quarantine's record shows them, and the lake's raw copy keeps the bytes themselves)."""
    try:
        return raw.decode(), False
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="backslashreplace"), True


#: SQL condition on ``lines l``: the line is quarantined as malformed (a reason from
#: :data:`LINE_REASON`), whatever else was found in it.
MALFORMED_LINE = "(l.invalid_utf8 OR NOT (json_valid(l.line) AND starts_with(ltrim(l.line), '{')))"
#: SQL: the reason of a malformed line of ``lines l``.
LINE_REASON = "CASE WHEN l.invalid_utf8 THEN 'invalid_encoding' ELSE 'malformed_json' END"


def read_chunks(
    path: Path, take: Callable[[memoryview], None], *, chunk_size: int = 1 << 24, copy_to: Path | None = None
) -> None:
    """Call ``take`` on each chunk of ``path``, read into one reused buffer (no fresh pages per
    chunk); with ``copy_to``, write each chunk there too (a copy of exactly the bytes seen)."""
    with open(path, "rb", buffering=0) as fh, open(copy_to, "xb") if copy_to else nullcontext() as out:
        # fresh pages cost: a small file gets a buffer of about its own size (+1 to see its end)
        buffer = bytearray(min(chunk_size, max(1 << 16, os.fstat(fh.fileno()).st_size + 1)))
        view = memoryview(buffer)
        while size := fh.readinto(buffer):
            chunk = view[:size]
            take(chunk)
            if out is not None:
                try:
                    out.write(chunk)
                except OSError as exc:  # the lake's disk, not the source, is the problem
                    raise CipError(
                        f"cannot copy {path} into the lake ({exc})",
                        fix=f"free space under {copy_to.parent} (the lake folder, setting lake_dir)",
                    ) from exc


@dataclass
class Snapshot:
    """One source file as ingested: a private copy in the staging folder, written in the same read
    that hashes it (and, for JSON lines, counts its lines). Parsing, quarantine records and the
    lake's raw copy all read the copy, so they agree with the manifest's hash even when the user's
    file changes meanwhile (a log still being appended to, say)."""

    source: Path  # the user's file: its name is the lineage's ``_source_file``
    path: Path  # the copy
    sha256: str
    index: LineIndex | None = None  # JSON lines: the copy's lines


def take_snapshot(path: Path, dest: Path, *, json_lines: bool) -> Snapshot:
    """Copy ``path`` to ``dest`` (a new file), hashing it in the same read."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if json_lines:
        index = LineIndex(path, copy_to=dest)
        return Snapshot(path, dest, index.sha256, index)
    digest = hashlib.sha256()
    try:
        read_chunks(path, digest.update, copy_to=dest)
    except OSError as exc:
        raise SourceFileError(
            path, f"cannot be read ({exc})", fix="check the file exists and is readable"
        ) from exc
    return Snapshot(path, dest, digest.hexdigest())


def prefetch(path: Path) -> None:
    """Ask the OS to start reading ``path`` into its cache in the background, so the file is in
    memory by the time it is staged (a no-op where ``posix_fadvise`` is missing)."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
        finally:
            os.close(fd)
    except OSError:
        pass  # only a hint; reading the file reports real problems


def _newlines(chunk: bytes | memoryview) -> int:
    """Newline bytes in ``chunk``: numpy counts them 2.5× faster than ``bytes.count`` and
    without holding the GIL (the other staging thread keeps running Python)."""
    return int(np.count_nonzero(np.frombuffer(chunk, dtype=np.uint8) == 10))


def _columns(contract: Contract) -> str:
    structure = json_structure(contract)
    return "{" + ", ".join(f"'{k}': '{_duckdb_type(v)}'" for k, v in structure.items()) + "}"


def _projection(contract: Contract) -> tuple[str, str]:
    """(field columns, products list) selected from a parsed record ``p``."""
    select = ", ".join(f'p{_accessor(f.path or "$." + f.name)} AS "{f.name}"' for f in contract.fields)
    products = contract.extra.get("products_path")
    return select, (f"p{_accessor(products)}" if products else "NULL")


def register_lines(con: duckdb.DuckDBPyConnection, index: LineIndex, rows: list[int]) -> None:
    """Table ``lines(_row, line)`` with the raw text of the given lines (for quarantine records)."""
    con.register("lines_arrow", index.table(sorted(set(rows))))
    con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM lines_arrow")
    con.unregister("lines_arrow")


def parse_view(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract) -> None:
    """``raw``: the file's declared JSON paths as strings, one row per line, parsed while read."""
    select, items = _projection(contract)
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW raw AS
            SELECT row_number() OVER () AS {ROW}, FALSE AS _malformed, {select}, {items} AS _products
            FROM read_json({quote_literal(path)}, format = 'newline_delimited', ignore_errors = true,
                           columns = {_columns(contract)}, maximum_object_size = 67108864) p"""
    )


def load_jsonl(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, index: LineIndex) -> None:
    """Make ``raw`` (declared JSON paths as strings, ``_malformed``, ``_products``) readable from a
    JSON-lines file (lines counted in ``index``), plus a small table ``raw_keys`` (``_row``, unique
    key, e-mail fields).

    ``raw`` is a view: DuckDB's NDJSON reader parses the file against the contract's structure
    (every leaf VARCHAR) while validation reads it, so it is never materialized. An unparseable
    line comes back as an all-NULL row in place; :func:`mark_malformed` checks those lines after
    validation. If rows do not line up with the lines (blank lines), every line is parsed on its
    own into a table instead (``index.in_place`` is then False)."""
    parse_view(con, path, contract)
    keys = [f'"{f.name}"' for f in contract.fields if f.name == contract.unique or f.kind == "email"]
    key_sql = f"CREATE OR REPLACE TEMP TABLE raw_keys AS SELECT {', '.join([ROW, *keys])} FROM raw"
    con.execute(key_sql)
    if con.execute("SELECT count(*) FROM raw_keys").fetchall()[0][0] != index.count:
        con.execute("DROP VIEW raw")
        _parse_line_by_line(con, path, contract, index.source)
        con.execute(key_sql)
        index.in_place = False


def mark_malformed(con: duckdb.DuckDBPyConnection, index: LineIndex, contract: Contract) -> None:
    """In the validated table ``v``, give reason ``invalid_encoding`` (not UTF-8) or
    ``malformed_json`` (not a JSON object) to the rows parsed as all-NULL whose line is either (the
    first check, so it replaces any other reason). Lines parsed one by one are marked malformed
    already; those that are not UTF-8 get their reason here."""
    if not index.in_place:  # ``lines`` holds every line (see :func:`_parse_line_by_line`)
        con.execute(
            f"""UPDATE v SET _reason = 'invalid_encoding', _field = 'line'
                FROM lines l WHERE v.{ROW} = l.{ROW} AND l.invalid_utf8"""
        )
    empty = " AND ".join(f"v_{f.name} IS NULL" for f in contract.fields) + " AND _products IS NULL"
    suspects = [r for (r,) in con.execute(f"SELECT {ROW} FROM v WHERE {empty} AND NOT _malformed").fetchall()]
    if suspects:
        register_lines(con, index, suspects)
        con.execute(
            f"""UPDATE v SET _malformed = TRUE, _reason = {LINE_REASON}, _field = 'line'
                FROM lines l WHERE v.{ROW} = l.{ROW} AND {MALFORMED_LINE}"""
        )


def load_rejected(
    con: duckdb.DuckDBPyConnection, index: LineIndex, contract: Contract, rows: list[int]
) -> None:
    """``lines`` with the text of the rejected ``rows``; when ``raw`` is the in-place view, it is
    replaced by those lines parsed one by one (the quarantine keeps their raw field values)."""
    register_lines(con, index, rows)
    if index.in_place:
        select, _ = _projection(contract)
        structure = json.dumps(json_structure(contract))
        con.execute("DROP VIEW raw")
        con.execute(
            f"""CREATE TEMP TABLE raw AS
                SELECT {ROW}, {select}
                FROM (SELECT {ROW}, CASE WHEN json_valid(line) AND starts_with(ltrim(line), '{{')
                                         THEN json_transform(line, '{structure}') END AS p FROM lines)"""
        )


def _parse_line_by_line(con: duckdb.DuckDBPyConnection, path: Path, contract: Contract, name: Path) -> None:
    lines = _read_lines(path, name)
    lines = lines.append_column(ROW, pa.array(range(1, lines.num_rows + 1), type=pa.int64()))
    con.register("lines_arrow", lines)
    con.execute("CREATE OR REPLACE TEMP TABLE lines AS SELECT * FROM lines_arrow")
    con.unregister("lines_arrow")
    structure = json.dumps(json_structure(contract))
    select, items = _projection(contract)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE raw AS
            SELECT {ROW}, NOT ok AS _malformed, {select}, CASE WHEN ok THEN {items} END AS _products
            FROM (SELECT {ROW}, ok, CASE WHEN ok THEN json_transform(line, '{structure}') END AS p
                  FROM (SELECT {ROW}, line, NOT invalid_utf8 AND json_valid(line)
                                            AND starts_with(ltrim(line), '{{') AS ok FROM lines))
            ORDER BY {ROW}"""
    )


def _accessor(path: str) -> str:
    return "".join(f'."{k}"' for k in path.removeprefix("$.").split("."))
