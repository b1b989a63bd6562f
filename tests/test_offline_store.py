"""CIP's DuckDB offline store returns what Feast's own DuckDB store returns, in the input's order.

Both answer the same ``get_historical_features`` call on the same registry and files: the
fast ASOF path (``CipDuckDBOfflineStore``) and Feast's generic ibis point-in-time join
(``DuckDBOfflineStore``). Rows at snapshot boundaries, just inside and outside the TTL, before any
data and for unknown customers are included.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from feast.infra.offline_stores.duckdb import DuckDBOfflineStore

from features import catalog as cat


@pytest.fixture(scope="module")
def store(synthetic_store):
    return synthetic_store


def _entity_df(store) -> pd.DataFrame:
    from features.materialize import latest_snapshot

    snaps = pd.read_parquet(latest_snapshot(store.data_dir)[1].parent)
    ids = snaps[cat.JOIN_KEY].drop_duplicates().sort_values().tolist()
    stamps = sorted(snaps[cat.TIMESTAMP_FIELD].unique())
    ttl = timedelta(days=store.config.ttl_days)
    rng = np.random.default_rng(4)
    times = [
        stamps[0] - timedelta(days=1),  # before any snapshot
        stamps[3],  # exactly at a snapshot
        stamps[3] + timedelta(hours=5),
        stamps[-1] + ttl,  # the TTL's last instant
        stamps[-1] + ttl + timedelta(microseconds=1),  # just past it
        datetime(2026, 6, 20, 13, 7, 1, 123456, tzinfo=UTC),
    ]
    rows = [(c, t) for c in ids[:40] for t in times] + [("nobody", times[2])]
    rows += [(ids[i], times[rng.integers(len(times))]) for i in rng.integers(len(ids), size=60)]
    df = pd.DataFrame(rows, columns=[cat.JOIN_KEY, cat.TIMESTAMP_FIELD])
    df[cat.TIMESTAMP_FIELD] = pd.to_datetime(df[cat.TIMESTAMP_FIELD], utc=True)
    df["label"] = np.arange(len(df)) % 2
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)  # shuffled input order


def _both(store, refs, entity_df, full=False):
    from features.offline_store import CipDuckDBOfflineStore

    feast = store.feast
    views = list({r.split(":")[0]: None for r in refs})
    stream = {cat.FRESH.name}
    fvs = [feast.get_stream_feature_view(v) if v in stream else feast.get_feature_view(v) for v in views]
    args = (feast.config, fvs, refs, entity_df.copy(), feast.registry, feast.project, full)
    return (
        CipDuckDBOfflineStore.get_historical_features(*args).to_df(),
        DuckDBOfflineStore.get_historical_features(*args).to_df(),
    )


def _refs(*views) -> list[str]:
    return [f"{v.name}:{f.name}" for v in views for f in v.features if not f.internal]


@pytest.mark.parametrize("full", [False, True])
def test_same_frame_as_feasts_own_store(store, full):
    df = _entity_df(store)
    fast, stock = _both(store, _refs(*cat.BATCH_VIEWS), df, full)
    assert list(fast.columns) == list(stock.columns)
    # the fast path keeps the input's order; Feast's is arbitrary
    pd.testing.assert_frame_equal(fast[list(df.columns)], df, check_dtype=False)
    key = [cat.JOIN_KEY, cat.TIMESTAMP_FIELD, "label"]
    order = lambda f: f.sort_values(key, kind="stable").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(order(fast), order(stock))
    first = f"{cat.BATCH_VIEWS[0].name}__recency_days" if full else "recency_days"
    assert fast[first].notna().any() and fast[first].isna().any()  # both live and expired/missing rows


def test_subsets_and_the_stream_views_batch_source(store):
    df = _entity_df(store)
    refs = _refs(cat.BATCH_VIEWS[1])[:3] + _refs(cat.BATCH_VIEWS[3])[-2:] + _refs(cat.FRESH)
    fast, stock = _both(store, refs, df)
    key = [cat.JOIN_KEY, cat.TIMESTAMP_FIELD, "label"]
    pd.testing.assert_frame_equal(
        fast.sort_values(key).reset_index(drop=True), stock.sort_values(key).reset_index(drop=True)
    )


def test_the_yaml_selects_it_and_training_frames_use_it(store):
    from features.offline_store import AsofRetrievalJob

    df = _entity_df(store)
    job = store.feast.get_historical_features(entity_df=df, features=_refs(cat.BATCH_VIEWS[0]))
    assert isinstance(job, AsofRetrievalJob)
    frame = store.training_frame("churn_v1", df)
    assert frame[cat.JOIN_KEY].tolist() == df[cat.JOIN_KEY].tolist()
    assert frame["label"].tolist() == df["label"].tolist()


def test_what_the_fast_path_leaves_to_feast(store):
    """Naive entity timestamps get Feast's own job (through the SDK they arrive as UTC already)."""
    from features.offline_store import CipDuckDBOfflineStore

    feast = store.feast
    fv = feast.get_feature_view(cat.BATCH_VIEWS[0].name)
    naive = _entity_df(store).head(20)
    naive[cat.TIMESTAMP_FIELD] = naive[cat.TIMESTAMP_FIELD].dt.tz_localize(None)
    refs = _refs(cat.BATCH_VIEWS[0])
    job = CipDuckDBOfflineStore.get_historical_features(
        feast.config, [fv], refs, naive, feast.registry, feast.project
    )
    assert type(job).__name__ == "IbisRetrievalJob"
