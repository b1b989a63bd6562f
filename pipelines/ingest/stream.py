"""Single-pass staging of a JSON-lines file: the fast path for large event files.

The generic path (:func:`pipelines.ingest.pipeline.stage_file`) materializes a validated table
``v`` and builds lookups before standardizing. Here the file is parsed once: one DuckDB query
reads, validates and standardizes every line into Arrow, and the rest is finished on that
result:

1. the checks that need the whole file run on narrow columns: repeated keys, and lines that
   are not JSON objects (only the few rows that parsed as all-NULL are looked at);
2. rejected rows are split off (their ``_row``, field and reason feed the quarantine);
3. lookup columns are mapped through the Python rules, once per distinct value, as Arrow
   ``index_in`` + ``take``;
4. child tables (order lines) are built from the accepted rows' item lists;
5. pyarrow writes the Parquet files.

The outputs are the same tables, rows, columns and types as the generic path's;
``tests/test_ingest_stream.py`` holds the two paths to that.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cip.contracts import Contract
from pipelines.ingest import rules
from pipelines.ingest import standardize as std
from pipelines.ingest.nodes import Conversion, Lookup, StreamPlan
from pipelines.ingest.readers import LINE_REASON, MALFORMED_LINE, ROW, LineIndex, parse_view, register_lines
from pipelines.ingest.validate import duplicate_rows_sql, validation_sql

#: String columns with at most this share of distinct values (in a sample) get a dictionary.
DICTIONARY_RATIO = 0.3

HELPERS = ("_reason", "_field", "_empty", "_items", "_phone_region")


@dataclass
class StreamResult:
    """What the caller needs besides the written files."""

    reasons: dict[str, int]
    flagged: dict[str, int]
    tables: dict[str, int]
    rejected_rows: list[int]
    foreign_rows: int = 0  # rejected rows in a currency with no ingested FX rates


def eligible(contract: Contract) -> bool:
    """The one-pass path applies to JSON lines whose e-mail checks only flag."""
    return contract.format == "jsonl" and all(
        f.on_invalid == "flag" for f in contract.fields if f.kind == "email"
    )


def run_main(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    contract: Contract,
    plan: StreamPlan,
    *,
    currencies: set[str],
    now_sql: str,
) -> pa.Table:
    """The one full parse: every line validated (row-local checks) and standardized."""
    parse_view(con, path, contract)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW v AS {validation_sql(contract, currencies=currencies, now_sql=now_sql, deferred=True)}"
    )
    table = con.sql(plan.main).to_arrow_table()
    con.execute("DROP VIEW v")
    return table


def _whole_file_checks(
    con: duckdb.DuckDBPyConnection, table: pa.Table, index: LineIndex, contract: Contract
) -> pa.Table:
    """``(_row, _reason, _field)`` of every rejected row, also left in table ``v`` for the
    quarantine query: the query's row-local reasons, then ``invalid_encoding`` or
    ``malformed_json`` for all-NULL rows whose line is not UTF-8 or not a JSON object (it replaces
    any other reason), then ``duplicate_key`` for rows with no other reason."""
    rejected = table.select([ROW, "_reason", "_field", "_empty"]).filter(pc.is_valid(table["_reason"]))
    suspects = rejected.filter(pc.fill_null(rejected["_empty"], False))[ROW].to_pylist()
    con.register("rej_arrow", rejected)
    con.execute("CREATE OR REPLACE TEMP TABLE v AS SELECT _row, _reason, _field FROM rej_arrow")
    con.unregister("rej_arrow")
    if suspects:
        register_lines(con, index, suspects)
        con.execute(
            f"""UPDATE v SET _reason = {LINE_REASON}, _field = 'line'
                FROM lines l WHERE v._row = l._row AND {MALFORMED_LINE}"""
        )
    key = table[contract.unique] if contract.unique else None
    if contract.unique:
        con.register("keys_arrow", pa.table({ROW: table[ROW], contract.unique: table[contract.unique]}))
        key = f'"{contract.unique}"'
        # DuckDB counts distinct keys in 60 % of the time Arrow's ``unique`` takes
        ((repeats,),) = con.execute(f"SELECT count(DISTINCT {key}) < count({key}) FROM keys_arrow").fetchall()
        if repeats:
            con.execute(
                f"""INSERT INTO v SELECT _row, 'duplicate_key', '{contract.unique}'
                    FROM ({duplicate_rows_sql(contract, "keys_arrow")}) WHERE _row NOT IN (SELECT _row FROM v)"""
            )
        con.unregister("keys_arrow")
    return con.sql("SELECT _row, _reason, _field FROM v ORDER BY _row").to_arrow_table()


def _without(table: pa.Table, drop: np.ndarray) -> pa.Table:
    """``table`` without the rows at positions ``drop`` (sorted): zero-copy slices of the runs
    between them, not a filtered copy (rejected rows are few)."""
    starts = np.concatenate(([0], drop + 1))
    ends = np.concatenate((drop, [table.num_rows]))
    pieces = [table.slice(a, b - a) for a, b in zip(starts.tolist(), ends.tolist(), strict=True) if b > a]
    return pa.concat_tables(pieces) if pieces else table.slice(0, 0)


def _apply_lookup(table: pa.Table, lookup: Lookup) -> pa.Table:
    """Replace ``lookup.column`` by the rule's value for each distinct raw value of ``lookup.source``."""
    raw = table[lookup.source]
    if lookup.region_column is not None:  # key: raw value and region, joined
        raw = pc.binary_join_element_wise(raw, table[lookup.region_column], _SEPARATOR)
    keys, values = _known(lookup, pc.unique(raw).drop_null())
    position = pc.index_in(raw, value_set=keys)
    if lookup.kind == "email":
        table = _set(table, lookup.column, values["email"].take(position))
        valid = pc.fill_null(values["valid"].take(position), True)
        return _set(table, f"{lookup.column}_invalid", pc.invert(valid))
    return _set(table, lookup.column, values[lookup.value].take(position))


#: Rule results already computed, per lookup, as Arrow (keys, values), so a value seen in an
#: earlier file is mapped in Arrow without going through Python (the GIL) again.
_MEMO: dict[tuple[str, str | None], tuple[pa.Array, pa.Table]] = {}
_MEMO_LOCK = threading.Lock()
_SEPARATOR = "\x1f"


def _outputs(lookup: Lookup) -> list[str]:
    return ["email", "valid"] if lookup.kind == "email" else [lookup.value]


def _known(lookup: Lookup, distinct: pa.Array) -> tuple[pa.Array, pa.Table]:
    """``(keys, values)`` covering every value of ``distinct``: the memo's, plus the rule run
    (through :func:`rules.cached_lookup`, shared with the generic path) on the values it lacks."""
    memo_key = (lookup.cache, lookup.region if lookup.region_column is None else f"[{lookup.region_column}]")
    with _MEMO_LOCK:
        memo = _MEMO.get(memo_key)
    if memo is not None:
        position = pc.index_in(distinct, value_set=memo[0])
        hit = pc.is_valid(position)
        known_keys, known = distinct.filter(hit), memo[1].take(position.filter(hit))
        distinct = distinct.filter(pc.invert(hit))
    if not len(distinct) and memo is not None:
        return known_keys, known
    if lookup.region_column is not None:
        parts = pc.split_pattern(distinct, _SEPARATOR, max_splits=1, reverse=True)
        raw, region = (pc.list_element(parts, i).cast(pa.string()) for i in (0, 1))
        frame = pd.DataFrame(
            {"raw": pd.arrays.ArrowStringArray(raw), "region": pd.arrays.ArrowStringArray(region)}
        )
    else:
        frame = pd.DataFrame({"raw": pd.arrays.ArrowStringArray(distinct)})
    if lookup.region is not None:
        frame["region"] = pd.array([lookup.region] * len(frame), dtype=std.STR)
    mapped = rules.cached_lookup(lookup.cache, frame, lookup.build)
    if lookup.kind == "email":
        mapped["email"] = mapped["email"].where(mapped["valid"])
    fresh = pa.table(
        {c: _arrow(mapped[c], pa.bool_() if c == "valid" else pa.string()) for c in _outputs(lookup)}
    )
    with _MEMO_LOCK:
        _remember(memo_key, distinct, fresh)
    if memo is None:
        return distinct, fresh
    return pa.concat_arrays([known_keys, distinct]), pa.concat_tables([known, fresh]).combine_chunks()


def _remember(memo_key: tuple[str, str | None], keys: pa.Array, values: pa.Table) -> None:
    """Add new results to the memo (caller holds the lock); another thread may have added some."""
    memo = _MEMO.get(memo_key)
    if memo is not None and len(memo[0]) + len(keys) <= rules.CACHE_MAX:
        new = pc.is_null(pc.index_in(keys, value_set=memo[0]))
        keys, values = keys.filter(new), values.filter(new)
        _MEMO[memo_key] = (
            pa.concat_arrays([memo[0], keys]),
            pa.concat_tables([memo[1], values]).combine_chunks(),
        )
    else:
        _MEMO[memo_key] = (keys, values)


def _arrow(values: pd.Series, kind: pa.DataType) -> pa.Array:
    return pa.array(values, type=kind, from_pandas=True)


def _convert(con: duckdb.DuckDBPyConnection, table: pa.Table, conversion: Conversion) -> pa.Table:
    """Fill ``conversion.column`` for the rows with an amount and a currency (a narrow join)."""
    has = pc.and_(pc.is_valid(table[conversion.amount]), pc.is_valid(table[conversion.currency]))
    where = np.flatnonzero(has.to_numpy(zero_copy_only=False))
    if not len(where):
        return table
    picks = pa.array(where)
    con.register(
        "conv_arrow",
        pa.table(
            {
                "amount": table[conversion.amount].take(picks),
                "currency": table[conversion.currency].take(picks),
                "at": table[conversion.at].take(picks),
                "i": pa.array(np.arange(len(where))),
            }
        ),
    )
    base, joins = rules.to_base("c.amount", "c.currency", "c.at::DATE", "r")
    converted = con.sql(f"SELECT {base} FROM conv_arrow c {joins} ORDER BY c.i").to_arrow_table().column(0)
    con.unregister("conv_arrow")
    values = np.full(table.num_rows, np.nan)
    values[where] = converted.to_numpy()
    missing = np.ones(table.num_rows, dtype=bool)
    missing[where] = converted.is_null().to_numpy()
    return _set(table, conversion.column, pa.array(values, mask=missing, type=pa.float64()))


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, values)


def _children(con: duckdb.DuckDBPyConnection, accepted: pa.Table, plan: StreamPlan) -> dict[str, pa.Table]:
    """Tables built from the items of the accepted rows (``items``: flattened in Arrow, each with
    its row's ``plan.item_columns`` and its line number), with the category map of the items."""
    if not plan.children:
        return {}
    items = _items(accepted, plan.item_columns)
    categories = pc.unique(pc.struct_field(items["item"], "category")).drop_null()
    frame = pd.DataFrame({"raw": pd.arrays.ArrowStringArray(categories.cast(pa.string()))})
    mapped = rules.cached_lookup("category_map:category_lookup", frame, rules.category_lookup)
    con.register("items", items)
    con.register("item_category_map", pa.Table.from_pandas(mapped, preserve_index=False))
    out = {name: con.sql(sql).to_arrow_table() for name, sql in plan.children.items()}
    con.unregister("items")
    con.unregister("item_category_map")
    return out


def _items(accepted: pa.Table, columns: tuple[str, ...]) -> pa.Table:
    """One row per element of the ``_items`` lists: the parent row's ``columns``, the element as
    ``item`` and its 1-based ``line_number`` (what SQL ``unnest`` + ``generate_subscripts`` give)."""
    lists = accepted["_items"].combine_chunks()
    parents = pc.list_parent_indices(lists)
    parent = parents.to_numpy()  # non-decreasing: a row's items are consecutive, in order
    first = np.concatenate(([True], parent[1:] != parent[:-1])) if len(parent) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    line = np.arange(len(parent)) - starts[np.cumsum(first) - 1] + 1
    items = accepted.select(list(columns)).take(parents)
    items = items.append_column("item", pc.list_flatten(lists))
    return items.append_column("line_number", pa.array(line, pa.int64()))


def _with_lineage(table: pa.Table, lineage: dict[str, pa.Array]) -> pa.Table:
    """Append the constant lineage columns (one-element arrays, repeated)."""
    zeros = pa.array(np.zeros(table.num_rows, dtype=np.int32))
    for name, value in lineage.items():
        table = table.append_column(name, value.take(zeros))
    return table


def _dictionary_columns(table: pa.Table) -> list[str]:
    """String columns repetitive enough (in the first rows) for dictionary encoding to pay."""
    sample = table.slice(0, 20_000)
    chosen = []
    for name in table.column_names:
        if not pa.types.is_string(table.schema.field(name).type):
            continue
        column = sample[name]
        present = len(column) - column.null_count
        if present == 0 or pc.count_distinct(column).as_py() <= DICTIONARY_RATIO * present:
            chosen.append(name)
    return chosen


def write_table(table: pa.Table, dest: Path) -> int:
    """Write one lake Parquet file (zstd level 1, dictionaries only where they pay). Statistics
    are kept for the columns readers filter ranges on (times, amounts, flags), not for strings:
    ids and names spread over their whole range in every row group, and their min/max cost
    about 14 % of the write."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        table,
        dest,
        compression="zstd",
        compression_level=1,
        use_dictionary=_dictionary_columns(table),
        write_statistics=[f.name for f in table.schema if not pa.types.is_string(f.type)],
    )
    return table.num_rows


def finish(
    con: duckdb.DuckDBPyConnection,
    table: pa.Table,
    index: LineIndex,
    contract: Contract,
    plan: StreamPlan,
    *,
    lineage: dict[str, pa.Array],
    out_dir: Path,
    batch_id: str,
    foreign: set[str],
) -> StreamResult:
    """Everything after the parse: whole-file checks, the split, lookups, child tables, writes."""
    rejected = _whole_file_checks(con, table, index, contract)
    rows = rejected[ROW].to_numpy()
    reasons = {
        str(k): int(n)
        for k, n in con.execute("SELECT _reason, count(*) FROM v GROUP BY 1 ORDER BY 1").fetchall()
    }
    is_rejected = pa.array(np.isin(table[ROW].to_numpy(), rows)) if len(rows) else None
    foreign_rows = 0
    if foreign and plan.currency_column and is_rejected is not None:
        bad = table.filter(is_rejected)[plan.currency_column]
        hits = pc.is_in(pc.utf8_upper(bad), value_set=pa.array(sorted(foreign)))
        foreign_rows = int(pc.sum(hits).as_py() or 0)
    accepted = (
        _without(table, np.flatnonzero(is_rejected.to_numpy(zero_copy_only=False))) if len(rows) else table
    )
    for lookup in plan.lookups:
        accepted = _apply_lookup(accepted, lookup)
    for conversion in plan.conversions:
        accepted = _convert(con, accepted, conversion)
    flagged = {
        f"invalid_{lk.column}": int(pc.sum(accepted[f"{lk.column}_invalid"]).as_py() or 0)
        for lk in plan.lookups
        if lk.kind == "email"
    }
    children = _children(con, accepted, plan)
    tables = {
        plan.table: write_table(
            _with_lineage(accepted.drop_columns(list(HELPERS)), lineage),
            out_dir / plan.table / f"{batch_id}.parquet",
        )
    }
    for name, child in children.items():
        tables[name] = write_table(_with_lineage(child, lineage), out_dir / name / f"{batch_id}.parquet")
    return StreamResult(
        reasons=reasons,
        flagged=flagged,
        tables=tables,
        rejected_rows=rows.tolist(),
        foreign_rows=foreign_rows,
    )
