"""Off-policy evaluation on logged randomized campaigns, and uplift ranking metrics (pure).

A policy maps each logged row to an action column. With the logged assignment probability ``p`` of
the logged action ``A`` and the net reward ``r`` the row realized:

- **IPW** (Horvitz–Thompson): ``V = mean(1[A = pi] r / p)``;
- **doubly robust**: ``V = mean(q(x, pi) + 1[A = pi] (r - q(x, A)) / p)`` with ``q`` a model of the
  net reward of each action (unbiased whatever ``q`` is, since ``p`` is known; a good ``q`` narrows
  the interval).

Incremental values are contrasts with the control-for-everyone policy, row by row, so both policies'
noise is paired. Intervals are normal, from standard errors clustered by customer (a customer's rows
in several campaigns are not independent).

Qini curves and uplift-at-k rank rows of one action and the control by predicted uplift.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error and a two-sided confidence interval."""

    value: float
    se: float
    low: float
    high: float
    n: int
    level: float

    def covers(self, x: float) -> bool:
        return self.low <= x <= self.high

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def mean_ci(values: np.ndarray, clusters: np.ndarray | None = None, level: float = 0.95) -> Estimate:
    """Mean of ``values`` with a cluster-robust standard error (each row its own cluster by default)."""
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n == 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, nan, 0, level)
    mean = float(v.mean())
    if clusters is None:
        se = float(v.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    else:
        codes, _ = pd.factorize(pd.Series(clusters))
        g = codes.max() + 1
        sums = np.bincount(codes, weights=v - mean, minlength=g)
        se = float(np.sqrt(g / max(g - 1, 1) * np.sum(sums**2)) / n) if g > 1 else float("nan")
    z = float(stats.norm.ppf(0.5 + level / 2.0))
    return Estimate(mean, se, mean - z * se, mean + z * se, n, level)


def policy_matrix(policy: np.ndarray, n_actions: int) -> np.ndarray:
    """``(n, n_actions)`` action probabilities: a deterministic policy (1-D action indices) one-hot,
    a stochastic one (2-D) as given."""
    policy = np.asarray(policy)
    if policy.ndim == 2:
        return policy.astype(float)
    out = np.zeros((len(policy), n_actions))
    out[np.arange(len(policy)), policy.astype(np.int64)] = 1.0
    return out


def ipw_terms(
    policy: np.ndarray, logged: np.ndarray, prob: np.ndarray, reward: np.ndarray, n_actions: int | None = None
) -> np.ndarray:
    """Per-row IPW terms ``pi(A | x) r / p`` (their mean is the policy's value). ``policy``: action
    indices or an ``(n, actions)`` probability matrix; ``logged``: the logged action's index."""
    logged = np.asarray(logged, dtype=np.int64)
    width = n_actions or int(max(np.max(policy, initial=0), logged.max(initial=0))) + 1
    pi = policy_matrix(policy, width)
    return pi[np.arange(len(logged)), logged] * np.asarray(reward, float) / np.asarray(prob, float)


def dr_terms(
    policy: np.ndarray, logged: np.ndarray, prob: np.ndarray, reward: np.ndarray, q: np.ndarray
) -> np.ndarray:
    """Per-row doubly robust terms ``sum_a pi(a | x) q(x, a) + pi(A | x) (r - q(x, A)) / p``; ``q`` is
    the ``(n, actions)`` reward model."""
    logged = np.asarray(logged, dtype=np.int64)
    pi = policy_matrix(policy, q.shape[1])
    rows = np.arange(len(q))
    resid = np.asarray(reward, float) - q[rows, logged]
    return (pi * q).sum(axis=1) + pi[rows, logged] * resid / np.asarray(prob, float)


def incremental_value(
    policy: np.ndarray,
    logged: np.ndarray,
    prob: np.ndarray,
    reward: np.ndarray,
    q: np.ndarray | None = None,
    control: int = 0,
    clusters: np.ndarray | None = None,
    level: float = 0.95,
    n_actions: int | None = None,
) -> dict[str, Estimate]:
    """IPW (and, given ``q``, DR) estimates of the policy's value minus the all-control policy's, per
    row. ``policy``: action indices or probabilities; ``logged``: action indices; ``reward``: the
    realized net value."""
    width = q.shape[1] if q is not None else n_actions
    base = np.full(len(logged), control)
    out = {
        "ipw": mean_ci(
            ipw_terms(policy, logged, prob, reward, width) - ipw_terms(base, logged, prob, reward, width),
            clusters,
            level,
        )
    }
    if q is not None:
        out["dr"] = mean_ci(
            dr_terms(policy, logged, prob, reward, q) - dr_terms(base, logged, prob, reward, q),
            clusters,
            level,
        )
    return out


# --- uplift ranking -----------------------------------------------------------------------------------
def _cumulative(score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, ...]:
    order = np.argsort(-np.asarray(score, float), kind="stable")
    t = np.asarray(treated, bool)[order]
    yy = np.asarray(y, float)[order]
    return np.cumsum(t), np.cumsum(~t), np.cumsum(np.where(t, yy, 0.0)), np.cumsum(np.where(t, 0.0, yy))


def qini_curve(score: np.ndarray, treated: np.ndarray, y: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Incremental outcome of treating the top fraction by ``score``, per treated row of the sample:
    ``(Y_t(k) - Y_c(k) N_t(k) / N_c(k)) / N_t``, next to the random-targeting line."""
    n_t, n_c, y_t, y_c = _cumulative(score, treated, y)
    q = (y_t - y_c * np.divide(n_t, n_c, out=np.zeros(len(n_t)), where=n_c > 0)) / max(int(n_t[-1]), 1)
    n = len(q)
    idx = np.unique(np.clip(np.round(np.linspace(0, n, points)).astype(int) - 1, -1, n - 1))
    frac = (idx + 1) / n
    value = np.where(idx >= 0, q[np.maximum(idx, 0)], 0.0)
    return pd.DataFrame({"fraction": frac, "qini": value, "random": frac * q[-1]})


def qini_coefficient(score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> float:
    """Mean gap between the Qini curve and the random line (outcome units per treated row; 0 = random)."""
    if len(score) == 0 or not np.any(treated) or np.all(treated):
        return float("nan")
    n_t, n_c, y_t, y_c = _cumulative(score, treated, y)
    q = (y_t - y_c * np.divide(n_t, n_c, out=np.zeros(len(n_t)), where=n_c > 0)) / n_t[-1]
    frac = np.arange(1, len(q) + 1) / len(q)
    return float(np.mean(q - frac * q[-1]))


def uplift_at_k(score: np.ndarray, treated: np.ndarray, y: np.ndarray, k: float) -> float:
    """Observed uplift (treated mean - control mean) among the top ``k`` fraction by ``score``."""
    order = np.argsort(-np.asarray(score, float), kind="stable")
    top = order[: max(1, int(round(k * len(order))))]
    t = np.asarray(treated, bool)[top]
    yy = np.asarray(y, float)[top]
    if t.all() or not t.any():
        return float("nan")
    return float(yy[t].mean() - yy[~t].mean())


def policy_curve(score: np.ndarray, gain: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Uplift curve of a multi-action policy: rows ranked by the policy's predicted gain ``score``;
    ``value`` = sum of the per-row incremental value terms ``gain`` (e.g. DR terms of the policy minus
    the control's) of the top fraction, per row of the sample."""
    order = np.argsort(-np.asarray(score, float), kind="stable")
    c = np.cumsum(np.asarray(gain, float)[order]) / max(len(order), 1)
    n = len(c)
    idx = np.unique(np.clip(np.round(np.linspace(0, n, points)).astype(int) - 1, -1, n - 1))
    return pd.DataFrame({"fraction": (idx + 1) / n, "value": np.where(idx >= 0, c[np.maximum(idx, 0)], 0.0)})


def policy_auuc(score: np.ndarray, gain: np.ndarray) -> float:
    """Area under the policy's uplift curve (mean over every top-k of the incremental value per row):
    rewards choosing the right action (the curve's end) and targeting the surest gains first."""
    if len(score) == 0:
        return float("nan")
    order = np.argsort(-np.asarray(score, float), kind="stable")
    return float(np.mean(np.cumsum(np.asarray(gain, float)[order]) / len(order)))
