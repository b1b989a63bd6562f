"""The next-best-action scoring runtime: a registered uplift model, loaded by alias, picks each
customer's action with its expected incremental value net of cost, the ranked alternatives and the
reasons.

Uplift is learned on the number of orders in the response window (less noisy than revenue: the
order value's spread is left out) and turned into money by a model of the customer's expected revenue
per order: ``revenue uplift = orders uplift x value per order``.

Real-time serving and batch scoring both call :meth:`NBAModel.score` on a frame of ``nba_v1``
features; it assumes neither. A bundle holds the uplift learner's LightGBM model texts and JSON
(``uplift.json``) and ``model.json`` (model, FeatureService, the costs it was evaluated with,
campaigns). Costs come from the settings the model is loaded with (one source of truth), so a
changed cost changes the choice without retraining.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from training import policy
from training.config import ActionCost
from training.estimator import GBMModel
from training.reasons import top_reasons, top_reasons_json
from training.specs import NBA, ModelSpec
from training.uplift import UpliftModel

if TYPE_CHECKING:
    from training.config import TrainingSettings

MODEL_FILE = "model.json"
KEY = "customer_id"
#: Sub-folder of the bundle holding the revenue-per-order model.
VALUE_DIR = "value_per_order"
#: Output columns of :meth:`NBAModel.score` (besides ``customer_id``).
ACTION_COLUMN = "next_best_action"
VALUE_COLUMN = NBA.score_column


@dataclass
class NBAModel:
    """An uplift model plus the action costs and threshold that turn uplifts into a choice."""

    uplift: UpliftModel  # effects on the number of orders in the window
    value: GBMModel  # expected revenue per order
    costs: Mapping[str, ActionCost]
    min_value: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    spec: ModelSpec = NBA
    #: How reasons attribute the uplift to features (``training.attribution``).
    reasons_method: str = "tree_shap"

    @property
    def service(self) -> str:
        return self.spec.service

    @property
    def features(self) -> list[str]:
        return list(self.uplift.features)

    @property
    def actions(self) -> tuple[str, ...]:
        """Every action, the control first."""
        return self.uplift.all_actions

    # --- persistence ------------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        self.uplift.save(directory)
        self.value.save(directory / VALUE_DIR)
        meta = {
            "model": self.spec.name,
            "service": self.spec.service,
            "learner": self.uplift.learner,
            "costs": {a: c.model_dump() for a, c in self.costs.items()},
            "min_value": self.min_value,
            **self.info,
        }
        (directory / MODEL_FILE).write_text(json.dumps(meta, indent=1, default=str))
        return directory

    @classmethod
    def from_bundle(
        cls,
        directory: Path,
        version: str | None = None,
        costs: Mapping[str, ActionCost] | None = None,
        min_value: float | None = None,
    ) -> NBAModel:
        """A saved bundle; costs and threshold from the bundle unless given."""
        meta = json.loads((Path(directory) / MODEL_FILE).read_text())
        if meta.get("model") != NBA.name or meta.get("service") != NBA.service:
            raise ValueError(f"{directory} is not a next-best-action bundle on {NBA.service}")
        saved = {a: ActionCost(**c) for a, c in meta.get("costs", {}).items()}
        return cls(
            UpliftModel.load(directory),
            GBMModel.load(Path(directory) / VALUE_DIR),
            dict(costs) if costs is not None else saved,
            float(meta.get("min_value", 0.0) if min_value is None else min_value),
            meta,
            version,
        )

    @classmethod
    def load(cls, settings: TrainingSettings, ref: str = "champion") -> NBAModel:
        """The registered ``cip-nba`` at alias (default ``champion``) or version ``ref``, with the
        settings' action costs and threshold."""
        from training.registry import bundle_path

        path, mv = bundle_path(settings, NBA.name, ref)
        cfg = settings.training.nba
        model = cls.from_bundle(path, version=str(mv.version), costs=cfg.costs, min_value=cfg.min_value)
        model.reasons_method = settings.training.reasons_method
        if settings.training.compiled_trees:
            for est in model.estimators():
                est.use_compiled(settings.models_dir / "compiled", settings.training.num_threads)
        return model

    def estimators(self) -> list[GBMModel]:
        """Every LightGBM model of the bundle: outcomes, effects and the revenue per order."""
        effects = [m for per in self.uplift.effects.values() for m, _ in per]
        return [*self.uplift.outcome.values(), *effects, self.value]

    # --- scoring ----------------------------------------------------------------------------------
    def revenue(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Expected window revenue under the control ``(n,)`` and each action's revenue uplift ``(n, K)``."""
        baseline, uplift = self.uplift.predict(frame)
        per_order = self.value.predict(frame)
        return baseline * per_order, uplift * per_order[:, None]

    def values(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected incremental value net of cost of every action (:attr:`actions` order), ``(n, 1 + K)``."""
        baseline, uplift = self.revenue(frame)
        return policy.net_values(uplift, baseline, self.uplift.actions, self.uplift.control, self.costs)

    def choose(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Chosen action column per row, and the value matrix."""
        values = self.values(frame)
        return policy.choose(values, self.min_value), values

    def score(
        self,
        frame: pd.DataFrame,
        reasons: int | None = None,
        alternatives: bool = True,
        reasons_as: str = "records",
    ) -> pd.DataFrame:
        """Per row: ``customer_id``, ``next_best_action``, ``nba_value`` (expected incremental revenue
        net of cost, base currency), ``alternatives`` (the other actions as ``{action, value}``, best
        first; left out with ``alternatives=False``) and ``reasons`` (the features behind the uplift
        of the chosen action — of the best offer when the choice is the control, i.e. why it is not
        worth sending), as records or, with ``reasons_as="json"``, their compact JSON text.

        ``frame`` holds the ``nba_v1`` features (extra columns are ignored; ``customer_id`` is kept).
        """
        rows = frame.reset_index(drop=True)
        out = self.score_inputs(self._matrix(rows), rows, reasons, alternatives, reasons_as)
        if KEY in rows.columns:
            out = {KEY: rows[KEY].to_numpy(), **out}
        return pd.DataFrame(out, index=rows.index)

    def score_inputs(
        self,
        X: pd.DataFrame | np.ndarray,
        rows: pd.DataFrame,
        reasons: int | None = None,
        alternatives: bool = True,
        reasons_as: str = "records",
    ) -> dict[str, Any]:
        """:meth:`score`'s columns (without ``customer_id``) from the models' input ``X`` — a float
        matrix in :attr:`features` order when :attr:`matrix_inputs`, else the frame — and ``rows``
        (the feature values the reasons quote, index 0..n-1)."""
        k = int(self.info.get("reasons", 3) if reasons is None else reasons)
        chosen, values = self.choose(X)
        names = np.array(self.actions, dtype=object)
        out: dict[str, Any] = {
            ACTION_COLUMN: names[chosen],
            VALUE_COLUMN: np.round(values[np.arange(len(rows)), chosen], 4),
        }
        if alternatives:
            out["alternatives"] = policy.alternatives(values, self.actions, chosen)
        if k > 0:
            explain = top_reasons_json if reasons_as == "json" else top_reasons
            out["reasons"] = self._reasons(rows, X, values, chosen, k, explain)
        return out

    @property
    def matrix_inputs(self) -> bool:
        """Whether every model of the bundle reads the same numeric features, in :attr:`features`
        order, so that one float matrix of them serves all (no categorical inputs, no S-learner)."""
        models = self.estimators()
        first = models[0]
        return (
            self.uplift.learner != "s"
            and all(list(m.feature_names_) == self.features and not m.categories_ for m in models)
            and list(first.feature_names_) == self.features
        )

    def _matrix(self, rows: pd.DataFrame) -> pd.DataFrame | np.ndarray:
        """The one float matrix every model of the bundle reads, when they share their inputs (so
        it is built once); otherwise the frame."""
        X = self.uplift.inputs(rows)
        if isinstance(X, np.ndarray) and not (
            list(self.value.feature_names_) == list(self.uplift.outcome[self.uplift.control].feature_names_)
            and self.value.categories_ == self.uplift.outcome[self.uplift.control].categories_
        ):
            return rows
        return X

    def _reasons(
        self,
        rows: pd.DataFrame,
        X: pd.DataFrame | np.ndarray,
        values: np.ndarray,
        chosen: np.ndarray,
        k: int,
        explain: Any = top_reasons,
    ) -> list[Any]:
        explained = np.where(chosen > 0, chosen, 1 + np.argmax(values[:, 1:], axis=1))
        out: list[Any] = [None] * len(rows)
        groups = np.unique(explained)
        for col in groups:
            idx = np.flatnonzero(explained == col) if len(groups) > 1 else np.arange(len(rows))
            sub = rows.iloc[idx] if len(groups) > 1 else rows
            inputs = X[idx] if isinstance(X, np.ndarray) else sub
            contrib = self.uplift.contributions(inputs, self.actions[col], self.reasons_method)
            for i, r in zip(idx, explain(contrib, self.features, sub, k), strict=True):
                out[i] = r
        return out
