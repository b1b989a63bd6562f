"""Train one model end to end: labels → FeatureService frame → Optuna → LightGBM → calibration →
test metrics and baselines → MLflow run → registry, promoted to champion only if it wins."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from cip.errors import CipError
from training import plots
from training.baselines import baselines
from training.datasets import (
    CutoffPlan,
    TrainingSet,
    categorical_inputs,
    plan_cutoffs,
    read_activity,
    snapshot_cutoffs,
    training_set,
)
from training.estimator import GBMModel
from training.metrics import better, metrics_for
from training.runtime import ScoringModel
from training.specs import ModelSpec, spec

if TYPE_CHECKING:
    from training.config import TrainingSettings

Progress = Callable[[str, int, int], None]
PIP_REQUIREMENTS = ["lightgbm>=4.7,<5", "pandas>=2.2", "numpy>=1.26", "scikit-learn>=1.5"]


@dataclass
class TrainResult:
    """What one training run produced and decided."""

    model: str
    version: str
    run_id: str
    promoted: bool
    metrics: dict[str, float]
    baselines: dict[str, dict[str, float]]
    champion_metric: float | None
    plan: CutoffPlan
    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def gate_metric(self) -> str:
        return spec(self.model).metric


def prepare(settings: TrainingSettings, name: str, store: Any = None) -> TrainingSet:
    """The training set of model ``name`` from the lake and the feature store."""
    from features.store import open_store

    s = spec(name)
    activity = read_activity(settings)
    plan = plan_cutoffs(
        snapshot_cutoffs(settings, activity.last_day), s, activity.last_day, settings.training.train_cutoffs
    )
    return training_set(store or open_store(settings), s, activity, plan)


def fit_model(
    settings: TrainingSettings,
    ts: TrainingSet,
    *,
    trials: int | None = None,
    progress: Progress | None = None,
) -> tuple[GBMModel, dict[str, Any]]:
    """Tune (Optuna) and fit the model on the training cutoffs, stopping early on the validation one."""
    from training.registry import optuna_storage
    from training.tuning import tune, unique_study_name

    cfg = settings.training
    s = ts.spec
    X_tr, y_tr = ts.part("train")
    X_va, y_va = ts.part("valid")
    _check_rows(s, y_tr, y_va, cfg.min_rows)
    base = GBMModel(
        task=s.task,
        params={},
        max_rounds=cfg.max_rounds,
        early_stopping_rounds=cfg.early_stopping_rounds,
        categorical=categorical_inputs(s),
        monotone=dict(s.monotone) or None,
        num_threads=cfg.num_threads,
        seed=settings.seed,
    )
    n = cfg.trials if trials is None else trials
    params: dict[str, Any] = {}
    if n > 0:
        settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
        sample = _sample(len(y_tr), cfg.tune_rows, settings.seed)
        params, _ = tune(
            base,
            X_tr.iloc[sample],
            y_tr.iloc[sample],
            (X_va, y_va),
            trials=n,
            timeout=cfg.timeout_seconds,
            storage=optuna_storage(settings),
            study_name=unique_study_name(f"cip-{s.name}"),
            seed=settings.seed,
            progress=progress,
        )
    if progress:
        progress("fitting", n, max(n, 1))
    model = clone(base).set_params(params=params).fit(X_tr, y_tr, eval_set=(X_va, y_va))
    return model, params


def train(
    settings: TrainingSettings,
    name: str,
    *,
    trials: int | None = None,
    progress: Progress | None = None,
    store: Any = None,
) -> TrainResult:
    """Train, evaluate, log and register model ``name``; promote it if it beats the champion."""
    if name == "nba":
        from training.nba import train_nba

        return train_nba(settings, trials=trials, progress=progress, store=store)
    started = time.perf_counter()
    if progress:
        progress("building the training set", 0, 1)
    ts = prepare(settings, name, store)
    model, params = fit_model(settings, ts, trials=trials, progress=progress)
    if progress:
        progress("logging to MLflow", 1, 1)
    result = register(settings, ts, model, params)
    result.seconds = time.perf_counter() - started
    return result


def evaluate(ts: TrainingSet, model: GBMModel) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Test-cutoff metrics of ``model`` and of the baselines, on the same rows."""
    test = ts.rows("test")
    return metrics_for(ts.spec.task, test["label"].to_numpy(), model.predict(test)), baselines(ts)


def register(
    settings: TrainingSettings, ts: TrainingSet, model: GBMModel, params: dict[str, Any] | None = None
) -> TrainResult:
    """Evaluate a fitted model, log the run to MLflow, register a version and apply the champion gate."""
    s = ts.spec
    scoring = ScoringModel(
        s,
        model,
        {
            "reasons": settings.training.reasons,
            "horizon_days": s.horizon_days,
            "cutoffs": {"train": ts.plan.train, "valid": ts.plan.valid, "test": ts.plan.test},
            "training_fingerprint": ts.fingerprint(),
        },
    )
    metrics, base = evaluate(ts, model)
    pred = model.predict(ts.rows("test"))
    return _log_and_register(settings, ts, scoring, params or {}, metrics, base, pred)


def _sample(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted positions of ``k`` of ``n`` rows drawn at random (all rows when ``n <= k``)."""
    if n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _check_rows(s: ModelSpec, y_tr: pd.Series, y_va: pd.Series, min_rows: int) -> None:
    if len(y_tr) < min_rows:
        raise CipError(
            f"{s.name}: only {len(y_tr)} training rows (at least {min_rows} needed)",
            fix="ingest more customers or history, or lower training.min_rows",
        )
    if s.task == "binary" and (y_tr.nunique() < 2 or y_va.nunique() < 2):
        raise CipError(f"{s.name}: the labels of the training or validation cutoff are all one class")


def _log_and_register(
    settings: TrainingSettings,
    ts: TrainingSet,
    scoring: ScoringModel,
    params: dict[str, Any],
    metrics: dict[str, float],
    base: dict[str, dict[str, float]],
    pred: np.ndarray,
) -> TrainResult:
    import mlflow
    from mlflow.models import infer_signature

    from training.registry import CHAMPION, champion, connect, experiment_id

    s = ts.spec
    client = connect(settings)
    exp = experiment_id(settings, client, s.name)
    test = ts.rows("test")
    current = champion(client, s.registered)
    champion_metric = None
    if current is not None:
        champion_metric = _score_champion(settings, s, current.version, test)
    new_metric = metrics[s.metric]
    promote = (
        current is None
        or champion_metric is None
        or better(new_metric, champion_metric, s.greater_is_better, settings.training.champion_tolerance)
    )
    model = scoring.estimator
    X_te = _float_inputs(test[model.feature_names_])
    with mlflow.start_run(experiment_id=exp, run_name=f"{s.name}-{ts.plan.test.isoformat()}") as run:
        mlflow.log_params(
            {
                "feature_service": s.service,
                "n_features": len(model.feature_names_),
                "cutoffs_train": ",".join(d.isoformat() for d in ts.plan.train),
                "cutoff_valid": ts.plan.valid.isoformat(),
                "cutoff_test": ts.plan.test.isoformat(),
                "horizon_days": s.horizon_days,
                "training_fingerprint": ts.fingerprint(),
                "best_iteration": model.best_iteration_,
                **{f"lgb_{k}": v for k, v in model.lgb_params().items()},
            }
        )
        rows = {p: int(m.sum()) for p, m in ts.parts.items()}
        flat = {f"test_{k}": v for k, v in metrics.items() if np.isfinite(v)}
        flat |= {f"rows_{p}": float(n) for p, n in rows.items()}
        for b, bm in base.items():
            flat |= {f"baseline_{b}_{k}": v for k, v in bm.items() if np.isfinite(v)}
        flat["gate_new"] = new_metric
        if champion_metric is not None:
            flat["gate_champion"] = champion_metric
        mlflow.log_metrics(flat)
        mlflow.log_dict(
            {"feature_service": s.service, "features": model.feature_names_}, "feature_order.json"
        )
        _log_plots(s, model, test, pred)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = scoring.save(Path(tmp) / "bundle")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=_pyfunc(),
                artifacts={"bundle": str(bundle)},
                signature=infer_signature(X_te.head(200), pd.DataFrame({s.score_column: pred[:200]})),
                input_example=X_te.head(5),
                pip_requirements=PIP_REQUIREMENTS,
            )
        version = _register(client, s.registered, info, run.info.run_id)
        decision = "promoted" if promote else "kept the champion"
        mlflow.set_tags({"gate_decision": decision, "registered_version": version})
    client.set_model_version_tag(s.registered, version, "gate_decision", decision)
    client.set_model_version_tag(s.registered, version, f"test_{s.metric}", f"{new_metric:.6f}")
    if promote:
        client.set_registered_model_alias(s.registered, CHAMPION, version)
    return TrainResult(
        s.name,
        version,
        run.info.run_id,
        promote,
        metrics,
        base,
        champion_metric,
        ts.plan,
        rows,
        params=params,
    )


def _register(client: Any, registered: str, info: Any, run_id: str) -> str:
    """A new version of ``registered`` from the logged model (quietly: no console prints)."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(registered)
    except MlflowException:
        client.create_registered_model(
            registered, description=spec(registered.removeprefix("cip-")).description
        )
    mv = client.create_model_version(registered, source=info.model_uri, run_id=run_id, model_id=info.model_id)
    return str(mv.version)


def _pyfunc() -> Any:
    from training.pyfunc import CipPyfunc

    return CipPyfunc()


def _float_inputs(X: pd.DataFrame) -> pd.DataFrame:
    """Numeric inputs as float64 (the model reads floats; integers cannot carry missing values)."""
    return X.astype({c: float for c in X.columns if pd.api.types.is_numeric_dtype(X[c])})


def _score_champion(
    settings: TrainingSettings, s: ModelSpec, version: str, test: pd.DataFrame
) -> float | None:
    """The champion's gate metric on the new model's test rows (None if it cannot read them)."""
    try:
        old = ScoringModel.load(settings, s.name, str(version))
        pred = old.score(test, reasons=0)[s.score_column].to_numpy()
    except (KeyError, ValueError):
        return None
    return metrics_for(s.task, test["label"].to_numpy(), pred)[s.metric]


def _log_plots(s: ModelSpec, model: GBMModel, test: pd.DataFrame, pred: np.ndarray) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    y = test["label"].to_numpy()
    sample = test.sample(min(len(test), 2000), random_state=0) if len(test) > 2000 else test
    figures = {
        "importance.png": plots.importance(model.importance()),
        "shap_summary.png": plots.shap_summary(model.contributions(sample), sample, model.feature_names_),
        "lift_gain.png": plots.lift_gain(y, pred),
    }
    if s.task == "binary":
        figures["roc.png"] = plots.roc(y, pred)
        figures["calibration.png"] = plots.calibration(y, pred)
    else:
        figures["predicted_vs_actual.png"] = plots.predicted_vs_actual(y, pred)
    for fname, fig in figures.items():
        mlflow.log_figure(fig, f"plots/{fname}")
        plt.close(fig)


def summary_frame(results: list[TrainResult]) -> pd.DataFrame:
    """Model vs baselines on the test cutoff, one row per (model, contender)."""
    rows = []
    for r in results:
        keys = (
            ("auc", "logloss", "ece", "lift_top_decile")
            if spec(r.model).task == "binary"
            else ("rmse", "mae", "pearson", "total_error_pct")
        )
        rows.append(
            {"model": r.model, "contender": f"LightGBM v{r.version}", **{k: r.metrics.get(k) for k in keys}}
        )
        for b, bm in r.baselines.items():
            rows.append({"model": r.model, "contender": b, **{k: bm.get(k) for k in keys}})
    return pd.DataFrame(rows)


def to_json(result: TrainResult) -> str:
    return json.dumps(
        {
            "model": result.model,
            "version": result.version,
            "promoted": result.promoted,
            "metrics": result.metrics,
            "baselines": result.baselines,
        },
        default=str,
    )
