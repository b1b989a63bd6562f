"""Every champion at once: one call turns customers' feature values into all scores and reasons.

Batch scoring (``cip score``) and real-time serving both call :meth:`Scorer.score` on a frame of
feature values, so the same values give the same numbers in both. A customer's scores depend on
that customer's values alone. The work per call is array work: each model reads one float matrix
built from the frame (the per-category model repeats it once per category).

When ``cip-nba`` has a champion, the next-best-action model (:class:`~training.nba_runtime.NBAModel`,
with the settings' action costs) is loaded too: the wide result gets ``next_best_action`` and
``nba_value``, :attr:`ScoreResult.reasons` ``["nba"]`` its reasons and
:attr:`ScoreResult.alternatives` the other actions ranked, exactly as ``NBAModel.score`` returns them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cip.errors import CipError
from training.datasets import CATEGORY
from training.nba_runtime import ACTION_COLUMN, VALUE_COLUMN, NBAModel
from training.reasons import top_reasons, top_reasons_json
from training.runtime import KEY, ScoringModel
from training.specs import NBA, SPECS

if TYPE_CHECKING:
    from training.config import TrainingSettings


def propensity_column(category: str) -> str:
    """The wide column holding the propensity to buy in ``category``."""
    return f"propensity_{category}"


@dataclass
class ScoreResult:
    """Scores of a batch of customers, in input order."""

    #: customer_id and one column per score (churn_probability, clv_365d, propensity_<category>…).
    wide: pd.DataFrame
    #: Model name → per customer, the top reasons ({feature, value, contribution, description});
    #: with ``Scorer.score(reasons_as="json")`` their compact JSON text.
    reasons: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)
    #: Model name → registered version used.
    versions: dict[str, str] = field(default_factory=dict)
    #: Per customer (input order), the next-best-action model's other actions as ``{action, value}``
    #: (expected incremental value net of cost), best first; empty when no ``nba`` model is loaded.
    alternatives: list[list[dict[str, Any]]] = field(default_factory=list)


#: A loaded champion: a per-row model, or the next-best-action model.
Model = ScoringModel | NBAModel


def load_model(settings: TrainingSettings, name: str, ref: str = "champion") -> Model:
    """Model ``name`` at alias or version ``ref`` (``nba`` with the settings' action costs)."""
    if name == NBA.name:
        return NBAModel.load(settings, ref)
    return ScoringModel.load(settings, name, ref)


class Scorer:
    """The champions of every model (or of ``models``), loaded once, scoring frames of features."""

    def __init__(self, models: dict[str, Model]) -> None:
        if not models:
            raise CipError("no model to score with", fix="train them first: `cip train all`")
        self._models = dict(models)
        self._lock = threading.Lock()

    # --- loading ------------------------------------------------------------------------------------
    @classmethod
    def load(cls, settings: TrainingSettings, models: Sequence[str] | None = None) -> Scorer:
        """Each named model's (default: every declared model's, ``nba`` included) ``champion`` from the
        registry.

        Without ``models``, a model that has no champion yet is left out; a named one must exist.
        """
        names = list(models) if models is not None else [*SPECS, NBA.name]
        loaded: dict[str, Model] = {}
        for name in names:
            try:
                loaded[name] = load_model(settings, name)
            except CipError:
                if models is not None:
                    raise
        if not loaded:
            raise CipError(
                "no champion model is registered yet",
                fix="train the models first: `cip train all` (or list what exists: `cip models list`)",
            )
        return cls(loaded)

    def reload_if_changed(self, settings: TrainingSettings) -> bool:
        """Re-resolve every loaded model's ``champion`` alias; swap in new versions atomically.

        Requests in flight keep the models they started with. Returns whether anything changed.
        """
        from training.registry import champion, connect

        client = connect(settings)
        fresh: dict[str, Model] = {}
        for name, model in self._models.items():
            mv = champion(client, model.spec.registered)
            if mv is not None and str(mv.version) != model.version:
                fresh[name] = load_model(settings, name, str(mv.version))
        if not fresh:
            return False
        with self._lock:
            self._models = {**self._models, **fresh}
        return True

    # --- what it reads ------------------------------------------------------------------------------
    @property
    def models(self) -> dict[str, Model]:
        return dict(self._models)

    @property
    def versions(self) -> dict[str, str]:
        return {name: str(m.version) for name, m in self._models.items()}

    @property
    def services(self) -> list[str]:
        return list(dict.fromkeys(m.service for m in self._models.values()))

    @property
    def feature_columns(self) -> list[str]:
        """The union of the loaded models' feature columns (without the category input)."""
        cols = (c for m in self._models.values() for c in m.features if c != CATEGORY)
        return list(dict.fromkeys(cols))

    @property
    def score_columns(self) -> list[str]:
        """The wide result's score columns, in order."""
        out: list[str] = []
        for m in self._models.values():
            if isinstance(m, NBAModel):
                out += [ACTION_COLUMN, VALUE_COLUMN]
            elif CATEGORY in m.features:
                out += [propensity_column(c) for c in _wide_categories(m)]
            else:
                out.append(m.spec.score_column)
        return out

    # --- scoring ------------------------------------------------------------------------------------
    def score(
        self,
        features: pd.DataFrame,
        reasons: int = 3,
        models: Sequence[str] | None = None,
        reasons_as: str = "records",
        alternatives: bool = True,
    ) -> ScoreResult:
        """Every loaded model's scores (and top ``reasons`` per model) for each row of ``features``.

        ``reasons_as="json"`` gives each row's reasons as the compact JSON text of its records
        (what the scores table stores) instead of the records. ``alternatives=False`` leaves out the
        next-best-action model's ranked alternatives (batch scoring does not store them).

        ``features`` holds ``customer_id`` and the models' feature columns (missing values as
        NaN/None); extra columns are ignored, a missing column is an error that names it.
        """
        chosen = (
            self._models if models is None else {n: self._models[n] for n in _known(self._models, models)}
        )
        missing = [
            c for m in chosen.values() for c in m.features if c != CATEGORY and c not in features.columns
        ]
        if missing:
            raise CipError(
                f"the feature frame lacks {', '.join(dict.fromkeys(missing))}",
                fix="read the features of the models' FeatureServices (Scorer.feature_columns)",
            )
        wide = pd.DataFrame({KEY: features[KEY].to_numpy()} if KEY in features.columns else {})
        result = ScoreResult(wide=wide, versions={n: str(m.version) for n, m in chosen.items()})
        for name, model in chosen.items():
            explain = top_reasons_json if reasons_as == "json" else top_reasons
            if isinstance(model, NBAModel):
                self._score_nba(name, model, features, reasons, result, reasons_as, alternatives)
            elif CATEGORY in model.features:
                self._score_per_category(name, model, features, reasons, result, explain)
            else:
                matrix = model.estimator.matrix(features)
                result.wide[model.spec.score_column] = model.estimator.from_raw(
                    model.estimator.raw_score(matrix)
                )
                if reasons > 0:
                    result.reasons[name] = explain(
                        model.estimator.contributions(matrix, model.reasons_method),
                        model.features,
                        features,
                        reasons,
                    )
        return result

    @staticmethod
    def _score_nba(
        name: str,
        model: NBAModel,
        features: pd.DataFrame,
        reasons: int,
        result: ScoreResult,
        reasons_as: str = "records",
        alternatives: bool = True,
    ) -> None:
        """The chosen action and its value, the ranked alternatives and the reasons: ``NBAModel.score``."""
        scored = model.score(features, reasons=reasons, alternatives=alternatives, reasons_as=reasons_as)
        result.wide[ACTION_COLUMN] = scored[ACTION_COLUMN].to_numpy()
        result.wide[VALUE_COLUMN] = scored[VALUE_COLUMN].to_numpy()
        if alternatives:
            result.alternatives = scored["alternatives"].tolist()
        if reasons > 0:
            result.reasons[name] = scored["reasons"].tolist()

    @staticmethod
    def _score_per_category(
        name: str,
        model: ScoringModel,
        features: pd.DataFrame,
        reasons: int,
        result: ScoreResult,
        explain: Any = top_reasons,
    ) -> None:
        """One score per customer and category; reasons explain the customer's top category."""
        cats = _categories(model)
        n, k = len(features), len(cats)
        base = features[[c for c in model.features if c != CATEGORY]]
        est = model.estimator
        if set(est.categories_) == {CATEGORY} and list(est.categories_[CATEGORY]) == cats:
            # the customers' matrix once, its category column set to each category in turn: no
            # customers x categories matrix
            matrix = est.matrix(base.assign(**{CATEGORY: cats[0] if k else None}))
            column = est.feature_names_.index(CATEGORY)
            raw = np.empty((n, k))
            for j in range(k):
                matrix[:, column] = j
                raw[:, j] = est.raw_score(matrix)
            scores = est.from_raw(raw.ravel()).reshape(n, k)
        else:
            matrix = est.matrix(model.expand(base))
            scores = est.from_raw(est.raw_score(matrix)).reshape(n, k)
            column = None
        where = {c: j for j, c in enumerate(cats)}
        for c in _wide_categories(model):  # declared order; a category the model never saw is NaN
            result.wide[propensity_column(c)] = scores[:, where[c]] if c in where else np.nan
        if reasons > 0 and n:
            top = np.argmax(scores, axis=1)
            if column is not None:
                matrix[:, column] = top
                contrib = est.contributions(matrix, model.reasons_method)
            else:
                contrib = est.contributions(matrix[np.arange(n) * k + top], model.reasons_method)
            explained = base.reset_index(drop=True)
            explained[CATEGORY] = np.array(cats, dtype=object)[top]  # the rows explained
            result.reasons[name] = explain(contrib, model.features, explained, reasons)


def _categories(model: ScoringModel) -> list[str]:
    from cip.categories import CATEGORIES

    return list(model.estimator.categories_.get(CATEGORY) or CATEGORIES)


def _wide_categories(model: ScoringModel) -> list[str]:
    """The wide result's categories: the declared ones in their order, then any other the model knows."""
    from cip.categories import CATEGORIES

    return [*CATEGORIES, *(c for c in _categories(model) if c not in CATEGORIES)]


def _known(models: dict[str, Model], names: Sequence[str]) -> list[str]:
    unknown = [n for n in names if n not in models]
    if unknown:
        raise CipError(
            f"no loaded model called {', '.join(unknown)}",
            fix=f"choose from {', '.join(models)}",
        )
    return list(names)
