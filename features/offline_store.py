"""CIP's DuckDB offline store: Feast's ``DuckDBOfflineStore`` with an ASOF-join point-in-time read.

Selected in ``feature_store.yaml`` as ``type: features.offline_store.CipDuckDBOfflineStore``.
Everything except ``get_historical_features`` is Feast's own.

Feast's generic point-in-time join (``feast.infra.offline_stores.ibis``) works in three steps:

1. It inner-joins every entity row to *every* feature row inside its TTL window.
2. It ranks those rows with a window function to keep the latest.
3. It left-joins the result back, once per feature view.

With weekly snapshots and a TTL of several weeks, step 1 multiplies the rows. This store asks
DuckDB for the same answer with one ``ASOF LEFT JOIN`` per view: the latest feature row at or
before the entity timestamp, kept only if it lies within the TTL. The result has the entity
columns first, in the input's row order, then the features in Feast's order.

``tests/test_offline_store.py`` checks that the values equal the stock store's. Feast's own
path still answers:

* entity SQL;
* non-Parquet, remote or field-mapped sources;
* created-timestamp filtering or tie-breaks;
* join-key maps;
* naive entity timestamps.
"""

from __future__ import annotations

import glob
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from feast.data_format import ParquetFormat
from feast.infra.offline_stores import offline_utils
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore, DuckDBOfflineStoreConfig
from feast.infra.offline_stores.file_source import FileSource
from feast.infra.offline_stores.offline_store import RetrievalJob, RetrievalMetadata
from feast.on_demand_feature_view import OnDemandFeatureView

from cip.sql import quote_ident, quote_literal

ORDER = "__cip_entity_row"
ORDER_TS = "__cip_entity_ts"


class CipDuckDBOfflineStoreConfig(DuckDBOfflineStoreConfig):
    """Same settings as Feast's DuckDB store; only the type name differs."""

    type: Literal["features.offline_store.CipDuckDBOfflineStore"] = (  # type: ignore[assignment]
        "features.offline_store.CipDuckDBOfflineStore"
    )


@dataclass(frozen=True)
class _ViewJoin:
    path: str  # a local Parquet file or glob
    join_key: str
    timestamp_field: str
    features: tuple[str, ...]  # source columns
    outputs: tuple[str, ...]  # result columns (prefixed when full_feature_names)
    ttl: timedelta | None


class CipDuckDBOfflineStore(DuckDBOfflineStore):
    """DuckDB offline store whose point-in-time join is one ASOF join per source (views sharing a
    source share it)."""

    @staticmethod
    def get_historical_features(
        config: Any,
        feature_views: list[Any],
        feature_refs: list[str],
        entity_df: pd.DataFrame | str,
        registry: Any,
        project: str,
        full_feature_names: bool = False,
        filter_by_created_timestamp: bool = False,
    ) -> RetrievalJob:
        plan = None
        if isinstance(entity_df, pd.DataFrame) and not filter_by_created_timestamp:
            plan = _plan(feature_views, feature_refs, entity_df, full_feature_names)
        if plan is None:
            return DuckDBOfflineStore.get_historical_features(
                config,
                feature_views,
                feature_refs,
                entity_df,
                registry,
                project,
                full_feature_names,
                filter_by_created_timestamp,
            )
        timestamp_col, joins = plan
        odfvs = [
            v
            for v in OnDemandFeatureView.get_requested_odfvs(feature_refs, project, registry)
            if v.mode != "substrait"
        ]
        ts = entity_df[timestamp_col]
        metadata = RetrievalMetadata(
            features=feature_refs,
            keys=list(set(entity_df.columns) - {timestamp_col}),
            min_event_timestamp=ts.min() if len(ts) else None,
            max_event_timestamp=ts.max() if len(ts) else None,
        )
        return AsofRetrievalJob(entity_df, timestamp_col, joins, odfvs, full_feature_names, metadata)


def _plan(
    feature_views: list[Any], feature_refs: list[str], entity_df: pd.DataFrame, full: bool
) -> tuple[str, list[_ViewJoin]] | None:
    """The ASOF plan, or None when Feast's own path must answer."""
    try:
        timestamp_col = offline_utils.infer_event_timestamp_from_entity_df(dict(entity_df.dtypes))
    except Exception:
        return None
    if not isinstance(entity_df[timestamp_col].dtype, pd.DatetimeTZDtype) or ORDER in entity_df.columns:
        return None
    joins = []
    for fv in feature_views:
        src = fv.batch_source
        if not isinstance(src, FileSource):
            return None
        parquet = isinstance(src.file_format, ParquetFormat)
        if not (parquet or (src.file_format is None and src.path.endswith(".parquet"))):
            return None
        if src.field_mapping or src.created_timestamp_column or fv.projection.join_key_map:
            return None
        if "://" in src.path or not Path(src.path).is_absolute():
            return None
        keys = [e.name for e in fv.entity_columns]
        if len(keys) != 1 or keys[0] not in entity_df.columns:
            return None
        prefix = fv.projection.name_to_use()
        names = [r.split(":", 1)[1] for r in feature_refs if r.startswith(f"{prefix}:")]
        if not _files_have(src.path, {keys[0], src.timestamp_field, *names}):
            return None
        base = fv.projection.name_alias or fv.name
        joins.append(
            _ViewJoin(
                path=src.path,
                join_key=keys[0],
                timestamp_field=src.timestamp_field,
                features=tuple(names),
                outputs=tuple(f"{base}__{n}" if full else n for n in names),
                ttl=fv.ttl or None,
            )
        )
    return timestamp_col, joins


def _files_have(path: str, columns: set[str]) -> bool:
    files = sorted(glob.glob(path))
    return bool(files) and all(columns <= set(pq.read_schema(f).names) for f in files)


def match_sql(path: str, join_key: str, timestamp_field: str, ttls: list[timedelta | None]) -> str:
    """Per entity row (``r``): the file index and row number of its latest source row at or before
    its timestamp, and per view whether that row is within the view's TTL (``live{i}``)."""
    ts = f"e.{quote_ident(ORDER_TS)}"
    lives = []
    for i, ttl in enumerate(ttls):
        live = "s.__ts IS NOT NULL"
        if ttl:
            live += f" AND s.__ts + to_microseconds({int(ttl / timedelta(microseconds=1))}) >= {ts}"
        lives.append(f"coalesce({live}, FALSE) AS live{i}")
    return f"""SELECT e.{ORDER} AS r, coalesce(s.__fi::BIGINT, -1) AS fi, coalesce(s.__n::BIGINT, -1) AS n, {", ".join(lives)}
        FROM entity e ASOF LEFT JOIN (
            SELECT {quote_ident(join_key)} AS __k, {quote_ident(timestamp_field)}::TIMESTAMPTZ AS __ts,
                   file_index AS __fi, file_row_number AS __n
            FROM read_parquet({quote_literal(path)}, file_row_number = true)) s
        ON e.{quote_ident(join_key)} = s.__k AND {ts} >= s.__ts"""


def files_sql(path: str) -> str:
    return f"SELECT DISTINCT file_index, filename FROM read_parquet({quote_literal(path)}, filename = true) ORDER BY 1"


def gather(
    path: str, files: dict[int, str], fi: np.ndarray, rows: np.ndarray, columns: list[str]
) -> pa.Table:
    """The source rows (file index ``fi``, row number ``rows``; -1: none) in the given order, NULLs
    where none.

    Reads only the files some row points at, one at a time, and takes rows by position (no join):
    a sequential take per file, then one permutation of the gathered rows into the given order.
    Memory stays near one file plus the result."""
    schema = pq.read_schema(sorted(glob.glob(path))[0])
    pieces, positions = [], []
    for k in np.unique(fi[fi >= 0]).tolist():
        at = np.flatnonzero(fi == k)
        at = at[np.argsort(rows[at], kind="stable")]
        table = pq.read_table(files[k], columns=columns)
        pieces.append(table.take(pa.array(rows[at])).combine_chunks())
        positions.append(at)
        del table
    missing = np.flatnonzero(fi < 0)
    if len(missing):
        types = pieces[0].schema if pieces else pa.schema([schema.field(c) for c in columns])
        pieces.append(pa.table({f.name: pa.nulls(len(missing), f.type) for f in types}, schema=types))
        positions.append(missing)
    stacked = pa.concat_tables(pieces).combine_chunks()
    inverse = np.empty(len(fi), dtype=np.int64)
    inverse[np.concatenate(positions)] = np.arange(len(fi))
    return _take(stacked, pa.array(inverse))


def _take(table: pa.Table, indices: pa.Array) -> pa.Table:
    """``table.take(indices)`` with the columns spread over the cores (Arrow releases the GIL)."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        columns = list(pool.map(lambda c: c.take(indices), table.columns))
    return pa.Table.from_arrays(columns, schema=table.schema)


class AsofRetrievalJob(RetrievalJob):
    """A point-in-time retrieval run by DuckDB on demand (``to_df`` / ``to_arrow``)."""

    def __init__(
        self,
        entity_df: pd.DataFrame,
        timestamp_col: str,
        joins: list[_ViewJoin],
        odfvs: list[OnDemandFeatureView],
        full_feature_names: bool,
        metadata: RetrievalMetadata,
    ) -> None:
        super().__init__()
        self._entity_df = entity_df
        self._timestamp_col = timestamp_col
        self._joins = joins
        self._odfvs = odfvs
        self._full = full_feature_names
        self._metadata = metadata

    def _to_arrow_internal(self, timeout: int | None = None) -> pa.Table:
        entity = pa.Table.from_pandas(self._entity_df, preserve_index=False)
        i = entity.schema.get_field_index(self._timestamp_col)  # as Feast's DuckDB path returns it
        stamp = entity.column(i).cast(pa.timestamp("us", tz="UTC"), safe=False)
        entity = entity.set_column(i, self._timestamp_col, stamp)
        n = entity.num_rows
        probe = entity.append_column(ORDER, pa.array(np.arange(n, dtype=np.int64)))
        probe = probe.append_column(ORDER_TS, stamp)
        out = entity
        groups: dict[tuple[str, str, str], list[_ViewJoin]] = {}
        for j in self._joins:
            groups.setdefault((j.path, j.join_key, j.timestamp_field), []).append(j)
        matches = []
        with duckdb.connect() as con:  # closed before the Python-side work (its threads would compete)
            con.execute("SET TimeZone = 'UTC'")
            con.register("entity", probe)
            for (path, key, ts_field), joins in groups.items():
                sql = match_sql(path, key, ts_field, [j.ttl for j in joins])
                matches.append(
                    (
                        path,
                        joins,
                        con.sql(sql).to_arrow_table(),
                        dict(con.execute(files_sql(path)).fetchall()),
                    )
                )
        for path, joins, match, files in matches:
            back = np.empty(n, dtype=np.int64)  # entity row -> its row in `match`
            back[match.column("r").to_numpy()] = np.arange(n)
            fi = match.column("fi").to_numpy()[back]
            needed = list(dict.fromkeys(f for j in joins for f in j.features))
            values = gather(path, files, fi, match.column("n").to_numpy()[back], needed)
            for v, j in enumerate(joins):
                live = pa.array(match.column(f"live{v}").to_numpy(zero_copy_only=False)[back])
                for f, name in zip(j.features, j.outputs, strict=True):
                    col = values.column(f)
                    out = out.append_column(name, pc.if_else(live, col, pa.nulls(n, col.type)))
        return out

    def _to_df_internal(self, timeout: int | None = None) -> pd.DataFrame:
        return self._to_arrow_internal(timeout).to_pandas()

    @property
    def full_feature_names(self) -> bool:
        return self._full

    @property
    def on_demand_feature_views(self) -> list[OnDemandFeatureView]:
        return self._odfvs

    @property
    def metadata(self) -> RetrievalMetadata | None:
        return self._metadata

    def persist(self, storage: Any, allow_overwrite: bool = False, timeout: int | None = None) -> None:
        source = storage.to_data_source()
        path = Path(getattr(source, "path", ""))
        if not isinstance(source, FileSource):
            raise NotImplementedError("CipDuckDBOfflineStore persists to file storage only")
        if path.exists() and not allow_overwrite:
            raise FileExistsError(f"{path} exists; pass allow_overwrite=True")
        pq.write_table(self.to_arrow(), path)
