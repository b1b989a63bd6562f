"""Keys unique across the lake (Segment's ``messageId``): a row whose key is already published is
skipped, not ingested twice.

Repeats inside one file are quarantined as ``duplicate_key`` while the file is validated. Repeats
across files (a re-export, an overlapping backfill) and across runs are found here, when a staged
batch is published: files are published one at a time, in order, so "already in the lake" covers
the earlier files of the same run as well. It works on the staged tables, so both staging paths
(one-pass and generic) give the same result.

The lake's keys are held as sorted 64-bit hashes (DuckDB's ``hash``, recomputed from the lake
each run, never stored), 8 bytes a key; a published file's keys are merged in. A hash that
matches is checked against the key strings of the lake before a row is dropped, so a hash
collision never loses an event. Cost, measured on 100k customers (2.35 M events, 36 files): under
a second of CPU for a fresh run (0.5–0.8 s), and about as much to load the keys of a lake that
has them (0.4–0.9 s), on a shared two-core machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cip.contracts import Contract
from cip.lake import Lake
from cip.sql import literal_list, quote_ident
from pipelines.ingest.stream import write_table


@dataclass
class Skipped:
    """What :meth:`LakeKeys.skip_known` removed from one staged batch."""

    rows: int  # rows of the source's main table (each was one input row)
    tables: dict[str, int] = field(default_factory=dict)  # rows left in each staged table that lost rows


class LakeKeys:
    """The keys of one lake-unique source already in the lake (loaded on first use)."""

    def __init__(self, lake: Lake, contract: Contract, table: str) -> None:
        if not contract.unique:
            raise ValueError(f"source {contract.source} declares no unique key")
        self.lake, self.table, self.key = lake, table, contract.unique
        self._con = duckdb.connect()
        self._hashes: np.ndarray | None = None  # sorted; loaded on first use

    def _hash_files(self, files: list[Path]) -> tuple[np.ndarray, pa.Array]:
        """``(hashes, keys)`` of the non-null keys in Parquet ``files``."""
        if not files:
            return np.zeros(0, np.uint64), pa.array([], pa.string())
        key = quote_ident(self.key)
        table = self._con.sql(
            f"SELECT {key} AS k, hash({key}) AS h FROM read_parquet([{literal_list(files)}]) WHERE {key} IS NOT NULL"
        ).to_arrow_table()
        return table["h"].to_numpy(), table["k"].combine_chunks()

    def _known(self) -> np.ndarray:
        if self._hashes is None:
            hashes, _ = self._hash_files(self.lake.table_files(self.table))
            self._hashes = np.sort(hashes)
        return self._hashes

    def _remember(self, hashes: np.ndarray) -> None:
        merged = np.concatenate([self._known(), np.sort(hashes)])
        merged.sort(kind="stable")  # two sorted runs: timsort merges them in linear time
        self._hashes = merged

    def _seen(self, hashes: np.ndarray) -> np.ndarray:
        """Which ``hashes`` a published key has (a key with the same hash, that is). The needles
        are searched in sorted order: ten times faster than in file order (cache locality)."""
        needles, known = np.sort(hashes), self._known()
        if not len(known) or not len(needles):
            return np.zeros(len(hashes), bool)
        hit = known[np.minimum(np.searchsorted(known, needles), len(known) - 1)] == needles
        if not hit.any():
            return np.zeros(len(hashes), bool)
        return np.isin(hashes, needles[hit])

    def _in_lake(self, keys: pa.Array) -> pa.Array:
        """Which of ``keys`` (candidates whose hash matched) the lake really holds."""
        self._con.register("cip_candidates", pa.table({"k": keys}))
        try:
            key = quote_ident(self.key)
            files = literal_list(self.lake.table_files(self.table))
            found = self._con.sql(
                f"SELECT DISTINCT {key} FROM read_parquet([{files}]) WHERE {key} IN (SELECT k FROM cip_candidates)"
            ).to_arrow_table()
        finally:
            self._con.unregister("cip_candidates")
        return found.column(0).combine_chunks()

    def skip_known(self, staged_tables: Path, batch_id: str) -> Skipped:
        """Drop from the staged batch under ``staged_tables`` (``<table>/<batch_id>.parquet``) every
        row whose key the lake already holds, in every table that carries the key (events and
        their order lines); then remember the batch's keys for the files published after it."""
        main = staged_tables / self.table / f"{batch_id}.parquet"
        hashes, keys = self._hash_files([main] if main.exists() else [])
        hit = self._seen(hashes)
        skipped = Skipped(rows=0)
        duplicates = self._in_lake(pc.unique(keys.filter(pa.array(hit)))) if hit.any() else None
        if duplicates is not None and len(duplicates):
            for path in sorted(staged_tables.glob(f"*/{batch_id}.parquet")):
                if self.key not in pq.read_schema(path).names:
                    continue
                table = pq.read_table(path)
                drop = pc.fill_null(pc.is_in(table[self.key], value_set=duplicates), False)
                kept = table.filter(pc.invert(drop))
                if path == main:
                    skipped.rows = table.num_rows - kept.num_rows
                skipped.tables[path.parent.name] = write_table(kept, path)
        self._remember(hashes)
        return skipped
