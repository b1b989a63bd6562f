"""The Scorer: every champion at once, the same numbers as each model's runtime, one row per
customer in input order, and a promoted champion swapped in without a new Scorer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cip.errors import CipError
from cip.lake import Lake


@pytest.fixture(scope="module")
def scorer_and_features(trained_world):
    from features.store import open_store
    from training.scoring import Scorer

    settings, _ = trained_world
    scorer = Scorer.load(settings)
    store = open_store(settings)
    ids = Lake(settings.lake_dir).read("traits", columns=["customer_id"])["customer_id"].head(40).tolist()
    frame = None
    for service in scorer.services:
        part = pd.DataFrame(store.online_features(service, ids))
        frame = part if frame is None else frame.merge(part, on="customer_id", suffixes=("", "_dup"))
    frame = frame.loc[:, ~frame.columns.str.endswith("_dup")]
    return settings, scorer, frame


def test_every_champion_scores_each_customer_once_in_input_order(scorer_and_features):
    from cip.categories import CATEGORIES

    _, scorer, frame = scorer_and_features
    assert set(scorer.versions) == {"churn", "clv", "propensity"}
    result = scorer.score(frame, reasons=3)
    assert result.wide["customer_id"].tolist() == frame["customer_id"].tolist()
    expected = ["churn_probability", "clv_365d", *(f"propensity_{c}" for c in CATEGORIES)]
    assert list(result.wide.columns) == ["customer_id", *expected] == ["customer_id", *scorer.score_columns]
    assert result.wide["churn_probability"].between(0, 1).all() and (result.wide["clv_365d"] >= 0).all()
    for name in scorer.versions:
        assert len(result.reasons[name]) == len(frame)
        assert all(
            len(r) == 3 and {"feature", "contribution", "description"} <= r[0].keys()
            for r in result.reasons[name]
        )


def test_scores_equal_each_models_own_runtime_on_the_same_values(scorer_and_features):
    _, scorer, frame = scorer_and_features
    result = scorer.score(frame, reasons=2)
    for name, model in scorer.models.items():
        own = model.score(frame, reasons=2)
        if "category" in own.columns:
            for cat, part in own.groupby("category"):
                got = result.wide.set_index("customer_id").loc[part["customer_id"], f"propensity_{cat}"]
                np.testing.assert_allclose(got.to_numpy(), part["propensity"].to_numpy(), rtol=1e-12)
        else:
            col = model.spec.score_column
            np.testing.assert_allclose(result.wide[col].to_numpy(), own[col].to_numpy(), rtol=1e-12)
            assert result.reasons[name] == own["reasons"].tolist()


def test_a_customers_scores_do_not_depend_on_who_else_is_in_the_batch(scorer_and_features):
    _, scorer, frame = scorer_and_features
    whole = scorer.score(frame, reasons=1)
    alone = scorer.score(frame.iloc[[7]], reasons=1)
    pd.testing.assert_frame_equal(alone.wide, whole.wide.iloc[[7]].reset_index(drop=True))
    assert alone.reasons["propensity"][0] == whole.reasons["propensity"][7]


def test_a_missing_feature_column_is_named(scorer_and_features):
    _, scorer, frame = scorer_and_features
    with pytest.raises(CipError, match="lacks recency_days"):
        scorer.score(frame.drop(columns="recency_days"))


def test_a_promoted_champion_is_swapped_in_by_reload(scorer_and_features):
    from training.registry import connect, promote
    from training.scoring import Scorer

    settings, _, frame = scorer_and_features
    scorer = Scorer.load(settings, models=["clv"])
    assert not scorer.reload_if_changed(settings)
    client = connect(settings)
    current = client.get_model_version_by_alias("cip-clv", "champion")
    copy = client.create_model_version("cip-clv", source=current.source, run_id=current.run_id)
    try:
        promote(settings, "clv", int(copy.version))
        assert scorer.reload_if_changed(settings)
        assert scorer.versions == {"clv": str(copy.version)}
        assert scorer.score(frame, reasons=0).wide["clv_365d"].notna().all()
    finally:
        promote(settings, "clv", int(current.version))
        client.delete_model_version("cip-clv", copy.version)  # the session world stays as trained
    assert scorer.reload_if_changed(settings) and scorer.versions == {"clv": str(current.version)}


def test_no_registered_model_says_what_to_run(tmp_path):
    from cli.settings import Settings
    from training.scoring import Scorer

    with pytest.raises(CipError, match="no champion model is registered"):
        Scorer.load(Settings(data_dir=tmp_path, mlruns_dir=tmp_path / "mlruns"))
