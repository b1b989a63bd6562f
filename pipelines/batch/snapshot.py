"""The feature values batch scoring reads: the latest snapshot, for every customer, as served online.

The online store holds the latest snapshot (``cip features materialize``); this reads the same
file, so a customer's batch features equal what real-time serving reads for them. Request-time
features (``days_since_*``) count to the snapshot instant (the end of the data's last day), by the
on-demand view's own formula; at that instant they equal what serving computes for the same
request time. Pushed (stream) features are live signals: batch has none, so they are missing (NaN),
as when a customer has no recent events online.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cip.errors import MissingInputError
from cip.lake import Lake
from features import catalog as cat
from features.config import FeatureSettings
from features.materialize import latest_snapshot
from features.paths import feature_data_dir

KEY = cat.JOIN_KEY


@dataclass
class Snapshot:
    """Feature values of every customer at one snapshot."""

    snapshot_date: date  # the file's date: values see activity before its 00:00 UTC
    features: pd.DataFrame  # customer_id + the columns asked for, one row per customer

    @property
    def as_of(self) -> date:
        """The last day of data the values include."""
        return self.snapshot_date - timedelta(days=1)

    @property
    def request_ts(self) -> datetime:
        """The instant request-time features count to (the snapshot's)."""
        d = self.snapshot_date
        return datetime(d.year, d.month, d.day, tzinfo=UTC)


def customers(settings: FeatureSettings) -> pd.Series:
    """Every customer with traits (every profile), in a stable order."""
    lake = Lake(settings.lake_dir)
    if not lake.has("traits"):
        raise MissingInputError(
            "the lake table 'traits' does not exist yet", fix="run `cip features build` first"
        )
    ids = lake.read("traits", columns=[KEY])[KEY]
    return ids.drop_duplicates().sort_values(kind="stable").reset_index(drop=True)


def latest_features(settings: FeatureSettings, columns: list[str], ids: pd.Series | None = None) -> Snapshot:
    """``columns`` (catalogue feature names) of the customers ``ids`` (default every customer with
    traits) from the latest snapshot; customers the snapshot lacks get missing values."""
    snap_date, path = latest_snapshot(feature_data_dir(settings))
    unknown = [c for c in columns if c not in cat.FEATURES]
    if unknown:
        raise MissingInputError(
            f"not catalogue features: {', '.join(unknown)}", fix="see features/catalog.py"
        )
    on_demand = [c for c in columns if c in cat.ON_DEMAND_DAYS]
    sources = [cat.ON_DEMAND_DAYS[c][0] for c in on_demand]
    stored = [c for c in dict.fromkeys([*columns, *sources]) if cat.FEATURES[c].sql is not None]
    table = pq.read_table(path, columns=[KEY, *stored]).to_pandas()
    ids = customers(settings) if ids is None else ids.reset_index(drop=True)
    frame = pd.DataFrame({KEY: ids}).merge(table, on=KEY, how="left", validate="one_to_one")
    snapshot = Snapshot(snap_date, frame)
    if on_demand:
        frame[cat.REQUEST_TS] = pd.Timestamp(snapshot.request_ts)
        recency = request_time_features(frame)
        for c in on_demand:
            frame[c] = recency[c].to_numpy()
    for c in columns:  # pushed (stream) features: none in batch
        if c not in frame.columns:
            frame[c] = np.nan
    snapshot.features = frame[[KEY, *columns]]
    return snapshot


def request_time_features(frame: pd.DataFrame) -> pd.DataFrame:
    """The on-demand recency view over a frame holding its inputs and ``request_ts``."""
    from features.repo import on_demand_frame

    return on_demand_frame(frame)
