"""Optuna tuning of a :class:`GBMModel`: TPE sampler, LightGBM pruning, study persisted under mlruns/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from training.estimator import GBMModel

Progress = Callable[[str, int, int], None]


def search_space(trial: Any, task: str) -> dict[str, Any]:
    """The hyper-parameters tuned, with ranges that suit tabular customer data."""
    params = {
        "learning_rate": trial.suggest_float("learning_rate", 0.04, 0.25, log=True),
        "num_leaves": trial.suggest_int("num_leaves", 7, 63, log=True),
        "min_data_in_leaf": trial.suggest_int("min_data_in_leaf", 10, 300, log=True),
        "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
        "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
        "bagging_freq": 1,
        "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 30.0, log=True),
    }
    if task == "regression":
        params["tweedie_variance_power"] = trial.suggest_float("tweedie_variance_power", 1.05, 1.9)
    return params


def tune(
    model: GBMModel,
    X: pd.DataFrame,
    y: pd.Series,
    eval_set: tuple[pd.DataFrame, pd.Series],
    *,
    trials: int,
    timeout: float | None,
    storage: str | None,
    study_name: str,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], Any]:
    """Best parameters for ``model`` on ``eval_set`` (maximize AUC, or minimize RMSE) and the study."""
    import optuna
    from optuna_integration import LightGBMPruningCallback

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    metric = "auc" if model.task == "binary" else "rmse"
    direction = "maximize" if metric == "auc" else "minimize"
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        load_if_exists=False,
        direction=direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=20),
    )

    def objective(trial: Any) -> float:
        candidate = clone(model).set_params(
            params={**(model.params or {}), **search_space(trial, model.task)}
        )
        candidate.fit(X, y, eval_set=eval_set, callbacks=[LightGBMPruningCallback(trial, metric)])
        score = candidate.booster_.best_score["valid_0"][metric]
        trial.set_user_attr("best_iteration", candidate.best_iteration_)
        return float(score)

    def report(study: Any, trial: Any) -> None:
        if progress:
            progress(f"tuning ({len(study.trials)}/{trials} trials)", len(study.trials), trials)

    study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[report], gc_after_trial=False)
    done = [t for t in study.trials if t.value is not None and np.isfinite(t.value)]
    if not done:
        return dict(model.params or {}), study
    return {**(model.params or {}), **study.best_params, "bagging_freq": 1}, study


def unique_study_name(prefix: str) -> str:
    from datetime import UTC, datetime

    return f"{prefix}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}"
