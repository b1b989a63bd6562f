"""The MLflow pyfunc flavour of a CIP model (so ``mlflow.pyfunc.load_model`` works too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd


class CipPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a frame of the model's features; returns the score column (no reasons). A next-best-action
    model returns the chosen action and its value."""

    def load_context(self, context: Any) -> None:
        bundle = Path(context.artifacts["bundle"])
        meta = json.loads((bundle / "model.json").read_text())
        if meta.get("model") == "nba":
            from training.nba_runtime import ACTION_COLUMN, VALUE_COLUMN, NBAModel

            self.model = NBAModel.from_bundle(bundle)
            self.columns = [ACTION_COLUMN, VALUE_COLUMN]
        else:
            from training.runtime import ScoringModel

            self.model = ScoringModel.from_bundle(bundle)
            self.columns = [self.model.spec.score_column]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        scored = self.model.score(model_input, reasons=0)
        return scored[self.columns]
