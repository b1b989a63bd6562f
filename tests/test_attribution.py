"""Path attribution against LightGBM's own TreeSHAP: same base value, rows summing to the raw
score, identical on stumps, and the same leading reason where one feature dominates."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from training import attribution


def _data(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    X[rng.random(n) < 0.1, 2] = np.nan  # missing values take the default direction
    X[:, 4] = rng.integers(0, 5, n)  # a categorical column
    logit = 2.0 * X[:, 0] - X[:, 1] + 0.5 * np.nan_to_num(X[:, 2]) * X[:, 3] + (X[:, 4] == 2)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return X, y


def _booster(params: dict, rounds: int = 40) -> tuple[lgb.Booster, np.ndarray]:
    X, y = _data()
    ds = lgb.Dataset(X, y, categorical_feature=[4])
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 0, "min_data_in_leaf": 5}
    return lgb.train({**base, **params}, ds, num_boost_round=rounds), X


def test_path_rows_sum_to_the_raw_score_with_treeshaps_base():
    booster, X = _booster({"num_leaves": 15})
    path = attribution.contributions(booster, X, "path")
    shap = attribution.contributions(booster, X, "tree_shap")
    raw = booster.predict(X, raw_score=True)
    assert path.shape == shap.shape == (len(X), X.shape[1] + 1)
    np.testing.assert_allclose(path.sum(axis=1), raw, atol=1e-9)
    np.testing.assert_allclose(path[:, -1], shap[:, -1], atol=1e-12)
    # the leading reason of the dominant feature agrees for most rows
    top_path = np.argmax(np.abs(path[:, :-1]), axis=1)
    top_shap = np.argmax(np.abs(shap[:, :-1]), axis=1)
    assert np.mean(top_path == top_shap) > 0.8


def test_path_equals_treeshap_on_stumps():
    """One split per tree: a feature's credit is the leaf's value minus the tree's mean — the
    Shapley value of a one-feature tree."""
    booster, X = _booster({"num_leaves": 2, "max_depth": 1}, rounds=60)
    np.testing.assert_allclose(
        attribution.contributions(booster, X, "path"),
        attribution.contributions(booster, X, "tree_shap"),
        atol=1e-10,
    )


def test_a_feature_never_split_on_gets_nothing():
    X, y = _data()
    X[:, 5] = 1.0  # constant: LightGBM cannot split on it
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7}, lgb.Dataset(X, y), 20)
    path = attribution.contributions(booster, X, "path")
    assert booster.feature_importance("split")[5] == 0
    assert np.all(path[:, 5] == 0.0) and np.abs(path[:, 0]).max() > 0


def test_a_table_serves_a_tree_range_and_single_rows():
    booster, X = _booster({"num_leaves": 15})
    table = attribution.PathTable.from_booster(booster, num_iteration=10)
    assert table.trees == 10
    one = attribution.contributions(booster, X[:1], "path", num_iteration=10, table=table)
    np.testing.assert_allclose(one.sum(), booster.predict(X[:1], raw_score=True, num_iteration=10)[0])


def test_an_unknown_method_is_refused():
    booster, X = _booster({"num_leaves": 4}, rounds=3)
    with pytest.raises(ValueError, match="tree_shap, path"):
        attribution.contributions(booster, X, "lime")


def test_estimator_explains_by_either_method_and_caches_the_table():
    from training.estimator import GBMModel

    X, y = _data(1500)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    model = GBMModel(task="binary", params={"num_leaves": 7, "verbose": -1}, max_rounds=30, num_threads=1)
    model.fit(frame, y)
    raw = model.raw_score(frame)
    for method in attribution.METHODS:
        np.testing.assert_allclose(model.contributions(frame, method).sum(axis=1), raw, atol=1e-9)
    assert model.path_table() is model.path_table()


def test_compiled_trees_give_lightgbms_raw_scores_and_are_cached(tmp_path):
    """lleaves-compiled predictions equal LightGBM's to rounding, categorical splits and missing
    values included; the second model object loads the cached shared object."""
    from training.estimator import GBMModel

    X, y = _data(2000)
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    frame["f4"] = np.array(["a", "b", "c", "d", "e"], dtype=object)[X[:, 4].astype(int)]
    model = GBMModel(
        task="binary",
        params={"num_leaves": 15, "verbose": -1},
        max_rounds=40,
        categorical=("f4",),
        num_threads=1,
    ).fit(frame, y)
    reference = model.raw_score(frame)
    model.use_compiled(tmp_path / "compiled", threads=2)
    np.testing.assert_allclose(model.raw_score(frame), reference, rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        model.predict(frame.iloc[:1]), model.use_compiled(None).predict(frame.iloc[:1])
    )
    (cached,) = (tmp_path / "compiled").glob("*.so")
    again = GBMModel.load(model.save(tmp_path / "bundle")).use_compiled(tmp_path / "compiled")
    np.testing.assert_allclose(again.raw_score(frame), reference, rtol=0, atol=1e-12)
    assert list((tmp_path / "compiled").glob("*.so")) == [cached]


def test_a_leaf_credits_only_the_features_split_on_its_path():
    booster, X = _booster({"num_leaves": 8, "max_depth": 3})
    table = attribution.PathTable.from_booster(booster)
    per_leaf = np.diff(table.credits.indptr)
    assert per_leaf.max() <= 3 and per_leaf.min() >= 1
    assert table.credits.shape == (
        sum(t["num_leaves"] for t in booster.dump_model()["tree_info"]),
        X.shape[1],
    )


def test_blocks_and_threads_give_the_same_contributions(monkeypatch):
    booster, X = _booster({"num_leaves": 15})
    whole = attribution.contributions(booster, X, "path")
    monkeypatch.setattr(attribution, "BLOCK_ROWS", 97)
    table = attribution.PathTable.from_booster(booster)
    leaves = booster.predict(X, pred_leaf=True)
    for threads in (1, 2):
        np.testing.assert_array_equal(table.contributions(leaves, threads=threads), whole)
