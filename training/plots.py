"""Model-quality plots logged with every run (matplotlib, no display needed)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from training.metrics import lift_table  # noqa: E402


def roc(y: np.ndarray, p: np.ndarray, baselines: dict[str, np.ndarray] | None = None) -> Figure:
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(5, 5))
    for name, score in {"model": p, **(baselines or {})}.items():
        fpr, tpr, _ = roc_curve(y, score)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc_score(y, score):.3f})")
    ax.plot([0, 1], [0, 1], "k:", lw=1)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test cutoff)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def calibration(y: np.ndarray, p: np.ndarray, bins: int = 10) -> Figure:
    order = np.argsort(p, kind="stable")
    chunks = np.array_split(order, bins)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(
        [c.size and p[c].mean() for c in chunks],
        [c.size and y[c].mean() for c in chunks],
        "o-",
        label="model",
    )
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="perfect")
    ax.set(
        xlabel="mean predicted probability", ylabel="observed rate", title="Calibration (equal-count bins)"
    )
    ax.legend(fontsize=8)
    return fig


def lift_gain(y: np.ndarray, score: np.ndarray) -> Figure:
    t = lift_table(y, score)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.bar(t["decile"], t["lift"])
    a.axhline(1, color="k", lw=1, ls=":")
    a.set(xlabel="decile (1 = highest score)", ylabel="lift", title="Lift by decile")
    b.plot([0, *t["decile"]], [0, *t["gain"]], "o-", label="model")
    b.plot([0, 10], [0, 1], "k:", lw=1, label="random")
    b.set(xlabel="deciles targeted", ylabel="share of positives (or value) captured", title="Cumulative gain")
    b.legend(fontsize=8)
    return fig


def importance(gain: pd.Series, top: int = 20) -> Figure:
    g = gain.head(top)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(g) + 1))
    ax.barh(g.index, g.to_numpy())
    ax.set(xlabel="total gain", title="Feature importance")
    fig.tight_layout()
    return fig


def shap_summary(contrib: np.ndarray, X: pd.DataFrame, features: list[str], top: int = 15) -> Figure:
    """A beeswarm-like summary: contribution per row, colored by the feature's value rank."""
    c = contrib[:, : len(features)]
    order = np.argsort(-np.abs(c).mean(axis=0))[:top][::-1]
    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.2))
    for row, j in enumerate(order):
        values = pd.to_numeric(X[features[j]], errors="coerce")
        colour = values.rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(c[:, j], row + rng.uniform(-0.3, 0.3, len(c)), c=colour, cmap="coolwarm", s=4, alpha=0.6)
    ax.set_yticks(range(len(order)), [features[j] for j in order])
    ax.axvline(0, color="k", lw=0.8)
    ax.set(
        xlabel="contribution to the raw score (SHAP)", title="SHAP summary (colour: feature value, low→high)"
    )
    fig.tight_layout()
    return fig


def predicted_vs_actual(y: np.ndarray, pred: np.ndarray) -> Figure:
    t = lift_table(y, pred)
    fig, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(1, len(t) + 1)
    ax.bar(x - 0.2, t["predicted"] / t["rows"], width=0.4, label="predicted (mean)")
    ax.bar(x + 0.2, t["actual"] / t["rows"], width=0.4, label="actual (mean)")
    ax.set(
        xlabel="decile of predicted value (1 = highest)",
        ylabel="value per customer",
        title="Predicted vs actual",
    )
    ax.legend(fontsize=8)
    return fig


def qini_curves(curves: dict[str, pd.DataFrame]) -> Figure:
    """Qini curve per action (``training.ope.qini_curve`` frames) against random targeting."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for action, c in curves.items():
        line = ax.plot(c["fraction"], c["qini"], label=action)[0]
        ax.plot(c["fraction"], c["random"], ls=":", lw=1, color=line.get_color())
    ax.axhline(0, color="k", lw=0.8)
    ax.set(
        xlabel="share targeted (highest predicted uplift first)",
        ylabel="incremental outcome per treated customer",
        title="Qini curves vs random (dotted), test campaigns",
    )
    ax.legend(fontsize=8)
    return fig


def policy_values(estimates: dict[str, dict[str, dict[str, float]]]) -> Figure:
    """Off-policy incremental value of each policy (IPW and DR) with its confidence interval."""
    names = list(estimates)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.2))
    y = np.arange(len(names))
    for off, kind in ((-0.15, "ipw"), (0.15, "dr")):
        e = [estimates[n].get(kind) for n in names]
        ok = [i for i, x in enumerate(e) if x]
        v = np.array([e[i]["value"] for i in ok])
        err = np.array([[v[j] - e[i]["low"], e[i]["high"] - v[j]] for j, i in enumerate(ok)]).T
        ax.errorbar(v, y[ok] + off, xerr=err, fmt="o", capsize=3, label=kind.upper())
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, names)
    ax.set(
        xlabel="incremental value per exposure vs no offer (net of cost)", title="Off-policy policy values"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
