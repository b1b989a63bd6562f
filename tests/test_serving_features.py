"""The service's fast paths hold to the reference ones: the one-statement online read to Feast's
own read of each FeatureService (fresh pushed features included), the matrix scorer to
``Scorer.score``."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import catalog as cat

AS_OF = datetime(2026, 7, 1, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def world(trained_world, tmp_path_factory):
    """The trained world with a private copy of the feature store (events are pushed into it)."""
    from cli.settings import Settings

    settings, _ = trained_world
    root = tmp_path_factory.mktemp("serving_features")
    shutil.copytree(settings.features_dir, root / "features")
    (root / "lake").symlink_to(settings.lake_dir)
    return Settings(data_dir=root, mlruns_dir=settings.mlruns_dir)


@pytest.fixture(scope="module")
def scorer(world):
    from training.scoring import Scorer

    return Scorer.load(world)


@pytest.fixture(scope="module")
def customers(world):
    ids = pq.read_table(world.lake_dir / "derived" / "profiles.parquet", columns=["customer_id"])
    return ids["customer_id"].to_pylist()[:150] + ["cus_not_in_the_store"]


def _feast_frame(store, scorer, ids, at) -> pd.DataFrame:
    frame = pd.DataFrame({cat.JOIN_KEY: ids})
    for service in scorer.services:
        got = store.online_features(service, ids, at)
        for c in scorer.feature_columns:
            if c in got and c not in frame.columns:
                frame[c] = pd.to_numeric(pd.Series(got[c], dtype=object), errors="coerce").astype(float)
    return frame


def test_online_read_equals_feast_with_fresh_events(world, scorer, customers):
    from features.store import open_store
    from serving.fast_features import OnlineFeatureReader

    store = open_store(world)
    pushed = customers[:5]
    now = AS_OF - timedelta(minutes=10)
    events = pd.DataFrame(
        {
            cat.JOIN_KEY: [c for c in pushed for _ in range(3)],
            "ts": [now - timedelta(minutes=m) for _ in pushed for m in (1, 5, 90)],
            "event": ["Product Added", "Product Viewed", "Product Added"] * len(pushed),
        }
    )
    store.push_events(events)
    reader = OnlineFeatureReader(world, scorer.feature_columns, scorer.services)
    assert reader.fast
    rows = reader.read(customers, AS_OF)
    expected = _feast_frame(store, scorer, customers, AS_OF)
    pd.testing.assert_frame_equal(rows.frame, expected[rows.frame.columns], check_exact=True)
    has_values = expected[rows.columns].notna().any(axis=1).tolist()
    assert rows.found == has_values and rows.found[-1] is False and sum(has_values) > 100
    assert all(ts is not None for ts in rows.last_event_ts[:5]) and rows.last_event_ts[5] is None
    fresh = [c for c in ("cart_adds_1h", "product_views_1h") if c in rows.columns]
    assert fresh and rows.frame.loc[0, "cart_adds_1h"] == 1  # the add 90 minutes earlier left the hour


def test_matrix_scorer_equals_scorer_score(world, scorer, customers):
    from serving.fast_features import OnlineFeatureReader
    from serving.fast_score import FastScorer

    reader = OnlineFeatureReader(world, scorer.feature_columns, scorer.services)
    rows = reader.read(customers, AS_OF)
    fast = FastScorer(reader.columns)
    split = FastScorer(reader.columns, threads=2, split_trees=10)  # TreeSHAP over tree ranges, added up
    for k, scoring in [(3, fast), (0, fast), (3, split)]:
        got = scoring.score(scorer, rows.matrix, customers, reasons=k, frame=rows.frame)
        ref = scorer.score(rows.frame, reasons=k)
        # churn, clv and propensity take the matrix path; so does the NBA policy when its bundle
        # reads one numeric matrix (tests/test_nba.py), else Scorer.score scores it (this world's
        # S-learner reads an action input)
        nba = ["next_best_action", "nba_value"]
        both = {**{c: v.tolist() for c, v in got.columns.items()}, **got.extra.to_dict("list")}
        assert both["next_best_action"] == ref.wide["next_best_action"].tolist()
        assert (
            both["nba_value"] == ref.wide["nba_value"].tolist() and both["alternatives"] == ref.alternatives
        )
        assert set(both) - {"alternatives"} == set(ref.wide.columns) - {cat.JOIN_KEY}
        for c, values in got.columns.items():
            if c not in (*nba, "alternatives"):
                np.testing.assert_array_equal(values, ref.wide[c].to_numpy(dtype=float), err_msg=c)
        assert got.reasons == ref.reasons
        assert got.versions == ref.versions
    one = fast.score(scorer, rows.matrix[3:4], customers[3:4], reasons=3, models=["propensity"])
    ref = scorer.score(rows.frame.iloc[3:4].reset_index(drop=True), reasons=3, models=["propensity"])
    assert one.reasons == ref.reasons and list(one.versions) == ["propensity"]


def test_path_reasons_agree_between_matrix_scorer_and_scorer(world, scorer, customers):
    """``reasons_method: path`` reaches every model (NBA included) through the settings; both
    scorers give the same scores and reasons, scores equal the TreeSHAP scorer's, and TreeSHAP's
    leading reason is mostly among path's top three."""
    from cli.settings import Settings
    from serving.fast_features import OnlineFeatureReader
    from serving.fast_score import FastScorer
    from training.config import TrainingConfig
    from training.scoring import Scorer

    fast_settings = Settings(
        data_dir=world.data_dir, mlruns_dir=world.mlruns_dir, training=TrainingConfig(reasons_method="path")
    )
    path = Scorer.load(fast_settings)
    assert {m.reasons_method for m in path.models.values()} == {"path"}
    reader = OnlineFeatureReader(world, path.feature_columns, path.services)
    rows = reader.read(customers, AS_OF)
    got = FastScorer(reader.columns).score(path, rows.matrix, customers, reasons=3, frame=rows.frame)
    ref = path.score(rows.frame, reasons=3)
    exact = scorer.score(rows.frame, reasons=3)
    assert got.reasons == ref.reasons and set(ref.reasons) == set(exact.reasons)
    for c, values in got.columns.items():
        if c not in ("next_best_action", "alternatives"):
            np.testing.assert_array_equal(values, exact.wide[c].to_numpy(dtype=float), err_msg=c)
    assert ref.wide["next_best_action"].equals(exact.wide["next_best_action"])
    for name in ref.reasons:
        pairs = [
            ([r["feature"] for r in a], b[0]["feature"])
            for a, b in zip(ref.reasons[name], exact.reasons[name], strict=True)
            if a
        ]
        floor = 0.7 if name == "nba" else 0.9  # an uplift is a difference of models: less alike
        assert len(pairs) > 100 and np.mean([b in a for a, b in pairs]) > floor, name


def test_next_best_action_from_either_column_shape():
    """The NBA part of a response, whether the scorer gives an ``alternatives`` list (NBA runtime)
    or one ``nba_value_<action>`` column per action; absent when no NBA model is loaded."""
    from serving.engine import next_best_action

    assert next_best_action({"churn_probability": 0.2}) is None
    assert next_best_action({"next_best_action": float("nan")}) is None
    listed = next_best_action(
        {
            "next_best_action": "discount_10",
            "nba_value": 4.5,
            "alternatives": [{"action": "no_offer", "value": 0.0}, {"action": "free_shipping", "value": 2.0}],
        }
    )
    assert listed.action == "discount_10" and listed.expected_value == 4.5
    assert [(a.action, a.value) for a in listed.alternatives] == [("free_shipping", 2.0), ("no_offer", 0.0)]
    wide = next_best_action(
        {
            "next_best_action": "free_shipping",
            "nba_value": 3.0,
            "nba_value_free_shipping": 3.0,
            "nba_value_double_points": float("nan"),
            "nba_value_discount_10": 1.0,
        }
    )
    assert [(a.action, a.value) for a in wide.alternatives] == [("discount_10", 1.0), ("double_points", None)]


def test_matrix_scorer_carries_the_nba_champion(world, scorer, customers, trained_world, tmp_path_factory):
    """With ``cip-nba`` registered, the service's scorer returns what ``Scorer.score`` returns for it
    (action, value, ranked alternatives, reasons) next to the matrix-scored models, and the response
    carries them as next_best_action."""
    from cli.settings import Settings
    from serving.engine import next_best_action
    from serving.fast_features import OnlineFeatureReader
    from serving.fast_score import FastScorer
    from training.config import NbaConfig, TrainingConfig
    from training.scoring import Scorer
    from training.train import train

    shared, _ = trained_world
    own = Settings(
        data_dir=shared.data_dir,
        mlruns_dir=tmp_path_factory.mktemp("mlruns_nba_serving"),
        training=TrainingConfig(
            trials=1, num_threads=1, min_rows=100, nba=NbaConfig(valid_campaigns=1, test_campaigns=1)
        ),
    )
    train(own, "nba")
    everything = Scorer({**scorer.models, "nba": Scorer.load(own).models["nba"]})
    reader = OnlineFeatureReader(world, everything.feature_columns, everything.services)
    ids = customers[:40]
    rows = reader.read(ids, AS_OF)
    got = FastScorer(reader.columns).score(everything, rows.matrix, ids, reasons=2, frame=lambda: rows.frame)
    ref = everything.score(rows.frame, reasons=2)
    assert (
        got.extra is not None
        and got.extra["next_best_action"].tolist() == ref.wide["next_best_action"].tolist()
    )
    np.testing.assert_array_equal(
        got.extra["nba_value"].to_numpy(float), ref.wide["nba_value"].to_numpy(float)
    )
    assert got.extra["alternatives"].tolist() == ref.alternatives
    assert got.reasons == ref.reasons and set(got.versions) == {"churn", "clv", "propensity", "nba"}
    for c, values in got.columns.items():
        np.testing.assert_array_equal(values, ref.wide[c].to_numpy(dtype=float), err_msg=c)
    for i in range(len(ids)):
        nba = next_best_action(got.extra.iloc[i].to_dict())
        assert nba is not None and nba.action == ref.wide["next_best_action"].iloc[i]
        assert [a.action for a in nba.alternatives] == [
            a["action"] for a in ref.alternatives[i] if a["action"] != nba.action
        ]
