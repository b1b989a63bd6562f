"""The scoring runtime: a registered model, loaded by alias, scores a feature frame with reasons.

Real-time serving and batch scoring both call :meth:`ScoringModel.score`; it assumes neither. A
bundle holds the LightGBM model text, the estimator's JSON (feature order, category map,
calibration) and ``model.json`` (which model, which FeatureService, horizon, cutoffs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cip.categories import CATEGORIES
from training.datasets import CATEGORY
from training.estimator import GBMModel
from training.reasons import top_reasons
from training.specs import ModelSpec, spec

if TYPE_CHECKING:
    from training.config import TrainingSettings

MODEL_FILE = "model.json"
KEY = "customer_id"


@dataclass
class ScoringModel:
    """A trained model ready to score: which FeatureService it reads, and how to explain itself."""

    spec: ModelSpec
    estimator: GBMModel
    info: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    #: How reasons attribute a score to features (``training.attribution``).
    reasons_method: str = "tree_shap"

    @property
    def service(self) -> str:
        return self.spec.service

    @property
    def features(self) -> list[str]:
        return list(self.estimator.feature_names_)

    # --- persistence --------------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        self.estimator.save(directory)
        meta = {"model": self.spec.name, "service": self.spec.service, **self.info}
        (directory / MODEL_FILE).write_text(json.dumps(meta, indent=1, default=str))
        return directory

    @classmethod
    def from_bundle(cls, directory: Path, version: str | None = None) -> ScoringModel:
        meta = json.loads((Path(directory) / MODEL_FILE).read_text())
        s = spec(meta["model"])
        if meta["service"] != s.service:
            raise ValueError(f"bundle reads {meta['service']}, but {s.name} is declared on {s.service}")
        return cls(s, GBMModel.load(directory), meta, version)

    @classmethod
    def load(cls, settings: TrainingSettings, name: str, ref: str = "champion") -> ScoringModel:
        """The registered model ``name`` at alias (default ``champion``) or version ``ref``."""
        from training.registry import bundle_path

        path, mv = bundle_path(settings, name, ref)
        model = cls.from_bundle(path, version=str(mv.version))
        model.reasons_method = settings.training.reasons_method
        if settings.training.compiled_trees:
            model.estimator.use_compiled(settings.models_dir / "compiled", settings.training.num_threads)
        return model

    # --- scoring ------------------------------------------------------------------------------------
    def expand(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Rows to score: per customer, or per customer and category for a per-category model."""
        if CATEGORY not in self.features or CATEGORY in frame.columns:
            return frame
        cats = self.estimator.categories_.get(CATEGORY) or list(CATEGORIES)
        out = frame.loc[frame.index.repeat(len(cats))].reset_index(drop=True)
        out[CATEGORY] = np.tile(np.array(cats, dtype=object), len(frame))
        return out

    def score(self, frame: pd.DataFrame, reasons: int | None = None) -> pd.DataFrame:
        """Scores (``spec.score_column``), raw scores and the top ``reasons`` per row.

        ``frame`` holds the model's features (extra columns are ignored; ``customer_id`` is kept).
        """
        rows = self.expand(frame)
        k = int(self.info.get("reasons", 3) if reasons is None else reasons)
        out = pd.DataFrame(index=rows.index)
        for col in (KEY, CATEGORY):
            if col in rows.columns and (col == KEY or CATEGORY in self.features):
                out[col] = rows[col].to_numpy()
        out[self.spec.score_column] = self.estimator.predict(rows)
        if k > 0:
            contrib = self.estimator.contributions(rows, self.reasons_method)
            out["raw_score"] = contrib.sum(axis=1)
            out["reasons"] = top_reasons(contrib, self.features, rows, k)
        else:
            out["raw_score"] = self.estimator.raw_score(rows)
        return out.reset_index(drop=True)
