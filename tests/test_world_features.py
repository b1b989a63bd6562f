"""The whole chain on the generated world: ingest → identity → profiles → Feast feature store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from cip.lake import Lake
from features import store
from features.traits import write_traits
from pipelines.profiles.pipeline import run as profiles_run


@pytest.fixture(scope="module")
def featured(resolved_world):
    settings, _ = resolved_world
    profiles_run(settings)
    build = store.build(settings)
    write_traits(settings, build)
    store.apply(settings)
    store.materialize(settings)
    return settings, build


def test_online_values_match_the_profile_traits(featured):
    settings, _ = featured
    traits = Lake(settings.lake_dir).read("traits").set_index("customer_id")
    buyers = traits[traits["frequency"] > 2].sort_index().head(20)
    online = pd.DataFrame(store.online_features(settings, "clv_v1", list(buyers.index))).set_index(
        "customer_id"
    )
    numeric = [c for c in online.columns if c in traits.columns and pd.api.types.is_numeric_dtype(traits[c])]
    assert len(numeric) > 10
    for column in numeric:
        got, want = online.loc[buyers.index, column].astype(float), buyers[column].astype(float)
        assert np.isclose(got, want, equal_nan=True, atol=1e-6).all(), column


def test_point_in_time_training_frame_for_a_past_cutoff(featured):
    settings, build = featured
    lake = Lake(settings.lake_dir)
    cutoff = build.dates[len(build.dates) // 2]
    orders = lake.read("customer_orders")
    customers = orders["customer_id"].drop_duplicates().sort_values().head(50)
    entity = pd.DataFrame({"customer_id": customers, "event_timestamp": pd.Timestamp(cutoff, tz="UTC")})
    frame = store.training_frame(settings, "churn_v1", entity)
    assert len(frame) == len(entity)
    before = orders[orders["ts"] < pd.Timestamp(cutoff, tz="UTC")].groupby("customer_id").size()
    expected = before.reindex(frame["customer_id"]).fillna(0).to_numpy()
    got = frame["frequency"].fillna(0).to_numpy()
    # the snapshot at the cutoff counts exactly the orders before it: nothing later leaks in
    assert (got == expected).all()
    later = orders[orders["ts"] >= pd.Timestamp(cutoff + timedelta(days=1), tz="UTC")]
    assert len(later) > 0


def test_one_clock_for_batch_and_request_time_features_at_a_pinned_as_of(featured):
    """At the world's as-of date, request-time recency (days_since_*) equals the snapshot's batch
    recency and tenure: in the quick read, Feast's online read and the point-in-time frame alike."""
    from cli.main import as_of_instant
    from features.quick import read_online
    from tests.conftest import WORLD_AS_OF

    settings, build = featured
    at = as_of_instant(WORLD_AS_OF.isoformat())
    assert at == datetime(2026, 7, 1, tzinfo=UTC) and max(build.dates) == at.date()
    traits = Lake(settings.lake_dir).read("traits")
    buyers = traits.loc[traits["frequency"] > 0, "customer_id"].sort_values().head(25).tolist()
    pairs = [("days_since_last_purchase", "recency_days"), ("days_since_first_seen", "tenure_days")]
    online = pd.DataFrame(store.online_features(settings, "churn_v1", buyers, request_ts=at))
    entity = pd.DataFrame({"customer_id": buyers, "event_timestamp": at})
    frames = [online, store.training_frame(settings, "churn_v1", entity)]
    for c in buyers:
        row = read_online(settings, "churn_v1", c, at)
        assert row.snapshot_ts == at
        frames.append(pd.DataFrame({k: [v] for k, v in row.values.items()}))
    for frame in frames:
        for request_time, batch in pairs:
            assert np.allclose(frame[request_time].astype(float), frame[batch].astype(float), atol=1e-4)
