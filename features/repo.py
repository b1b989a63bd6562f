"""Feast definitions of CIP, all derived from ``features.catalog``.

:func:`build_objects` returns the entity, sources, views and services for one feature data dir;
``features.store`` applies them. For the ``feast`` CLI run inside ``features/`` (with
``CIP_FEAST_DIR`` exported), the objects are also created at import time below.
"""

from __future__ import annotations

import os
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from feast import (
    Entity,
    FeatureService,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
    StreamFeatureView,
    ValueType,
)
from feast.data_format import ParquetFormat
from feast.types import Array, Float64, Int64, UnixTimestamp

from features import catalog as cat
from features.config import FeatureConfig
from features.paths import DATA_DIR_ENV, fresh_source_path, snapshot_glob

FEAST_TYPES = {
    "float": Float64,
    "int": Int64,
    "timestamp": UnixTimestamp,
    "timestamp_list": Array(UnixTimestamp),
}
#: Request data every on-demand view may use.
REQUEST_SOURCE_NAME = "request_time"


def _fields(view: cat.View, describe: bool = True) -> list[Field]:
    # On-demand schemas are compared to the inferred ones field by field, descriptions included.
    return [
        Field(name=f.name, dtype=FEAST_TYPES[f.kind], description=f.description if describe else "")
        for f in view.features
    ]


def _recency_udf() -> tuple[Any, str]:
    """The python-mode transform of the recency view, as a function and its self-contained source.

    Feast rebuilds on-demand transforms from their source text, so the catalogue's pairs are
    written into the source rather than captured from this module.
    """
    pairs = tuple((name, src) for name, (src, _) in cat.ON_DEMAND_DAYS.items())
    source = f"""def {cat.RECENCY.name}(inputs):
    pairs = {pairs!r}

    def secs(v):
        if v is None:
            return None
        if isinstance(v, (int, float)):
            return None if v != v else float(v)
        try:
            return None if v != v else v.timestamp()
        except (AttributeError, ValueError):
            return None

    now = [secs(v) for v in inputs[{cat.REQUEST_TS!r}]]
    out = {{}}
    for name, src in pairs:
        out[name] = [None if t is None or n is None else round((n - t) / 86400.0 * 10000.0) / 10000.0
                     for t, n in zip(map(secs, inputs[src]), now)]
    return out
"""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, f"<{cat.RECENCY.name}>", "exec"), namespace)  # our own generated source
    return namespace[cat.RECENCY.name], source


def on_demand_frame(frame: pd.DataFrame, request_col: str = cat.REQUEST_TS) -> pd.DataFrame:
    """The recency view computed vectorized over a frame, bit for bit what the python transform gives.

    Used for training frames: Feast's python-mode transforms turn the whole joined table into
    Python objects offline (slow); serving still goes through Feast's on-demand view.
    """

    def secs(col: pd.Series) -> np.ndarray:
        ts = pd.to_datetime(col, utc=True)
        us = ts.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[us]").astype("int64").to_numpy()
        return np.where(ts.isna().to_numpy(), np.nan, us / 1e6)

    now = secs(frame[request_col])
    out = pd.DataFrame(index=frame.index)
    for name, (src, _) in cat.ON_DEMAND_DAYS.items():
        out[name] = np.rint((now - secs(frame[src])) / 86400.0 * 10000.0) / 10000.0
    return out


def _served(view: Any) -> Any:
    """The view, or a projection of it without its internal (state) features."""
    spec = cat.VIEWS[view.name]
    if any(f.internal for f in spec.features):
        return view[[f.name for f in spec.features if not f.internal]]
    return view


def build_objects(data_dir: Path, config: FeatureConfig | None = None) -> dict[str, Any]:
    """Every Feast object of the repo, by name."""
    cfg = config or FeatureConfig()
    customer = Entity(
        name=cat.ENTITY,
        join_keys=[cat.JOIN_KEY],
        value_type=ValueType.STRING,
        description="A resolved customer (identity resolution output); no PII.",
    )
    snapshots = FileSource(
        name=cat.SNAPSHOT_TABLE,
        path=snapshot_glob(data_dir),
        file_format=ParquetFormat(),
        timestamp_field=cat.TIMESTAMP_FIELD,
        description="Weekly feature snapshots (features.snapshots).",
    )
    objects: dict[str, Any] = {customer.name: customer, snapshots.name: snapshots}
    views: dict[str, Any] = {}
    for view in cat.BATCH_VIEWS:
        views[view.name] = FeatureView(
            name=view.name,
            entities=[customer],
            ttl=timedelta(days=cfg.ttl_days),
            schema=_fields(view),
            source=snapshots,
            online=True,
            description=view.description,
            tags={"kind": "batch"},
        )

    fresh_batch = FileSource(
        name=f"{cat.FRESH.name}_batch",
        path=fresh_source_path(data_dir).as_posix(),
        file_format=ParquetFormat(),
        timestamp_field=cat.TIMESTAMP_FIELD,
        description="Offline side of the pushed fresh events.",
    )
    push = PushSource(name=cat.PUSH_SOURCE, batch_source=fresh_batch, description="Fresh web/app events.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "stream feature views are experimental"
        views[cat.FRESH.name] = StreamFeatureView(
            name=cat.FRESH.name,
            source=push,
            entities=[customer],
            ttl=timedelta(days=1),
            schema=_fields(cat.FRESH),
            online=True,
            description=cat.FRESH.description,
            tags={"kind": "stream"},
        )

    request = RequestSource(
        name=REQUEST_SOURCE_NAME,
        schema=[
            Field(name=cat.REQUEST_TS, dtype=UnixTimestamp, description="When the features are asked for.")
        ],
    )
    sources = sorted({src for src, _ in cat.ON_DEMAND_DAYS.values()})
    by_view: dict[str, list[str]] = {}
    for src in sources:
        by_view.setdefault(cat.FEATURES[src].view, []).append(src)
    udf, udf_source = _recency_udf()
    views[cat.RECENCY.name] = OnDemandFeatureView(
        name=cat.RECENCY.name,
        sources=[*(views[v][cols] for v, cols in sorted(by_view.items())), request],
        schema=_fields(cat.RECENCY, describe=False),
        mode="python",
        udf=udf,
        udf_string=udf_source,
        description=cat.RECENCY.description,
    )
    objects.update({fresh_batch.name: fresh_batch, push.name: push, request.name: request})
    objects.update(views)
    for service, view_names in cat.SERVICES.items():
        objects[service] = FeatureService(
            name=service,
            features=[_served(views[v]) for v in view_names],
            description=f"Features of the {service} model.",
        )
    return objects


# For the `feast` CLI (`cd features && CIP_FEAST_DIR=... feast plan`): module-level objects.
if __name__ != "features.repo" and os.environ.get(DATA_DIR_ENV):  # imported by the feast CLI as `repo`
    globals().update(build_objects(Path(os.environ[DATA_DIR_ENV])))
