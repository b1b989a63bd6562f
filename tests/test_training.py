"""Models on the generated world: train through the FeatureServices, register in a real MLflow store
(SQLite in a temp dir), gate champions, and score through the runtime that serving and batch share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cip.errors import MissingInputError
from cli.settings import Settings


@pytest.fixture(scope="module")
def trained(trained_world):
    return trained_world


def test_every_model_is_registered_as_champion_with_its_run(trained):
    from training.registry import connect, list_models

    settings, results = trained
    client = connect(settings)
    for name, r in results.items():
        assert r.promoted and r.version == "1"
        mv = client.get_model_version_by_alias(f"cip-{name}", "champion")
        assert str(mv.version) == "1"
        run = client.get_run(r.run_id)
        assert run.data.params["feature_service"] == f"{name}_v1"
        assert run.data.params["cutoff_test"] == r.plan.test.isoformat()
        assert len(run.data.params["training_fingerprint"]) == 32
        assert f"test_{'auc' if name != 'clv' else 'rmse'}" in run.data.metrics
        arts = {a.path for a in client.list_artifacts(r.run_id, "plots")}
        assert "plots/shap_summary.png" in arts and "plots/lift_gain.png" in arts
        assert ("plots/calibration.png" in arts) == (name != "clv")
    table = list_models(settings)
    assert set(table["model"]) == {"cip-churn", "cip-clv", "cip-propensity"}
    assert (table["aliases"] == "champion").all()


def test_models_beat_their_simple_rule_baselines(trained):
    _, results = trained
    churn, clv = results["churn"], results["clv"]
    assert churn.metrics["auc"] > churn.baselines["recency_rule"]["auc"]
    assert churn.metrics["auc"] > 0.7
    assert clv.metrics["mae"] < clv.baselines["historical_average"]["mae"]
    assert clv.metrics["pearson"] > clv.baselines["last_year_rule"]["pearson"]
    assert results["propensity"].metrics["auc"] > 0.65


def test_cutoffs_are_split_by_time_and_label_windows_end_in_the_data(trained):
    from training.labels import window_complete
    from training.specs import SPECS

    _, results = trained
    for name, r in results.items():
        assert max(r.plan.train) < r.plan.valid < r.plan.test
        assert window_complete(r.plan.test, SPECS[name].horizon_days, pd.Timestamp("2026-06-30").date())
        assert r.rows["train"] > r.rows["test"] > 0


def test_scoring_runtime_round_trip_through_the_registry(trained):
    import mlflow.pyfunc

    from training.registry import tracking_uri
    from training.runtime import ScoringModel
    from training.train import prepare

    settings, _ = trained
    for name in ("churn", "propensity"):
        ts = prepare(settings, name)
        test = ts.rows("test").head(200)
        model = ScoringModel.load(settings, name)
        assert model.version == "1" and model.service == f"{name}_v1"
        scored = model.score(test)
        col = model.spec.score_column
        assert scored[col].between(0, 1).all() and len(scored) == len(test)
        assert all(len(r) == settings.training.reasons for r in scored["reasons"])
        pyfunc = mlflow.pyfunc.load_model(f"models:/cip-{name}@champion")  # its signature takes floats
        inputs = test[model.features].astype({c: float for c in model.features if c != "category"})
        assert np.allclose(pyfunc.predict(inputs)[col].to_numpy(), scored[col].to_numpy())
        assert tracking_uri(settings).startswith("sqlite:///")


def test_runtime_scores_customers_per_category_for_the_propensity_model(trained):
    from training.runtime import ScoringModel
    from training.train import prepare

    settings, _ = trained
    model = ScoringModel.load(settings, "propensity")
    customers = (
        prepare(settings, "propensity").rows("test").drop(columns="category").drop_duplicates("customer_id")
    )
    scored = model.score(customers.head(10), reasons=1)
    cats = model.estimator.categories_["category"]
    assert len(scored) == 10 * len(cats)
    assert scored.groupby("customer_id")["category"].apply(sorted).map(lambda c: c == cats).all()


def test_a_worse_model_is_not_promoted_and_a_person_can_promote_it(trained):
    from training.registry import connect, promote
    from training.train import train

    settings, results = trained
    # ten untuned rounds, and a champion that must be beaten by 0.05 AUC: on a 2,000-person world a
    # short model is not reliably worse, the tolerance makes the comparison certain
    weak = settings.model_copy(
        update={
            "training": settings.training.model_copy(
                update={"max_rounds": 10, "trials": 0, "champion_tolerance": 0.05}
            )
        }
    )
    worse = train(weak, "churn")
    assert worse.version == "2" and not worse.promoted
    assert worse.champion_metric == pytest.approx(results["churn"].metrics["auc"])
    assert worse.metrics["auc"] < worse.champion_metric + 0.05
    client = connect(settings)
    assert str(client.get_model_version_by_alias("cip-churn", "champion").version) == "1"
    run = client.get_run(worse.run_id)
    assert run.data.tags["gate_decision"] == "kept the champion"
    assert {"gate_new", "gate_champion"} <= set(run.data.metrics)
    promote(settings, "churn", 2)
    assert str(client.get_model_version_by_alias("cip-churn", "champion").version) == "2"
    promote(settings, "churn", 1)


def test_churn_risk_rises_with_recency_and_ignores_names(trained):
    from training.runtime import ScoringModel
    from training.train import prepare

    settings, _ = trained
    model = ScoringModel.load(settings, "churn")
    rows = prepare(settings, "churn").rows("test").head(300)
    base = model.score(rows, reasons=0)["churn_probability"].to_numpy()
    later = rows.assign(
        recency_days=rows["recency_days"] + 60, days_since_last_purchase=rows["days_since_last_purchase"] + 60
    )
    risen = model.score(later, reasons=0)["churn_probability"].to_numpy()
    assert (risen >= base - 1e-12).all() and risen.mean() > base.mean()
    # names are not model inputs (PII stays out of features): a renamed customer scores the same
    assert not {"first_name", "last_name", "name", "email"} & set(model.features)
    renamed = rows.assign(first_name="Zed", last_name="Renamed")
    assert np.array_equal(model.score(renamed, reasons=0)["churn_probability"].to_numpy(), base)


def test_training_before_features_exist_says_what_to_run(ingested_world, tmp_path):
    from training.train import train

    empty = Settings(data_dir=tmp_path / "nothing", mlruns_dir=tmp_path / "mlruns")
    with pytest.raises(MissingInputError, match="no resolved orders") as err:
        train(empty, "churn")
    assert "cip profiles" in err.value.fix


@pytest.mark.parametrize("model", ["churn", "clv", "propensity"])
def test_retraining_notebook_runs_and_registers_a_version(trained, model, monkeypatch, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    from training.registry import connect

    settings, _ = trained
    client = connect(settings)
    before = len(client.search_model_versions(f"name='cip-{model}'"))
    env = {
        "CIP_DATA_DIR": str(settings.data_dir),
        "CIP_MLRUNS_DIR": str(settings.mlruns_dir),
        "CIP_TRAINING__TRIALS": "1",
        "CIP_TRAINING__NUM_THREADS": "1",
        "CIP_TRAINING__MIN_ROWS": "100",
        "MPLBACKEND": "Agg",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    path = Path(__file__).resolve().parents[1] / "notebooks" / f"retrain_{model}.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "stored with outputs"
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    after = client.search_model_versions(f"name='cip-{model}'")
    assert len(after) == before + 1
    newest = max(int(v.version) for v in after)  # the registry never reuses a deleted number
    assert f"version {newest}:" in text
