"""The MLflow pyfunc flavour of a CIP model (so ``mlflow.pyfunc.load_model`` works too)."""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import pandas as pd


class CipPyfunc(mlflow.pyfunc.PythonModel):
    """Scores a frame of the model's features; returns the score column (no reasons)."""

    def load_context(self, context: Any) -> None:
        from training.runtime import ScoringModel

        self.model = ScoringModel.from_bundle(context.artifacts["bundle"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        scored = self.model.score(model_input, reasons=0)
        return scored[[self.model.spec.score_column]]
