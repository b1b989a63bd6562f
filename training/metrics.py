"""Model quality figures (pure: arrays in, numbers out)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean probability| over equal-count bins, weighted by bin size."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    if len(y) == 0:
        return float("nan")
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, min(bins, len(y))):
        total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return float(total / len(y))


def lift_table(y: np.ndarray, score: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Deciles by score (1 = highest): rows, positives (or amount), rate, lift and cumulative gain."""
    y, score = np.asarray(y, float), np.asarray(score, float)
    order = np.argsort(-score, kind="stable")
    rows = []
    for i, chunk in enumerate(np.array_split(order, bins), start=1):
        rows.append(
            {"decile": i, "rows": len(chunk), "actual": y[chunk].sum(), "predicted": score[chunk].sum()}
        )
    t = pd.DataFrame(rows)
    base = y.mean() if len(y) else np.nan
    t["rate"] = t["actual"] / t["rows"].clip(lower=1)
    t["lift"] = t["rate"] / base if base else np.nan
    t["gain"] = t["actual"].cumsum() / max(y.sum(), 1e-12)
    return t


def binary_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

    y, p = np.asarray(y, int), np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7)
    one_class = len(np.unique(y)) < 2
    return {
        "auc": float("nan") if one_class else float(roc_auc_score(y, p)),
        "logloss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
        "lift_top_decile": float(lift_table(y, p)["lift"].iloc[0]),
        "base_rate": float(y.mean()),
        "mean_prediction": float(p.mean()),
        "rows": float(len(y)),
    }


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from scipy.stats import pearsonr, spearmanr

    y, pred = np.asarray(y, float), np.asarray(pred, float)
    const = (np.ptp(pred) == 0 or np.ptp(y) == 0) if len(y) else True
    return {
        "rmse": float(np.sqrt(np.mean((y - pred) ** 2))),
        "mae": float(np.mean(np.abs(y - pred))),
        "pearson": float("nan") if const else float(pearsonr(y, pred)[0]),
        "spearman": float("nan") if const else float(spearmanr(y, pred)[0]),
        "total_error_pct": float(100 * (pred.sum() - y.sum()) / max(abs(y.sum()), 1e-12)),
        "mean_actual": float(y.mean()),
        "mean_prediction": float(pred.mean()),
        "rows": float(len(y)),
    }


def metrics_for(task: str, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return binary_metrics(y, pred) if task == "binary" else regression_metrics(y, pred)


def better(new: float, old: float, greater_is_better: bool, tolerance: float = 0.0) -> bool:
    """Is ``new`` better than ``old`` by more than ``tolerance``? (NaN is never better.)"""
    if np.isnan(new):
        return False
    if np.isnan(old):
        return True
    return new > old + tolerance if greater_is_better else new < old - tolerance
