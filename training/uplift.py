"""Uplift learners: the effect of each action on an outcome, against a control action, learned from
randomized (logged) assignments with LightGBM (:class:`~training.estimator.GBMModel`).

- **S-learner**: one outcome model with the action as an input; uplift = mu(x, a) - mu(x, control).
- **T-learner**: one outcome model per action; uplift = mu_a(x) - mu_control(x).
- **X-learner** (Künzel et al. 2019): effects imputed with the other arm's T-model (treated rows:
  ``y - mu_control(x)``; control rows: ``mu_a(x) - y``), one effect model per arm, blended by the
  assignment probability ``g = P(a) / (P(a) + P(control))``.
- **DR-learner** (Kennedy 2020): the doubly robust pseudo-outcome
  ``mu_a - mu_c + 1[A=a] (y - mu_a) / p - 1[A=c] (y - mu_c) / p`` (``p``: the logged assignment
  probability, outcome models cross-fitted over customer folds) regressed on ``x``.
- **ens**: the mean of the X- and DR-learners' effects (their errors are partly independent, so the
  average is less noisy than either when effects are small against the outcome's noise).

Pure: frames and arrays in, fitted models out. A fitted :class:`UpliftModel` saves to plain files
(LightGBM model text + JSON), like every CIP model.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from training.estimator import GBMModel

LEARNERS: tuple[str, ...] = ("s", "t", "x", "dr", "ens")
#: Input of the S-learner's pooled model: the action being scored.
ACTION = "action"
UPLIFT_FILE = "uplift.json"
#: Effect models regress noisy, signed targets: shallow trees, large leaves, slow learning.
EFFECT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.03,
    "num_leaves": 7,
    "min_data_in_leaf": 200,
    "lambda_l2": 10.0,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
}

Progress = Callable[[str], None]


class EffectGBM(GBMModel):
    """A :class:`GBMModel` for a signed target (a treatment effect): squared loss, identity link, so
    predictions and contributions are in the outcome's units."""

    def lgb_params(self) -> dict[str, Any]:
        params = super().lgb_params()
        params.pop("tweedie_variance_power", None)
        return params | {"objective": "regression", "metric": "rmse"}

    def from_raw(self, raw: np.ndarray) -> np.ndarray:
        return raw

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.raw_score(X)


@dataclass
class Arms:
    """Logged rows: inputs, the action taken, the outcome and the logged assignment probability."""

    X: pd.DataFrame
    action: np.ndarray
    y: np.ndarray
    prob: np.ndarray
    group: np.ndarray | None = None  # customer of each row (cross-fitting folds)

    def __post_init__(self) -> None:
        self.action = np.asarray(self.action, dtype=object)
        self.y = np.asarray(self.y, dtype=float)
        self.prob = np.asarray(self.prob, dtype=float)
        if not (len(self.X) == len(self.action) == len(self.y) == len(self.prob)):
            raise ValueError("X, action, y and prob must have one entry per row")
        if len(self.prob) and not ((self.prob > 0) & (self.prob <= 1)).all():
            raise ValueError("assignment probabilities must be in (0, 1]")

    def where(self, mask: np.ndarray) -> Arms:
        return Arms(
            self.X[mask],
            self.action[mask],
            self.y[mask],
            self.prob[mask],
            None if self.group is None else self.group[mask],
        )

    def arm(self, a: str) -> np.ndarray:
        return self.action == a

    def share(self, a: str) -> float:
        """P(action = a): the mean logged probability of the rows that got ``a``."""
        m = self.arm(a)
        return float(self.prob[m].mean()) if m.any() else float("nan")


@dataclass
class UpliftModel:
    """A fitted uplift learner: per-action effects on the outcome, and the outcome under each action."""

    learner: str
    control: str
    actions: tuple[str, ...]  # treatment actions, without the control
    features: list[str]
    outcome: dict[str, GBMModel]  # per action incl. the control; the S-learner: {ACTION: pooled}
    effects: dict[str, list[tuple[GBMModel, float]]] = field(default_factory=dict)  # X-, DR-learner

    @property
    def all_actions(self) -> tuple[str, ...]:
        return (self.control, *self.actions)

    # --- predictions ----------------------------------------------------------------------------
    def _with_action(self, X: pd.DataFrame, a: str) -> pd.DataFrame:
        out = X[self.features].copy()
        out[ACTION] = a
        return out

    def inputs(self, X: pd.DataFrame | np.ndarray) -> pd.DataFrame | np.ndarray:
        """``X`` as the one float matrix every outcome and effect model reads, built once, when they
        share their inputs (all learners but S); otherwise ``X``."""
        if isinstance(X, np.ndarray) or self.learner == "s":
            return X
        models = [*self.outcome.values(), *(m for per in self.effects.values() for m, _ in per)]
        first = models[0]
        same = all(
            list(m.feature_names_) == list(first.feature_names_) and m.categories_ == first.categories_
            for m in models[1:]
        )
        return first.matrix(X) if same else X

    def outcomes(self, X: pd.DataFrame) -> np.ndarray:
        """Expected outcome under each action, ``(n, 1 + K)`` in :attr:`all_actions` order."""
        X = self.inputs(X)
        if self.learner == "s":
            pooled = self.outcome[ACTION]
            return np.column_stack([pooled.predict(self._with_action(X, a)) for a in self.all_actions])
        return np.column_stack([self.outcome[a].predict(X) for a in self.all_actions])

    def uplift(self, X: pd.DataFrame) -> np.ndarray:
        """Effect of each treatment action on the outcome against the control, ``(n, K)``."""
        X = self.inputs(X)
        if self.learner in ("s", "t"):
            mu = self.outcomes(X)
            return mu[:, 1:] - mu[:, [0]]
        return np.column_stack([sum(w * m.predict(X) for m, w in self.effects[a]) for a in self.actions])

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Expected outcome under the control ``(n,)`` and the uplift of each action ``(n, K)``."""
        X = self.inputs(X)
        if self.learner in ("s", "t"):
            mu = self.outcomes(X)
            return mu[:, 0], mu[:, 1:] - mu[:, [0]]
        return self.outcome[self.control].predict(X), self.uplift(X)

    def contributions(self, X: pd.DataFrame, action: str, method: str = "tree_shap") -> np.ndarray:
        """Per-feature contributions to the uplift of ``action`` (``(n, F + 1)``, last column: the rest).

        ``method`` is ``tree_shap`` or ``path`` (:mod:`training.attribution`).
        X-/DR-learner: contributions of the effect models, in outcome units (rows sum to the uplift).
        S-/T-learner: contributions to ``log mu_a - log mu_control`` (the outcome models' log link), so a
        contribution is a log ratio of the expected outcome.
        """
        f = len(self.features)
        X = self.inputs(X)
        if self.learner not in ("s", "t"):
            return sum(w * m.contributions(X, method) for m, w in self.effects[action])
        if self.learner == "s":
            pooled = self.outcome[ACTION]
            diff = pooled.contributions(self._with_action(X, action), method) - pooled.contributions(
                self._with_action(X, self.control), method
            )
        else:
            diff = self.outcome[action].contributions(X, method) - self.outcome[self.control].contributions(
                X, method
            )
        return np.column_stack([diff[:, :f], diff[:, f:].sum(axis=1)])

    # --- persistence ----------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        meta: dict[str, Any] = {
            "learner": self.learner,
            "control": self.control,
            "actions": list(self.actions),
            "features": self.features,
            "outcome": {},
            "effects": {},
        }
        for i, (a, m) in enumerate(self.outcome.items()):
            m.save(directory / f"outcome_{i}")
            meta["outcome"][a] = f"outcome_{i}"
        for a, parts in self.effects.items():
            meta["effects"][a] = []
            for j, (m, w) in enumerate(parts):
                sub = f"effect_{self.actions.index(a)}_{j}"
                m.save(directory / sub)
                meta["effects"][a].append({"dir": sub, "weight": w})
        (directory / UPLIFT_FILE).write_text(json.dumps(meta, indent=1))
        return directory

    @classmethod
    def load(cls, directory: Path) -> UpliftModel:
        directory = Path(directory)
        meta = json.loads((directory / UPLIFT_FILE).read_text())
        return cls(
            learner=meta["learner"],
            control=meta["control"],
            actions=tuple(meta["actions"]),
            features=list(meta["features"]),
            outcome={a: GBMModel.load(directory / d) for a, d in meta["outcome"].items()},
            effects={
                a: [(EffectGBM.load(directory / p["dir"]), float(p["weight"])) for p in parts]
                for a, parts in meta["effects"].items()
            },
        )


# --- fitting ------------------------------------------------------------------------------------------
def outcome_models(base: GBMModel, train: Arms, valid: Arms, arms: tuple[str, ...]) -> dict[str, GBMModel]:
    """One outcome model per arm (the T-learner's first stage), stopped early on the arm's valid rows."""
    out = {}
    for a in arms:
        tr, va = train.arm(a), valid.arm(a)
        if tr.sum() < 2 or va.sum() < 2:
            raise ValueError(
                f"action '{a}' has too few rows to learn from ({tr.sum()} train, {va.sum()} valid)"
            )
        out[a] = clone(base).fit(train.X[tr], train.y[tr], eval_set=(valid.X[va], valid.y[va]))
    return out


def fit_s(base: GBMModel, train: Arms, valid: Arms, control: str, actions: tuple[str, ...]) -> UpliftModel:
    """One pooled outcome model with the action as a categorical input."""
    features = list(train.X.columns)
    pooled = clone(base).set_params(categorical=(*base.categorical, ACTION))

    def frame(d: Arms) -> pd.DataFrame:
        out = d.X.copy()
        out[ACTION] = d.action
        return out

    pooled.fit(frame(train), train.y, eval_set=(frame(valid), valid.y))
    return UpliftModel("s", control, actions, features, {ACTION: pooled})


def fit_t(
    outcomes: dict[str, GBMModel], features: list[str], control: str, actions: tuple[str, ...]
) -> UpliftModel:
    return UpliftModel("t", control, actions, features, dict(outcomes))


def fit_x(
    outcomes: dict[str, GBMModel],
    effect: EffectGBM,
    train: Arms,
    valid: Arms,
    control: str,
    actions: tuple[str, ...],
) -> UpliftModel:
    """X-learner on top of the T-learner's outcome models."""
    effects: dict[str, list[tuple[GBMModel, float]]] = {}
    mu_c = outcomes[control]
    for a in actions:
        mu_a = outcomes[a]
        g = train.share(a) / (train.share(a) + train.share(control))
        parts = []
        # tau_1 on the treated (y - mu_control), tau_0 on the controls (mu_a - y), weighted 1 - g and g
        for arm, weight, model, sign in ((a, 1.0 - g, mu_c, 1.0), (control, g, mu_a, -1.0)):
            tr, va = train.where(train.arm(arm)), valid.where(valid.arm(arm))
            target_tr = sign * (tr.y - model.predict(tr.X))
            target_va = sign * (va.y - model.predict(va.X))
            m = clone(effect).fit(tr.X, target_tr, eval_set=(va.X, target_va))
            parts.append((m, float(weight)))
        effects[a] = parts
    return UpliftModel("x", control, actions, list(train.X.columns), dict(outcomes), effects)


def dr_pseudo_outcome(
    mu: np.ndarray, action: np.ndarray, y: np.ndarray, prob: np.ndarray, arms: tuple[str, ...], a: str
) -> np.ndarray:
    """``mu_a - mu_c + 1[A=a] (y - mu_a) / p - 1[A=c] (y - mu_c) / p`` (``mu`` columns in ``arms``
    order, control first; ``p`` the logged probability of the logged action)."""
    k = arms.index(a)
    treated, ctrl = (action == a), (action == arms[0])
    return (
        mu[:, k]
        - mu[:, 0]
        + np.where(treated, (y - mu[:, k]) / prob, 0.0)
        - np.where(ctrl, (y - mu[:, 0]) / prob, 0.0)
    )


def fold_of(groups: np.ndarray, folds: int) -> np.ndarray:
    """A stable fold per group (customer), so one customer's rows share a fold."""
    return np.array([zlib.crc32(str(g).encode()) % folds for g in groups], dtype=np.int64)


def fit_dr(
    outcomes: dict[str, GBMModel],
    base: GBMModel,
    effect: EffectGBM,
    train: Arms,
    valid: Arms,
    control: str,
    actions: tuple[str, ...],
    folds: int = 2,
) -> UpliftModel:
    """DR-learner: cross-fitted outcome models, doubly robust pseudo-outcomes, one effect model per action."""
    arms = (control, *actions)
    groups = train.group if train.group is not None else np.arange(len(train.y))
    fold = fold_of(groups, folds)
    mu_tr = np.zeros((len(train.y), len(arms)))
    for k in range(folds):
        held = fold == k
        fitted = outcome_models(base, train.where(~held), valid, arms)
        mu_tr[held] = np.column_stack([fitted[a].predict(train.X[held]) for a in arms])
    mu_va = np.column_stack([outcomes[a].predict(valid.X) for a in arms])
    effects: dict[str, list[tuple[GBMModel, float]]] = {}
    for a in actions:
        phi_tr = dr_pseudo_outcome(mu_tr, train.action, train.y, train.prob, arms, a)
        phi_va = dr_pseudo_outcome(mu_va, valid.action, valid.y, valid.prob, arms, a)
        effects[a] = [(clone(effect).fit(train.X, phi_tr, eval_set=(valid.X, phi_va)), 1.0)]
    return UpliftModel("dr", control, actions, list(train.X.columns), dict(outcomes), effects)


def fit_learners(
    learners: tuple[str, ...],
    base: GBMModel,
    train: Arms,
    valid: Arms,
    control: str,
    actions: tuple[str, ...],
    effect_params: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, UpliftModel]:
    """Fit each learner in ``learners``; T, X and DR share the per-arm outcome models."""
    unknown = sorted(set(learners) - set(LEARNERS))
    if unknown:
        raise ValueError(f"unknown learners {unknown}; choose from {', '.join(LEARNERS)}")
    effect = EffectGBM(
        task="regression",
        params={**EFFECT_PARAMS, **(effect_params or {})},
        max_rounds=base.max_rounds,
        early_stopping_rounds=base.early_stopping_rounds,
        calibrate=False,
        num_threads=base.num_threads,
        seed=base.seed,
    )
    features = list(train.X.columns)
    out: dict[str, UpliftModel] = {}
    outcomes: dict[str, GBMModel] | None = None
    parts: dict[str, UpliftModel] = {}  # X and DR, also when only the ensemble is asked for
    for name in learners:
        if progress:
            progress(f"{name}-learner")
        if name == "s":
            out[name] = fit_s(base, train, valid, control, actions)
            continue
        if outcomes is None:
            outcomes = outcome_models(base, train, valid, (control, *actions))
        if name == "t":
            out[name] = fit_t(outcomes, features, control, actions)
        for kind in {"x": ("x",), "dr": ("dr",), "ens": ("x", "dr")}.get(name, ()):
            if kind not in parts:
                fit = fit_x if kind == "x" else fit_dr
                args = (outcomes, effect) if kind == "x" else (outcomes, base, effect)
                parts[kind] = fit(*args, train, valid, control, actions)
        if name in ("x", "dr"):
            out[name] = parts[name]
        elif name == "ens":
            out[name] = ensemble([parts["x"], parts["dr"]])
    return out


def ensemble(models: list[UpliftModel]) -> UpliftModel:
    """The mean of effect-based learners' uplifts (one model whose effect parts are all theirs, reweighted)."""
    first = models[0]
    effects = {
        a: [(m, w / len(models)) for model in models for m, w in model.effects[a]] for a in first.actions
    }
    return UpliftModel("ens", first.control, first.actions, first.features, dict(first.outcome), effects)
