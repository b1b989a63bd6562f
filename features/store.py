"""The Python API of CIP's feature store (the CLI and the training/serving code call these).

Stores are chosen only in ``features/feature_store.yaml``; this module points it at the settings
data dir (``CIP_FEAST_DIR``) and never names a store type, except that the fast online writer is
used when the configured online store is SQLite (any other store gets Feast's own writer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cip.errors import MissingInputError
from features import catalog as cat
from features.config import FeatureConfig, FeatureSettings
from features.paths import REPO_DIR, export_data_dir, feature_data_dir, fresh_source_path

Progress = Callable[[str, int, int], None]
_LOCK = threading.Lock()


@dataclass
class ApplyResult:
    registry: Path
    objects: list[str]


class CipFeatureStore:
    """One feature store under ``<settings.data_dir>/features`` (a thin layer over ``feast.FeatureStore``)."""

    def __init__(self, settings: FeatureSettings, config: FeatureConfig | None = None) -> None:
        from feast import FeatureStore

        _quiet_feast()
        self.settings = settings
        self.config = config or settings.features
        self.data_dir = feature_data_dir(settings)  # created by writes (apply), never by reads
        with _LOCK:  # the YAML is read (and ${CIP_FEAST_DIR} expanded) right here
            export_data_dir(self.data_dir)
            self.feast = FeatureStore(repo_path=str(REPO_DIR))
        self._services: dict[str, Any] = {}
        self._push_plan: tuple[list[str], bool] | None = None

    # --- definitions ----------------------------------------------------------------------------
    def objects(self) -> dict[str, Any]:
        from features.repo import build_objects

        return build_objects(self.data_dir, self.config)

    def apply(self) -> ApplyResult:
        """Register every definition (idempotent) and create the online tables."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _ensure_fresh_source(self.data_dir)
        _prepare_online_db(self)
        objects = self.objects()
        self.feast.apply(list(objects.values()))
        self._services.clear()
        self._push_plan = None
        return ApplyResult(Path(self.feast.config.registry.path), sorted(objects))

    def service(self, name: str) -> Any:
        """The registered ``FeatureService`` (cached)."""
        if name not in self._services:
            if name not in cat.SERVICES:
                raise cat.unknown_service(name)
            self.require_registry()
            self._services[name] = self.feast.get_feature_service(name, allow_cache=True)
        return self._services[name]

    def require_registry(self) -> None:
        """Stop with a clear error, before Feast creates an empty registry as a side effect of a
        read, when the definitions were never applied."""
        path = str(self.feast.config.registry.path)
        if "://" not in path and not Path(path).exists():
            raise MissingInputError(
                f"no feature registry at {path}",
                fix="run `cip features materialize` (it applies the definitions first)",
            )

    # --- offline ----------------------------------------------------------------------------------
    def build_snapshots(
        self, *, dates: Sequence[date] | None = None, progress: Progress | None = None, force: bool = False
    ) -> Any:
        from features.snapshots import build_snapshots

        return build_snapshots(self.settings, dates=dates, config=self.config, progress=progress, force=force)

    def training_frame(self, service: str, entity_df: pd.DataFrame) -> pd.DataFrame:
        """Point-in-time features of ``service`` for rows ``(customer_id, event_timestamp)``.

        Each row gets the latest snapshot at or before its ``event_timestamp`` (within the views'
        TTL); request-time features use ``event_timestamp`` as request time. Extra columns (labels)
        are kept, and so is the row order. The service's batch and stream views are joined by
        Feast; its on-demand view is computed vectorized by ``features.repo.on_demand_frame``
        (identical values, without Feast's row-by-row offline path).
        """
        from features.repo import on_demand_frame

        missing = {cat.JOIN_KEY, cat.TIMESTAMP_FIELD} - set(entity_df.columns)
        if missing:
            raise ValueError(f"entity_df lacks {sorted(missing)}")
        df = entity_df.copy()
        df[cat.TIMESTAMP_FIELD] = pd.to_datetime(df[cat.TIMESTAMP_FIELD], utc=True)
        df["_cip_row"] = np.arange(len(df))
        refs, inputs = [], []
        for proj in self.service(service).feature_view_projections:
            if proj.name == cat.RECENCY.name:
                inputs = sorted({src for src, _ in cat.ON_DEMAND_DAYS.values()})
                continue
            refs += [f"{proj.name_to_use()}:{f.name}" for f in proj.features]
        served = {r.split(":")[1] for r in refs}
        refs += [f"{cat.FEATURES[c].view}:{c}" for c in inputs if c not in served]
        table = self.feast.get_historical_features(entity_df=df, features=refs).to_arrow()
        rows = table.column("_cip_row").to_numpy()
        if len(rows) and not (np.diff(rows) > 0).all():  # the CIP offline store keeps the order
            table = table.take(pa.array(np.argsort(rows, kind="stable")))
        if inputs:  # request time = the row's timestamp
            small = table.select([*inputs, cat.TIMESTAMP_FIELD]).to_pandas()
            small[cat.REQUEST_TS] = small[cat.TIMESTAMP_FIELD]
            for name, values in on_demand_frame(small).items():
                table = table.append_column(name, pa.array(values.to_numpy(), from_pandas=True))
        extra = [c for c in entity_df.columns if c not in (cat.JOIN_KEY, cat.TIMESTAMP_FIELD)]
        cols = [cat.JOIN_KEY, cat.TIMESTAMP_FIELD, *extra, *cat.service_features(service)]
        return table.select(cols).to_pandas()

    # --- online -----------------------------------------------------------------------------------
    def online_features(
        self, service: str, customer_ids: Iterable[str], request_ts: datetime | None = None
    ) -> dict[str, list[Any]]:
        """Latest features of ``service`` for customers, as ``{column: [values]}``: the join key,
        then the service's features in the FeatureService's order. Request-time features count
        to ``request_ts`` (default: now)."""
        ids = list(customer_ids)
        now = request_ts or datetime.now(UTC)
        rows = [{cat.JOIN_KEY: c, cat.REQUEST_TS: now} for c in ids]
        resp = self.feast.get_online_features(features=self.service(service), entity_rows=rows)
        out = resp.to_dict()
        return {name: out[name] for name in [cat.JOIN_KEY, *cat.service_features(service)]}

    def materialize(self, *, progress: Progress | None = None, full: bool = False) -> Any:
        """Load the latest snapshot of every customer into the online store (changed customers only)."""
        from features.materialize import materialize

        return materialize(self, progress=progress, full=full)

    def push_events(self, events: pd.DataFrame) -> pd.DataFrame:
        """Push fresh web/app events ``(customer_id, ts, event)`` to the stream view; returns what was pushed.

        Per customer the view keeps the product-view and cart-add times of the hour up to the
        latest event, so counts slide correctly across pushes.
        """
        from feast.data_source import PushMode

        if events.empty:
            return events.iloc[0:0]
        ev = events[[cat.JOIN_KEY, "ts", "event"]].copy()
        ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
        ids = list(dict.fromkeys(ev[cat.JOIN_KEY].tolist()))
        state = self.feast.get_online_features(
            features=[f"{cat.FRESH.name}:{f}" for f in ("recent_view_ts", "recent_cart_ts", "last_event_ts")],
            entity_rows=[{cat.JOIN_KEY: c} for c in ids],
        ).to_dict()
        prev = {
            c: (state["recent_view_ts"][i] or [], state["recent_cart_ts"][i] or [], state["last_event_ts"][i])
            for i, c in enumerate(ids)
        }
        window = timedelta(minutes=cat.FRESH_WINDOW_MINUTES)
        rows = []
        for cid, grp in ev.groupby(cat.JOIN_KEY, sort=False):
            views, carts, last = prev[cid]
            views = [_utc(t) for t in views] + grp.loc[
                grp["event"] == cat.WEB_EVENTS["product_views"], "ts"
            ].tolist()
            carts = [_utc(t) for t in carts] + grp.loc[
                grp["event"] == cat.WEB_EVENTS["cart_adds"], "ts"
            ].tolist()
            newest = max([t for t in (_utc(last), grp["ts"].max()) if t is not None])
            views = sorted(t for t in views if newest - window < t <= newest)
            carts = sorted(t for t in carts if newest - window < t <= newest)
            rows.append(
                {
                    cat.JOIN_KEY: cid,
                    cat.TIMESTAMP_FIELD: newest,
                    "product_views_1h": len(views),
                    "cart_adds_1h": len(carts),
                    "last_event_ts": newest,
                    "recent_view_ts": [t.to_pydatetime() for t in views],
                    "recent_cart_ts": [t.to_pydatetime() for t in carts],
                }
            )
        df = pd.DataFrame(rows)
        views, precompute = self._push_targets()
        if precompute:  # Feast's push also refreshes pre-computed service vectors
            self.feast.push(cat.PUSH_SOURCE, df, to=PushMode.ONLINE)
        else:  # what push does, without re-reading the registry for every event
            for name in views:
                self.feast.write_to_online_store(name, df, allow_registry_cache=True)
        return df

    def _push_targets(self) -> tuple[list[str], bool]:
        """The views the push source feeds, and whether a FeatureService pre-computes vectors that a
        push must refresh; resolved once per store (Feast's ``push`` reads the uncached registry for
        the latter on every call, most of an event's cost). ``apply`` resets it."""
        if self._push_plan is None:
            from feast.data_source import PushSource

            fvs = [*self.feast.list_feature_views(allow_cache=True)]
            fvs += self.feast.list_stream_feature_views(allow_cache=True)
            views = sorted(
                fv.name
                for fv in fvs
                if isinstance(fv.stream_source, PushSource) and fv.stream_source.name == cat.PUSH_SOURCE
            )
            precompute = any(
                getattr(s, "precompute_online", False) for s in self.feast.list_feature_services()
            )
            self._push_plan = (views, precompute or not views)
        return self._push_plan


def _quiet_feast() -> None:
    """Hide Feast's "experimental" notices for the stream and on-demand views CIP declares on
    purpose. Feast's modules put ``simplefilter("once", RuntimeWarning)`` first when imported, so
    this runs after the import."""
    import warnings

    for text in ("Stream feature views are experimental", "On demand feature view is an experimental"):
        warnings.filterwarnings("ignore", message=text, category=RuntimeWarning)


def _utc(t: Any) -> pd.Timestamp | None:
    if t is None or (not isinstance(t, list | tuple) and pd.isna(t)):
        return None
    return pd.Timestamp(t).tz_convert("UTC") if pd.Timestamp(t).tzinfo else pd.Timestamp(t).tz_localize("UTC")


def _ensure_fresh_source(data_dir: Path) -> None:
    """The push source's batch side must exist for historical retrieval; start it empty."""
    path = fresh_source_path(data_dir)
    if path.exists():
        return
    ts = pa.timestamp("us", tz="UTC")
    types = {"int": pa.int64(), "timestamp": ts, "timestamp_list": pa.list_(ts), "float": pa.float64()}
    schema = pa.schema(
        [(cat.JOIN_KEY, pa.string()), (cat.TIMESTAMP_FIELD, ts)]
        + [(f.name, types[f.kind]) for f in cat.FRESH.features]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(schema.empty_table(), path)


def _prepare_online_db(store: CipFeatureStore) -> None:
    """Create a new SQLite online store with large pages (faster bulk loads); no-op otherwise."""
    from features.online import prepare_sqlite_file

    prepare_sqlite_file(store.feast.config)


# --- module-level API for the CLI ------------------------------------------------------------------
def open_store(settings: FeatureSettings, config: FeatureConfig | None = None) -> CipFeatureStore:
    return CipFeatureStore(settings, config)


def build(settings: FeatureSettings, *, progress: Progress | None = None, force: bool = False) -> Any:
    """`cip features build`: write the snapshots."""
    from features.snapshots import build_snapshots

    return build_snapshots(settings, progress=progress, force=force)


def apply(settings: FeatureSettings) -> ApplyResult:
    """`cip features apply`: register the definitions."""
    return open_store(settings).apply()


def materialize(settings: FeatureSettings, *, progress: Progress | None = None, full: bool = False) -> Any:
    """`cip features materialize`: latest snapshots into the online store (applies first)."""
    store = open_store(settings)
    store.apply()
    return store.materialize(progress=progress, full=full)


def training_frame(settings: FeatureSettings, service: str, entity_df: pd.DataFrame) -> pd.DataFrame:
    return open_store(settings).training_frame(service, entity_df)


def online_features(
    settings: FeatureSettings, service: str, customer_ids: Iterable[str], request_ts: datetime | None = None
) -> dict[str, list[Any]]:
    return open_store(settings).online_features(service, customer_ids, request_ts)


def push_events(settings: FeatureSettings, events: pd.DataFrame) -> pd.DataFrame:
    return open_store(settings).push_events(events)
