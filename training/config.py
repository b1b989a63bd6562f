"""Knobs of model training (``settings.training``): cutoffs, tuning budget, tracking, reasons."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from features.config import FeatureSettings


class TrainingConfig(BaseModel):
    """How models are trained, tuned, tracked and explained."""

    model_config = ConfigDict(extra="forbid")

    train_cutoffs: int = Field(
        4, ge=1, description="Cutoffs (before the validation one) whose rows train a model."
    )
    trials: int = Field(20, ge=0, description="Optuna trials per model (0: LightGBM defaults, no tuning).")
    timeout_seconds: float | None = Field(
        None, gt=0, description="Stop tuning a model after this many seconds (None: run every trial)."
    )
    tune_rows: int = Field(
        150_000,
        ge=1000,
        description="Training rows each Optuna trial sees (a random sample; the final fit uses every row).",
    )
    num_threads: int = Field(
        0, ge=0, description="LightGBM threads (0: one per core). Set it when other work shares the cores."
    )
    early_stopping_rounds: int = Field(
        50, ge=1, description="Rounds without validation gain before stopping."
    )
    max_rounds: int = Field(2000, ge=10, description="Upper bound on boosting rounds.")
    reasons: int = Field(3, ge=0, le=20, description="Reason codes returned with each score.")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking server (e.g. http://mlflow:5000). None: a SQLite store in mlruns/.",
    )
    champion_tolerance: float = Field(
        0.0,
        ge=0.0,
        description="A new model becomes champion when it beats the champion by more than this "
        "(in the model's gate metric, on the same held-out rows).",
    )
    min_rows: int = Field(200, ge=10, description="Fewest training rows a model is trained on.")
    segments_file: Path | None = Field(
        None,
        description="YAML file of predictive segments read by batch scoring and serving "
        "(None: the packaged training/segments.yaml).",
    )


class TrainingSettings(FeatureSettings):
    """Settings of the training stage: the feature store's and ``training``."""

    training: TrainingConfig = Field(default_factory=TrainingConfig)
