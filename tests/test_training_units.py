"""Training building blocks on small hand-made data: label windows, the estimator contract,
calibration, reason codes, persistence and the champion rule."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from training import labels as lb
from training.datasets import plan_cutoffs
from training.estimator import GBMModel
from training.metrics import better, expected_calibration_error
from training.reasons import top_reasons
from training.specs import CHURN, CLV

D = date(2026, 1, 1)
T0 = pd.Timestamp(D, tz="UTC")


def _orders(rows: list[tuple[str, pd.Timestamp, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "ts", "amount_base"])


# --- labels -----------------------------------------------------------------------------------------
def test_churn_label_window_boundaries():
    us = pd.Timedelta(microseconds=1)
    orders = _orders(
        [
            ("a", T0 - pd.Timedelta(days=10), 5.0),  # active; buys exactly at the cutoff -> not churned
            ("a", T0, 5.0),
            ("b", T0 - us, 5.0),  # active (last order a microsecond before the cutoff)
            ("b", T0 + pd.Timedelta(days=90), 5.0),  # exactly at the window end: outside -> churned
            ("c", T0 - pd.Timedelta(days=365), 5.0),  # first day of the activity window: active
            ("c", T0 + pd.Timedelta(days=90) - us, 5.0),  # last instant inside the window
            ("d", T0 - pd.Timedelta(days=365) - us, 5.0),  # not active: no row
            ("e", T0 + pd.Timedelta(days=3), 5.0),  # no history before the cutoff: no row
        ]
    )
    got = lb.churn_labels(orders, [D], 90, 365).set_index("customer_id")["label"].to_dict()
    assert got == {"a": 0, "b": 1, "c": 0}


def test_clv_label_sums_the_window_and_keeps_customers_without_spend():
    orders = _orders(
        [
            ("a", T0 - pd.Timedelta(days=1), 100.0),  # before the cutoff: a feature, never a label
            ("a", T0, 10.0),
            ("a", T0 + pd.Timedelta(days=364), 20.0),
            ("a", T0 + pd.Timedelta(days=365), 999.0),  # after the window
            ("b", T0 + pd.Timedelta(days=5), 7.0),  # first seen after the cutoff: no row
        ]
    )
    first_seen = pd.DataFrame(
        {
            "customer_id": ["a", "b", "z"],
            "first_ts": [T0 - pd.Timedelta(days=30), T0 + pd.Timedelta(days=5), T0 - pd.Timedelta(days=3)],
        }
    )
    got = lb.clv_labels(orders, first_seen, [D], 365).set_index("customer_id")["label"].to_dict()
    assert got == {"a": 30.0, "z": 0.0}


def test_propensity_labels_one_row_per_active_customer_and_category():
    orders = _orders([("a", T0 - pd.Timedelta(days=5), 1.0), ("b", T0 - pd.Timedelta(days=50), 1.0)])
    lines = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "ts": [T0 + pd.Timedelta(days=2), T0 + pd.Timedelta(days=30), T0 - pd.Timedelta(days=50)],
            "category": ["books", "toys", "toys"],
        }
    )
    got = lb.propensity_labels(orders, lines, [D], 30, 365, ["books", "toys"])
    assert len(got) == 4
    assert got.set_index(["customer_id", "category"])["label"].to_dict() == {
        ("a", "books"): 1,
        ("a", "toys"): 0,  # day 30 is outside [d, d + 30)
        ("b", "books"): 0,
        ("b", "toys"): 0,  # bought before the cutoff only
    }


def test_a_cutoff_whose_window_is_not_complete_is_refused():
    assert lb.window_complete(date(2026, 4, 1), 90, date(2026, 6, 29))
    assert not lb.window_complete(date(2026, 4, 2), 90, date(2026, 6, 29))
    with pytest.raises(lb.LabelWindowError) as err:
        lb.require_complete([date(2026, 1, 1), date(2026, 6, 1)], 90, date(2026, 6, 29))
    assert "2026-06-01" in err.value.message and "2026-04-01" in err.value.fix


def test_time_split_tests_on_the_latest_complete_cutoff():
    cutoffs = [date(2025, m, 1) for m in (1, 4, 7, 10)] + [
        date(2026, 1, 1),
        date(2026, 4, 1),
        date(2026, 7, 1),
    ]
    plan = plan_cutoffs(cutoffs, CHURN, date(2026, 6, 30), n_train=3)
    assert plan.test == date(2026, 4, 1) and plan.valid == date(2026, 1, 1)
    assert plan.train == [date(2025, 4, 1), date(2025, 7, 1), date(2025, 10, 1)]
    assert max(plan.train) < plan.valid < plan.test
    with pytest.raises(lb.LabelWindowError, match="needs 3 cutoffs"):
        plan_cutoffs(cutoffs[1:], CLV, date(2026, 6, 30), n_train=3)  # a year of outcomes: too few


# --- estimator --------------------------------------------------------------------------------------
def _binary_data(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {"x1": rng.normal(size=n), "x2": rng.normal(size=n), "g": rng.choice(["a", "b", "c"], n)}
    )
    logit = 1.5 * X["x1"] - X["x2"] + (X["g"] == "b") * 1.0 - 0.5
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    return X, y


@pytest.fixture(scope="module")
def fitted() -> tuple[GBMModel, pd.DataFrame, pd.Series]:
    X, y = _binary_data(6000, 0)
    model = GBMModel(
        params={"scale_pos_weight": 4.0},  # raw probabilities biased upwards on purpose
        categorical=("g",),
        monotone={"x1": 1},
        num_threads=1,
    )
    assert model.fit(X[:4000], y[:4000], eval_set=(X[4000:], y[4000:])) is model
    return model, X, y


def test_estimator_follows_the_scikit_learn_contract(fitted):
    model, _, _ = fitted
    fresh = clone(model)
    assert fresh.get_params() == model.get_params()
    assert not hasattr(fresh, "booster_")
    learned = [a for a in vars(model) if a.endswith("_") and not a.startswith("_")]
    assert {"booster_", "feature_names_", "categories_", "best_iteration_", "calibration_"} <= set(learned)
    assert model.categories_ == {"g": ["a", "b", "c"]}


def test_calibration_on_validation_data_makes_probabilities_honest(fitted):
    model, _, _ = fitted
    X, y = _binary_data(20000, 1)
    raw = 1 / (1 + np.exp(-model.raw_score(X)))
    calibrated = model.predict_proba(X)[:, 1]
    assert expected_calibration_error(y, raw) > 0.05
    assert expected_calibration_error(y, calibrated) < expected_calibration_error(y, raw)
    assert expected_calibration_error(y, calibrated) < 0.03
    assert abs(calibrated.mean() - y.mean()) < 0.02


def test_monotone_feature_never_lowers_the_score(fitted):
    model, X, _ = fitted
    base = model.predict(X[:500])
    raised = model.predict(X[:500].assign(x1=X["x1"][:500] + 0.5))
    assert (raised >= base - 1e-12).all() and (raised > base).mean() > 0.3


def test_reason_codes_and_base_value_sum_to_the_raw_score(fitted):
    model, X, _ = fitted
    rows = X[:50]
    contrib = model.contributions(rows)
    assert np.allclose(contrib.sum(axis=1), model.raw_score(rows), atol=1e-9)
    reasons = top_reasons(contrib, model.feature_names_, rows, 2)
    for i, rs in enumerate(reasons):
        assert len(rs) == 2
        sizes = [abs(r["contribution"]) for r in rs]
        assert sizes == sorted(sizes, reverse=True)
        assert sizes[0] == pytest.approx(np.abs(contrib[i, :-1]).max(), abs=1e-6)


def test_reason_descriptions_come_from_the_feature_catalogue():
    from features import catalog as cat

    contrib = np.array([[0.1, -2.0, 0.5, 0.0]])
    values = pd.DataFrame({"recency_days": [40.0], "frequency": [3], "category": ["toys"]})
    (reasons,) = top_reasons(contrib, ["recency_days", "frequency", "category"], values, 3)
    assert [r["feature"] for r in reasons] == ["frequency", "category", "recency_days"]
    assert reasons[0]["description"] == cat.FEATURES["frequency"].description
    assert reasons[0]["value"] == 3 and reasons[1]["value"] == "toys"


def test_reasons_as_json_parse_back_to_the_records():
    import json

    from training.reasons import top_reasons_json

    rng = np.random.default_rng(3)
    contrib = rng.normal(size=(200, 5))
    contrib[:, 2] = 0.0  # ties at zero keep feature order
    contrib[5, :] = [-0.0, 1e-7, 0.0, -2.5, 0.0]
    values = pd.DataFrame(
        {
            "recency_days": rng.normal(size=200),
            "frequency": rng.integers(0, 9, 200),
            "category": rng.choice(["toys", "épicerie", 'say "hi"'], 200),
            "monetary": np.where(rng.random(200) < 0.3, np.nan, rng.exponential(50, 200)),
        }
    )
    feats = ["recency_days", "frequency", "category", "monetary"]
    values.loc[7, "category"] = None
    values["flag"] = rng.random(200) < 0.5
    contrib = np.column_stack([contrib[:, :4], rng.normal(size=200), contrib[:, 4]])
    contrib[5, 4] = 0.0
    feats = [*feats, "flag"]
    for k in (0, 1, 3, 5):
        records = top_reasons(contrib, feats, values, k)
        text = top_reasons_json(contrib, feats, values, k)
        assert [json.loads(t) for t in text] == records
    one = top_reasons_json(contrib[:1], feats, values.iloc[:1].assign(monetary=np.inf), 5)
    assert json.loads(one[0])[[r["feature"] for r in json.loads(one[0])].index("monetary")]["value"] is None
    row5 = top_reasons(contrib, feats, values, 4)[5]
    assert [r["feature"] for r in row5] == ["monetary", "frequency", "recency_days", "category"]


def test_a_saved_model_scores_identically_after_loading(fitted, tmp_path):
    model, X, _ = fitted
    loaded = GBMModel.load(model.save(tmp_path / "m"))
    assert np.array_equal(loaded.predict(X[:300]), model.predict(X[:300]))
    assert loaded.get_params() == model.get_params()
    unseen = X[:5].assign(g="never-seen")  # an unknown category scores as missing, not an error
    assert np.isfinite(loaded.predict(unseen)).all()


def test_tweedie_regression_fits_zero_inflated_spend():
    rng = np.random.default_rng(3)
    n = 4000
    X = pd.DataFrame({"freq": rng.poisson(2, n).astype(float), "noise": rng.normal(size=n)})
    buys = rng.random(n) < 1 - np.exp(-0.4 * X["freq"])
    y = np.where(buys, rng.gamma(2.0, 30.0 * (1 + X["freq"]), n), 0.0)
    model = GBMModel(task="regression", num_threads=1).fit(X[:3000], y[:3000], eval_set=(X[3000:], y[3000:]))
    pred = model.predict(X[3000:])
    assert (pred >= 0).all()
    assert np.corrcoef(pred, y[3000:])[0, 1] > 0.3
    assert abs(pred.sum() / y[3000:].sum() - 1) < 0.25


def test_champion_rule():
    assert better(0.80, 0.79, greater_is_better=True)
    assert not better(0.79, 0.80, greater_is_better=True)
    assert not better(0.795, 0.79, greater_is_better=True, tolerance=0.01)
    assert better(10.0, 12.0, greater_is_better=False)
    assert not better(float("nan"), 0.5, greater_is_better=True)
