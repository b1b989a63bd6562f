"""Next-best-action: uplift learners, policy and off-policy evaluation on synthetic randomized data with a
known answer; then the model end to end on the generated world (campaign log → registry → runtime)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from training import ope, policy
from training.config import ActionCost, NbaConfig
from training.estimator import GBMModel
from training.uplift import Arms, fit_learners

ACTIONS = ("no_offer", "a", "b")


# --- synthetic randomized campaigns ------------------------------------------------------------------
def simulate(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Randomized assignment (0.4 / 0.3 / 0.3) of three actions; Poisson outcome whose mean has a
    planted uplift: action ``a`` helps when ``x1 > 0`` and hurts otherwise, ``b`` adds a little for all.
    Returns features, action index, outcome, logged probability and the true mean per action."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n), "noise": rng.normal(size=n)})
    base = np.exp(0.2 + 0.3 * X["x2"].to_numpy())
    mean = np.column_stack(
        [base, np.maximum(base + np.where(X["x1"] > 0, 0.8, -0.4), 0.05), base + 0.15],
    )
    probs = np.array([0.4, 0.3, 0.3])
    action = rng.choice(3, size=n, p=probs)
    y = rng.poisson(mean[np.arange(n), action]).astype(float)
    return X, action, y, probs[action], mean


def arms_of(X, action, y, prob) -> Arms:
    return Arms(X, np.array(ACTIONS, dtype=object)[action], y, prob, np.arange(len(y)))


def base_model() -> GBMModel:
    return GBMModel(task="regression", params={"learning_rate": 0.1}, calibrate=False, num_threads=1, seed=0)


@pytest.fixture(scope="module")
def learners():
    X, a, y, p, _ = simulate(12_000, seed=1)
    Xv, av, yv, pv, _ = simulate(4_000, seed=2)
    fitted = fit_learners(
        ("s", "t", "x", "dr", "ens"),
        base_model(),
        arms_of(X, a, y, p),
        arms_of(Xv, av, yv, pv),
        "no_offer",
        ACTIONS[1:],
    )
    return fitted


def test_every_learner_recovers_the_planted_uplift_sign(learners):
    Xt, _, _, _, mean = simulate(3_000, seed=3)
    truth = mean[:, 1:] - mean[:, [0]]
    for name, model in learners.items():
        _, uplift = model.predict(Xt)
        assert uplift.shape == (len(Xt), 2)
        helps = Xt["x1"].to_numpy() > 0.3
        hurts = Xt["x1"].to_numpy() < -0.3
        assert np.mean(uplift[helps, 0] > 0) > 0.9, name
        assert np.mean(uplift[hurts, 0] < 0) > 0.8, name
        assert np.corrcoef(uplift[:, 0], truth[:, 0])[0, 1] > 0.8, name
        assert abs(np.mean(uplift[:, 1]) - 0.15) < 0.1, name


def test_learners_save_and_load_as_plain_files(learners, tmp_path):
    from training.uplift import UpliftModel

    Xt, *_ = simulate(200, seed=4)
    for name, model in learners.items():
        path = model.save(tmp_path / name)
        assert not list(path.rglob("*.pkl"))
        again = UpliftModel.load(path)
        assert again.learner == name
        np.testing.assert_allclose(again.predict(Xt)[1], model.predict(Xt)[1], rtol=1e-9, atol=1e-9)
        contrib = again.contributions(Xt, "a")
        if name in ("x", "dr", "ens"):  # effect models: contributions add up to the uplift
            np.testing.assert_allclose(contrib.sum(axis=1), again.uplift(Xt)[:, 0], atol=1e-6)


def test_policy_sends_nothing_when_the_cost_exceeds_the_uplift():
    uplift = np.array([[2.0, 0.5], [0.1, 0.05], [-1.0, 0.3]])
    baseline = np.array([10.0, 10.0, 10.0])
    costs = {"a": ActionCost(per_send=0.2), "b": ActionCost(per_send=0.1, share_of_revenue=0.1)}
    values = policy.net_values(uplift, baseline, ACTIONS[1:], "no_offer", costs)
    # a: uplift - 0.2; b: 0.9 * (10 + uplift) - 0.1 - 10
    np.testing.assert_allclose(values[:, 1], [1.8, -0.1, -1.2])
    np.testing.assert_allclose(values[:, 2], [-0.65, -1.055, -0.83])
    chosen = policy.choose(values)
    assert chosen.tolist() == [1, 0, 0]
    assert policy.choose(values, min_value=2.0).tolist() == [0, 0, 0]
    alts = policy.alternatives(values, ACTIONS, chosen)
    assert [x["action"] for x in alts[0]] == ["no_offer", "b"]
    assert alts[1][0] == {"action": "a", "value": -0.1}


def test_realized_net_value_charges_each_rows_own_action():
    costs = {"a": ActionCost(per_send=1.0, share_of_revenue=0.5)}
    got = policy.realized_net(np.array([10.0, 10.0, 0.0]), np.array(["no_offer", "a", "a"]), costs)
    np.testing.assert_allclose(got, [10.0, 4.0, -1.0])


def test_ipw_and_dr_estimates_of_a_policy_cover_its_true_value():
    """On many simulated campaigns the 95% intervals cover the true incremental value ~95% of the time,
    and DR is tighter than IPW."""
    covered = {"ipw": 0, "dr": 0}
    width = {"ipw": [], "dr": []}
    runs = 60
    for seed in range(runs):
        X, a, y, p, mean = simulate(3_000, seed=100 + seed)
        pol = np.where(X["x1"] > 0, 1, 2)  # the right offer per row
        true = float(np.mean(mean[np.arange(len(y)), pol] - mean[:, 0]))
        q = mean + np.random.default_rng(seed).normal(0, 0.3, size=mean.shape)  # a noisy reward model
        est = ope.incremental_value(pol, a, p, y, q, level=0.95)
        for k in covered:
            covered[k] += est[k].covers(true)
            width[k].append(est[k].high - est[k].low)
    assert covered["ipw"] >= 0.85 * runs and covered["dr"] >= 0.85 * runs
    assert np.mean(width["dr"]) < np.mean(width["ipw"])


def test_dr_stays_unbiased_with_a_wrong_reward_model():
    X, a, y, p, mean = simulate(40_000, seed=7)
    pol = np.full(len(y), 1)
    true = float(np.mean(mean[:, 1] - mean[:, 0]))
    wrong = np.zeros_like(mean) + 5.0
    est = ope.incremental_value(pol, a, p, y, wrong)["dr"]
    assert est.covers(true)


def test_a_stochastic_policy_is_evaluated_like_its_mixture():
    X, a, y, p, mean = simulate(20_000, seed=8)
    mix = np.tile([0.4, 0.3, 0.3], (len(y), 1))
    est = ope.incremental_value(mix, a, p, y, mean)
    true = float(np.mean(mix @ np.array([0, 1, 1]) * 0 + (mix * (mean - mean[:, [0]])).sum(axis=1)))
    assert est["dr"].covers(true) and est["ipw"].covers(true)


def test_clustered_standard_errors_widen_with_duplicated_clusters():
    v = np.random.default_rng(0).normal(size=1000)
    one = ope.mean_ci(v)
    dup = ope.mean_ci(np.repeat(v, 2), clusters=np.repeat(np.arange(1000), 2))
    naive = ope.mean_ci(np.repeat(v, 2))
    assert dup.se == pytest.approx(one.se, rel=0.01)
    assert naive.se < 0.8 * dup.se


def test_qini_ranks_a_perfect_score_above_random():
    X, a, y, p, mean = simulate(20_000, seed=9)
    sel = a <= 1
    treated = a[sel] == 1
    truth = (mean[:, 1] - mean[:, 0])[sel]
    good = ope.qini_coefficient(truth, treated, y[sel])
    noise = ope.qini_coefficient(np.random.default_rng(1).normal(size=sel.sum()), treated, y[sel])
    assert good > 0.1 and abs(noise) < 0.05
    assert ope.uplift_at_k(truth, treated, y[sel], 0.3) > 0.5
    curve = ope.qini_curve(truth, treated, y[sel])
    assert curve["fraction"].iloc[-1] == 1.0 and curve["qini"].iloc[-1] == pytest.approx(
        curve["random"].iloc[-1]
    )


def test_nba_settings_refuse_unknown_actions_and_learners():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="unknown action"):
        NbaConfig(costs={"coupon_99": ActionCost(per_send=1.0)})
    with pytest.raises(ValidationError, match="unknown learner"):
        NbaConfig(learners=("t", "magic"))
    with pytest.raises(ValidationError):
        ActionCost(share_of_revenue=1.5)


# --- the training set (pure parts) ---------------------------------------------------------------------
def test_outcomes_count_orders_inside_the_response_window_only():
    from training.nba_data import matured, window_outcomes

    t0 = pd.Timestamp("2026-05-01 15:00", tz="UTC")
    exposures = pd.DataFrame({"customer_id": ["c1", "c2", "c3"], "exposed_at": [t0, t0, t0]})
    orders = pd.DataFrame(
        {
            "customer_id": ["c1", "c1", "c1", "c2"],
            "ts": [t0 - pd.Timedelta(hours=1), t0 + pd.Timedelta(days=2), t0 + pd.Timedelta(days=14), t0],
            "amount_base": [99.0, 20.0, 50.0, 7.5],
        }
    )
    out = window_outcomes(exposures, orders, 14)
    assert out["orders"].tolist() == [1, 1, 0]
    assert out["revenue"].tolist() == [20.0, 7.5, 0.0]
    assert out["purchased"].tolist() == [1, 1, 0]
    assert matured(exposures["exposed_at"], date(2026, 5, 14), 14).tolist() == [False] * 3
    assert matured(exposures["exposed_at"], date(2026, 5, 15), 14).tolist() == [True] * 3


def test_only_exposures_with_a_recent_snapshot_and_enough_campaigns_are_used():
    from cip.errors import CipError
    from training.nba_data import covered, plan_campaigns

    ts = pd.Series(pd.to_datetime(["2026-01-03", "2026-02-20", "2025-12-01"], utc=True))
    assert covered(ts, [date(2026, 1, 1), date(2026, 2, 1)], 14).tolist() == [True, False, False]
    ex = pd.DataFrame(
        {
            "campaign_id": ["K3", "K1", "K2", "K4", "K5"],
            "exposed_at": pd.to_datetime(
                ["2026-03-01", "2026-01-01", "2026-02-01", "2026-04-01", "2026-05-01"], utc=True
            ),
        }
    )
    plan = plan_campaigns(ex, 1, 2)
    assert (plan.train, plan.valid, plan.test) == (["K1", "K2"], ["K3"], ["K4", "K5"])
    with pytest.raises(CipError, match="at least 6 campaigns"):
        plan_campaigns(ex, 2, 3)


# --- end to end on the generated world -------------------------------------------------------------------
@pytest.fixture(scope="module")
def nba_world(trained_world, tmp_path_factory):
    """The trained world's data with its own MLflow store, and ``cip-nba`` trained into it (1 trial)."""
    from cli.settings import Settings
    from training.config import TrainingConfig
    from training.train import train

    world, _ = trained_world
    settings = Settings(
        data_dir=world.data_dir,
        mlruns_dir=tmp_path_factory.mktemp("mlruns_nba"),
        training=TrainingConfig(
            trials=1, num_threads=1, min_rows=100, nba=NbaConfig(valid_campaigns=1, test_campaigns=1)
        ),
    )
    return settings, train(settings, "nba")


def cip(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The `cip` command in a subprocess, as a user runs it."""
    full = {**os.environ, "COLUMNS": "200", **env}
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=600
    )


def nba_env(settings) -> dict[str, str]:
    return {
        "CIP_DATA_DIR": str(settings.data_dir),
        "CIP_MLRUNS_DIR": str(settings.mlruns_dir),
        "CIP_TRAINING__NUM_THREADS": "1",
        "CIP_TRAINING__MIN_ROWS": "100",
        "CIP_TRAINING__NBA__VALID_CAMPAIGNS": "1",
        "CIP_TRAINING__NBA__TEST_CAMPAIGNS": "1",
        "MPLBACKEND": "Agg",
    }


def test_nba_is_trained_from_the_campaign_log_and_registered_as_champion(nba_world):
    from training.registry import connect, list_models

    settings, r = nba_world
    assert r.model == "nba" and r.version == "1" and r.promoted
    assert r.params["learner"] in ("s", "t", "x", "dr", "ens")
    assert max(r.plan.train) < min(r.plan.valid) <= max(r.plan.valid) < min(r.plan.test)
    assert r.rows["train"] > r.rows["test"] > 0
    assert r.metrics["dr_low"] <= r.metrics["dr_value"] <= r.metrics["dr_high"]
    assert {"random_assignment", "response_propensity", "all_no_offer"} <= set(r.baselines)
    assert r.baselines["all_no_offer"]["dr_value"] == 0.0
    client = connect(settings)
    run = client.get_run(r.run_id)
    assert run.data.params["feature_service"] == "nba_v1"
    assert run.data.params["learner"] == r.params["learner"]
    assert {"test_dr_value", "test_ipw_value", "policy_nba_dr_low", "gate_new"} <= set(run.data.metrics)
    assert any(k.startswith("valid_qini_t_") for k in run.data.metrics)  # every learner was judged
    arts = {a.path for a in client.list_artifacts(r.run_id, "plots")}
    assert {"plots/qini.png", "plots/policy_values.png"} <= arts
    table = list_models(settings)
    row = table[table["model"] == "cip-nba"].iloc[0]
    assert row["aliases"] == "champion" and np.isfinite(row["test_dr_value"])


def test_nba_runtime_scores_customers_through_the_registry(nba_world):
    import mlflow.pyfunc

    from training.nba_data import nba_set
    from training.nba_runtime import NBAModel
    from training.registry import tracking_uri

    settings, _ = nba_world
    model = NBAModel.load(settings)
    assert model.version == "1" and model.service == "nba_v1"
    rows = nba_set(settings).rows("test").head(300)
    scored = model.score(rows)
    assert list(scored.columns) == ["customer_id", "next_best_action", "nba_value", "alternatives", "reasons"]
    assert scored["customer_id"].tolist() == rows["customer_id"].tolist()
    assert set(scored["next_best_action"]) <= set(model.actions)
    for _, r in scored.iterrows():
        alts = r["alternatives"]
        assert len(alts) == len(model.actions) - 1
        assert r["next_best_action"] not in {a["action"] for a in alts}
        assert [a["value"] for a in alts] == sorted((a["value"] for a in alts), reverse=True)
        assert r["nba_value"] >= alts[0]["value"] or r["next_best_action"] == "no_offer"
        if r["next_best_action"] == "no_offer":
            assert r["nba_value"] == 0.0 and all(a["value"] <= 0 for a in alts)
        assert len(r["reasons"]) == settings.training.reasons
        assert {"feature", "value", "contribution", "description"} <= set(r["reasons"][0])
    # a frame of features only (what serving reads online) scores the same
    only = model.score(rows[model.features].reset_index(drop=True), reasons=0)
    assert only["next_best_action"].tolist() == scored["next_best_action"].tolist()
    # the MLflow pyfunc flavour returns the same choice
    mlflow.set_tracking_uri(tracking_uri(settings))
    py = mlflow.pyfunc.load_model("models:/cip-nba@champion")
    out = py.predict(rows[model.features].astype(float))
    assert out["next_best_action"].tolist() == scored["next_best_action"].tolist()


def test_costs_come_from_the_settings_the_model_is_loaded_with(nba_world):
    from training.nba_data import nba_set
    from training.nba_runtime import NBAModel

    settings, _ = nba_world
    rows = nba_set(settings).rows("test").head(100)
    pricey = settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={"nba": NbaConfig(costs={a: ActionCost(per_send=1e6) for a in ACTIONS_OF_WORLD})}
            )
        }
    )
    scored = NBAModel.load(pricey).score(rows, reasons=1)
    assert (scored["next_best_action"] == "no_offer").all() and (scored["nba_value"] == 0.0).all()
    assert all(len(r) == 1 for r in scored["reasons"])  # why the best offer is not worth it


def test_the_scorer_loads_the_nba_champion_and_returns_what_nbamodel_returns(nba_world, trained_world):
    from cip.lake import Lake
    from features.store import open_store
    from training.nba_data import nba_set
    from training.nba_runtime import NBAModel
    from training.scoring import Scorer

    settings, _ = nba_world
    own_model = NBAModel.load(settings)
    scorer = Scorer.load(
        settings
    )  # this store holds only cip-nba: the models without a champion are left out
    assert scorer.versions == {"nba": own_model.version} and scorer.services == ["nba_v1"]
    assert scorer.score_columns == ["next_best_action", "nba_value"]
    rows = nba_set(settings).rows("test").head(200)
    own = own_model.score(rows, reasons=2)
    result = scorer.score(rows, reasons=2)
    assert list(result.wide.columns) == ["customer_id", "next_best_action", "nba_value"]
    pd.testing.assert_frame_equal(result.wide, own[["customer_id", "next_best_action", "nba_value"]])
    assert result.alternatives == own["alternatives"].tolist()
    assert result.reasons["nba"] == own["reasons"].tolist()
    assert "nba" not in scorer.score(rows, reasons=0).reasons

    # next to every other champion (the shared world's), on the online features of all their services
    shared, _ = trained_world
    everything = Scorer({**Scorer.load(shared).models, "nba": scorer.models["nba"]})
    assert everything.services[-1] == "nba_v1" and set(own_model.features) <= set(everything.feature_columns)
    ids = Lake(shared.lake_dir).read("traits", columns=["customer_id"])["customer_id"].head(30).tolist()
    store = open_store(shared)
    frame = pd.DataFrame({"customer_id": ids})
    for service in everything.services:
        part = pd.DataFrame(store.online_features(service, ids))
        frame = frame.merge(part[[c for c in part.columns if c not in frame.columns or c == "customer_id"]])
    both = everything.score(frame, reasons=1)
    assert list(both.wide.columns) == ["customer_id", *everything.score_columns]
    assert everything.score_columns[-2:] == ["next_best_action", "nba_value"]
    alone = own_model.score(frame, reasons=1)
    assert both.wide["next_best_action"].tolist() == alone["next_best_action"].tolist()
    np.testing.assert_allclose(both.wide["nba_value"], alone["nba_value"], rtol=1e-12)
    assert both.alternatives == alone["alternatives"].tolist() and len(both.reasons) == 4


ACTIONS_OF_WORLD = ("discount_10", "free_shipping", "double_points", "new_arrivals")


def test_cip_train_nba_keeps_the_champion_unless_the_new_policy_is_worth_more(nba_world, tmp_path):
    from training.nba_runtime import NBAModel
    from training.registry import connect
    from training.scoring import Scorer

    settings, first = nba_world
    env = nba_env(settings) | {"CIP_TRAINING__CHAMPION_TOLERANCE": "1000000"}
    done = cip("train", "nba", "--trials", "0", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nba v2" in done.stdout and "not promoted" in done.stdout and "vs champion" in done.stdout
    client = connect(settings)
    assert str(client.get_model_version_by_alias("cip-nba", "champion").version) == "1"
    run = client.get_run(client.get_model_version("cip-nba", "2").run_id)
    assert run.data.tags["gate_decision"] == "kept the champion"
    assert {"gate_new", "gate_champion"} <= set(run.data.metrics)
    listed = cip("models", "list", cwd=tmp_path, env=env)
    assert "cip-nba" in listed.stdout
    scorer = Scorer.load(settings, models=["nba"])
    assert scorer.versions == {"nba": "1"} and not scorer.reload_if_changed(settings)
    promoted = cip("models", "promote", "nba", "2", cwd=tmp_path, env=env)
    assert promoted.returncode == 0 and NBAModel.load(settings).version == "2"
    assert scorer.reload_if_changed(settings) and scorer.versions == {"nba": "2"}  # the Scorer swaps it in
    cip("models", "promote", "nba", "1", cwd=tmp_path, env=env)


def test_nba_before_a_campaign_log_exists_says_what_to_run(tmp_path):
    from cip.errors import MissingInputError
    from cli.settings import Settings
    from training.train import train

    empty = Settings(data_dir=tmp_path / "nothing", mlruns_dir=tmp_path / "mlruns")
    with pytest.raises(MissingInputError, match="campaign exposures") as err:
        train(empty, "nba")
    assert "cip profiles" in err.value.fix


def test_retraining_notebook_for_nba_runs_and_registers_a_version(nba_world, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from training.registry import connect

    settings, _ = nba_world
    client = connect(settings)
    before = len(client.search_model_versions("name='cip-nba'"))
    for key, value in (nba_env(settings) | {"CIP_TRAINING__TRIALS": "0"}).items():
        monkeypatch.setenv(key, value)
    path = Path(__file__).resolve().parents[1] / "notebooks" / "retrain_nba.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "stored with outputs"
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert f"version {before + 1}:" in text
    assert len(client.search_model_versions("name='cip-nba'")) == before + 1


@pytest.mark.parametrize("learner", ["s", "t", "x", "dr", "ens"])
def test_serving_scores_an_nba_bundle_from_its_matrix_exactly_as_nbamodel_score(learners, learner):
    """A bundle whose models all read the same numeric features (every learner but S) is scored
    by serving straight from the feature matrix; choice, value, alternatives and reasons equal
    ``NBAModel.score`` on the frame. The S-learner (an action input) goes through ``Scorer.score``."""
    from sklearn.base import clone

    from serving.fast_score import FastScorer
    from training.nba_runtime import NBAModel
    from training.scoring import Scorer

    X, _, _, _, _ = simulate(1_500, seed=5)
    value = clone(base_model()).fit(X, np.exp(1.0 + 0.2 * X["x2"].to_numpy()))
    costs = {"a": ActionCost(per_send=0.1), "b": ActionCost(share_of_revenue=0.05)}
    model = NBAModel(learners[learner], value, costs, reasons_method="path")
    assert model.matrix_inputs == (learner != "s")
    frame = X.assign(customer_id=[f"c{i}" for i in range(len(X))])
    columns = ["customer_id", "noise", "x2", "x1"]  # the reader's column order, not the model's
    matrix = frame[columns[1:]].to_numpy(dtype=float)
    fast = FastScorer(columns[1:])
    got = fast.score(Scorer({"nba": model}), matrix, frame["customer_id"], 3, frame=frame)
    ref = model.score(frame, reasons=3)
    assert (fast._nba_index(model) is not None) == (learner != "s")
    assert not got.columns  # the action and value go with the other non-numeric outputs
    nba = got.extra.to_dict("series")
    assert list(nba["next_best_action"]) == ref["next_best_action"].tolist()
    np.testing.assert_array_equal(np.asarray(nba["nba_value"], dtype=float), ref["nba_value"].to_numpy())
    assert list(nba["alternatives"]) == ref["alternatives"].tolist()
    assert got.reasons["nba"] == ref["reasons"].tolist()
