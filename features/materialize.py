"""Materialization: the latest snapshot of every customer into the online store.

Incremental by content: each batch view keeps a hash per customer of what is online
(``<features dir>/online_state/<view>.parquet``); only customers whose values changed are written
(upserts, one transaction per chunk, so a customer's rows change together) and customers gone from
the snapshot are deleted. Rows are encoded in worker processes while the main process writes (both cores), in
bounded chunks. With a SQLite online store the rows are written directly in Feast's format
(``features.online``); any other online store gets Feast's own ``write_to_online_store``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cip.errors import MissingInputError
from features import catalog as cat
from features import online
from features.paths import online_state_dir, snapshot_dir

Progress = Callable[[str, int, int], None]
_TOKEN_TABLE = "_cip_materialized"


@dataclass
class ViewResult:
    view: str
    mode: str  # full (every customer written) | upsert (changed ones) | unchanged | feast
    customers: int
    written: int
    removed: int
    seconds: float


@dataclass
class MaterializeResult:
    snapshot: date
    views: list[ViewResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_written(self) -> int:
        return sum(v.written * len(cat.VIEWS[v.view].features) for v in self.views)


# --- worker side ----------------------------------------------------------------------------------
def _payload(keys: list[bytes], columns: list, event_ts: np.ndarray, idx: np.ndarray) -> tuple:
    """What one worker needs for one chunk (copied, so workers share nothing with the parent)."""
    return ([keys[i] for i in idx.tolist()], [(k, v[idx], n[idx]) for k, v, n in columns], event_ts[idx])


def _columns(table: pa.Table, features: list[cat.Feature]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    out = []
    for f in features:
        col = table.column(f.name).combine_chunks()
        null = col.is_null().to_numpy(zero_copy_only=False)
        if f.kind == "timestamp":
            values = pc.fill_null(col.cast(pa.int64()), 0).to_numpy() // 1_000_000
        elif f.kind == "int":
            values = pc.fill_null(col, 0).to_numpy()
        else:
            values = col.to_numpy(zero_copy_only=False).astype(np.float64)
            null = null | np.isnan(values)
        out.append((f.kind, values, null))
    return out


def _row_hashes(columns: list[tuple[str, np.ndarray, np.ndarray]]) -> np.ndarray:
    """A 64-bit hash per customer of all its values of a view (nulls included)."""
    h = np.zeros(len(columns[0][1]) if columns else 0, np.uint64)
    for _, values, null in columns:
        col = pd.util.hash_array(np.where(null, 0, values).view(np.uint64)) ^ null.astype(np.uint64)
        h = h * np.uint64(1_000_003) ^ col
    return h


# --- state ----------------------------------------------------------------------------------------
def _read_token(path: Path, table: str) -> str | None:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {_TOKEN_TABLE} (tbl TEXT PRIMARY KEY, token TEXT)")
        row = con.execute(f"SELECT token FROM {_TOKEN_TABLE} WHERE tbl = ?", (table,)).fetchone()
        con.commit()
        return row[0] if row else None
    finally:
        con.close()


def _write_token(path: Path, table: str, token: str) -> None:
    import sqlite3

    con = sqlite3.connect(path)
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {_TOKEN_TABLE} (tbl TEXT PRIMARY KEY, token TEXT)")
        con.execute(f"INSERT OR REPLACE INTO {_TOKEN_TABLE} VALUES (?, ?)", (table, token))
        con.commit()
    finally:
        con.close()


def _load_state(path: Path, token: str | None) -> pd.DataFrame | None:
    if token is None or not path.exists():
        return None
    meta = pq.read_schema(path).metadata or {}
    if meta.get(b"token", b"").decode() != token:
        return None
    tab = pq.read_table(path)
    return pd.DataFrame(
        {
            cat.JOIN_KEY: tab.column(cat.JOIN_KEY).to_numpy(zero_copy_only=False),
            "h": tab.column("h").to_numpy(),
        }
    )


def _save_state(path: Path, ids: pa.Array, hashes: np.ndarray, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tab = pa.table({cat.JOIN_KEY: ids, "h": pa.array(hashes, pa.uint64())})
    tab = tab.replace_schema_metadata({"token": token})
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(tab, tmp)
    os.replace(tmp, path)


# --- main -----------------------------------------------------------------------------------------
def latest_snapshot(data_dir: Path) -> tuple[date, Path]:
    files = sorted(snapshot_dir(data_dir).glob("*.parquet"))
    if not files:
        raise MissingInputError(
            f"no feature snapshots in {snapshot_dir(data_dir)}",
            fix="build them first: `cip features build`",
        )
    return date.fromisoformat(files[-1].stem), files[-1]


def materialize(store: Any, *, progress: Progress | None = None, full: bool = False) -> MaterializeResult:
    """Write the latest snapshot into the online store; see the module docstring."""
    t0 = time.perf_counter()
    snap_date, path = latest_snapshot(store.data_dir)
    result = MaterializeResult(snap_date)
    config = store.feast.config
    db = online.sqlite_path(config)
    snap_ts = datetime(snap_date.year, snap_date.month, snap_date.day, tzinfo=UTC)
    pool = _worker_pool(store.config.workers) if db is not None else None
    try:
        _materialize_views(store, result, path, snap_ts, db, full, progress, pool)
    finally:
        if pool is not None:
            pool.terminate()
    result.seconds = time.perf_counter() - t0
    return result


def _materialize_views(
    store: Any,
    result: MaterializeResult,
    path: Path,
    snap_ts: datetime,
    db: Path | None,
    full: bool,
    progress: Progress | None,
    pool: Any,
) -> None:
    config = store.feast.config
    ids = pq.read_table(path, columns=[cat.JOIN_KEY]).column(cat.JOIN_KEY).combine_chunks()
    id_index = pd.Index(ids.to_numpy(zero_copy_only=False))
    n = len(id_index)
    event_ts = np.full(n, online.epoch_seconds(snap_ts), np.int64)
    keys: list[bytes] = []
    key_order = np.zeros(0, np.int64)
    for view in cat.BATCH_VIEWS:
        t1 = time.perf_counter()
        fv = store.feast.get_feature_view(view.name)
        names = sorted(f.name for f in view.features)  # SQLite's order of feature rows within a key
        if db is None:
            table = pq.read_table(path, columns=[cat.JOIN_KEY, cat.TIMESTAMP_FIELD, *names])
            result.views.append(_materialize_with_feast(store, view.name, table, progress))
            continue
        table = pq.read_table(path, columns=names)
        columns = _columns(table, [cat.FEATURES[c] for c in names])
        del table
        hashes = _row_hashes(columns)
        tname = online.table_name(config, fv)
        state_path = online_state_dir(store.data_dir) / f"{view.name}.parquet"
        state = None if full else _load_state(state_path, _read_token(db, tname))
        removed: list[Any] = []
        have_state = state is not None
        if state is None:
            changed = np.ones(n, bool)
        else:
            pos = pd.Index(state[cat.JOIN_KEY]).get_indexer(id_index)
            old_h = state["h"].to_numpy()
            changed = (pos < 0) | (old_h[np.maximum(pos, 0)] != hashes)
            removed = state[cat.JOIN_KEY][~state[cat.JOIN_KEY].isin(id_index)].tolist()
            del state, pos, old_h
        n_changed = int(changed.sum())
        if n_changed == 0 and not removed:
            result.views.append(ViewResult(view.name, "unchanged", n, 0, 0, time.perf_counter() - t1))
            if progress:
                progress(f"{view.name} (unchanged)", 1, 1)
            continue
        if not keys:  # entity keys in SQLite's order, once for all views
            keys = online.entity_keys(id_index.tolist())
            key_order = np.argsort(np.array(keys, dtype=object), kind="stable")
        order = key_order[changed[key_order]]
        chunk = store.config.chunk_customers
        payloads = (
            _payload(keys, columns, event_ts, order[lo : lo + chunk]) for lo in range(0, len(order), chunk)
        )
        mode = "upsert" if have_state else "full"
        writer = online.SqliteWriter(db, tname, names)
        try:
            done = 0
            for enc in _encoded(payloads, len(order) > chunk, pool):
                writer.write(enc)
                done += enc.n
                if progress:
                    progress(f"{view.name} ({mode})", done, len(order))
            if have_state:
                gone = online.entity_keys(removed)
            else:  # no record of what is online: whatever is not in the snapshot goes
                gone = sorted(writer.keys() - set(keys))
                removed = gone
            writer.delete(gone)
        finally:
            writer.close()
        del columns
        token = uuid.uuid4().hex
        _write_token(db, tname, token)
        _save_state(state_path, ids, hashes, token)
        store.feast.registry.apply_materialization(fv, config.project, snap_ts, snap_ts, commit=True)
        pa.default_memory_pool().release_unused()
        result.views.append(
            ViewResult(view.name, mode, n, len(order), len(removed), time.perf_counter() - t1)
        )


def _encoded(payloads: Iterator[tuple], parallel: bool, pool: Any) -> Iterator[online.EncodedChunk]:
    """Encoded chunks in order: by the worker pool (while the caller writes) or inline."""
    if pool is None or not parallel:
        yield from map(online.encode_payload, payloads)
    else:
        yield from pool.imap(online.encode_payload, payloads)


def _worker_pool(workers: int) -> Any:
    """Encoding processes, forked before any data is loaded (so they start small and share nothing
    big with the parent); each gets only its chunk through a pipe."""
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        return None
    return mp.get_context("fork").Pool(workers)


def _materialize_with_feast(store: Any, view: str, table: pa.Table, progress: Progress | None) -> ViewResult:
    """Any non-SQLite online store: Feast's own writer, in bounded chunks."""
    t1 = time.perf_counter()
    chunk = store.config.chunk_customers
    n = table.num_rows
    for lo in range(0, n, chunk):
        store.feast.write_to_online_store(view, table.slice(lo, chunk).to_pandas())
        if progress:
            progress(f"{view} (feast)", min(n, lo + chunk), n)
    return ViewResult(view, "feast", n, n, 0, time.perf_counter() - t1)
