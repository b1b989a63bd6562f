"""Simple baselines every model must beat, scored on the same held-out rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training import metrics as mt
from training.datasets import CATEGORY, TrainingSet


def _rule_binary(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    m = mt.binary_metrics(y, np.clip(score, 0, 1))
    return {"auc": m["auc"], "lift_top_decile": mt.binary_metrics(y, _rank01(score))["lift_top_decile"]}


def _rank01(x: np.ndarray) -> np.ndarray:
    return pd.Series(x).rank(pct=True).to_numpy()


def logistic_regression(ts: TrainingSet) -> np.ndarray:
    """Logistic regression on the same inputs (median-imputed, standardized, one-hot category)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def matrix(frame: pd.DataFrame) -> pd.DataFrame:
        X = frame[[c for c in ts.features if c != CATEGORY]].astype(float)
        if CATEGORY in ts.features:
            X = X.join(pd.get_dummies(frame[CATEGORY], prefix="cat", dtype=float))
        return X

    X_tr, y_tr = ts.part("train")
    X_te, _ = ts.part("test")
    A, B = matrix(X_tr), matrix(X_te).reindex(columns=matrix(X_tr).columns, fill_value=0.0)
    keep = A.columns[A.notna().any()]
    model = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=500)
    )
    model.fit(A[keep], y_tr)
    return model.predict_proba(B[keep])[:, 1]


def baselines(ts: TrainingSet) -> dict[str, dict[str, float]]:
    """Baseline metrics on the test cutoff: ``{baseline name: {metric: value}}``."""
    test = ts.rows("test")
    y = test["label"].to_numpy()
    out: dict[str, dict[str, float]] = {}
    if ts.spec.name == "churn":
        recency = test["recency_days"].astype(float).fillna(1e6).to_numpy()
        out["recency_rule"] = _rule_binary(y, _rank01(recency))
        out["logistic_regression"] = mt.binary_metrics(y, logistic_regression(ts))
    elif ts.spec.name == "propensity":
        aff = np.array(
            [
                row.get(f"affinity_{c}_365d", np.nan)
                for c, row in zip(test[CATEGORY], _records(test), strict=True)
            ],
            dtype=float,
        )
        out["category_frequency_rule"] = _rule_binary(y, _rank01(np.nan_to_num(aff, nan=0.0)))
        out["logistic_regression"] = mt.binary_metrics(y, logistic_regression(ts))
    elif ts.spec.name == "clv":
        scale = ts.spec.horizon_days / 365.0
        out["last_year_rule"] = mt.regression_metrics(
            y, test["spend_365d"].astype(float).fillna(0).to_numpy() * scale
        )
        train = ts.rows("train")
        out["historical_average"] = mt.regression_metrics(y, np.full(len(y), train["label"].mean()))
    return out


def _records(frame: pd.DataFrame) -> list[dict]:
    cols = [c for c in frame.columns if c.startswith("affinity_")]
    return frame[cols].to_dict("records")
