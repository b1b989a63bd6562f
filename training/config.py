"""Knobs of model training (``settings.training``): cutoffs, tuning budget, tracking, reasons."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cip.contracts import OFFERS
from features.config import FeatureSettings


class ActionCost(BaseModel):
    """What sending one action costs the business, in base currency.

    ``share_of_revenue`` is the part of the customer's revenue in the response window that the action
    gives away: a discount is redeemed on every order of the window, including the orders that would
    have happened anyway; points and free shipping are liabilities in proportion to the order value.
    """

    model_config = ConfigDict(extra="forbid")

    per_send: float = Field(0.0, ge=0.0, description="Fixed cost of one exposure (base currency).")
    share_of_revenue: float = Field(
        0.0, ge=0.0, lt=1.0, description="Share of the response window's revenue the action costs."
    )


def _default_costs() -> dict[str, ActionCost]:
    return {
        "no_offer": ActionCost(),
        "discount_10": ActionCost(per_send=0.02, share_of_revenue=0.10),
        "free_shipping": ActionCost(per_send=0.02, share_of_revenue=0.05),
        "double_points": ActionCost(per_send=0.02, share_of_revenue=0.02),
        "new_arrivals": ActionCost(per_send=0.02),
    }


class NbaConfig(BaseModel):
    """Next-best-action: the control action, action costs, held-out campaigns and the policy threshold."""

    model_config = ConfigDict(extra="forbid")

    control: str = Field("no_offer", description="The action every uplift is measured against.")
    costs: dict[str, ActionCost] = Field(
        default_factory=_default_costs,
        description="Cost of each action (an action without an entry costs nothing).",
    )
    valid_campaigns: int = Field(
        2, ge=1, description="Campaigns (before the test ones) that choose the uplift learner by Qini."
    )
    test_campaigns: int = Field(
        2, ge=1, description="Latest matured campaigns held out for off-policy evaluation and the gate."
    )
    learners: tuple[str, ...] = Field(
        ("s", "t", "x", "dr", "ens"),
        min_length=1,
        description="Uplift learners tried (s, t, x, dr; ens = mean of x and dr).",
    )
    min_value: float = Field(
        0.0, description="Send an offer only when its expected incremental value net of cost exceeds this."
    )
    confidence: float = Field(
        0.95, gt=0.5, lt=1.0, description="Level of the off-policy estimates' intervals."
    )

    @model_validator(mode="after")
    def _known_actions(self) -> NbaConfig:
        unknown = sorted({self.control, *self.costs} - set(OFFERS))
        if unknown:
            raise ValueError(f"unknown action(s) {unknown}; the offers are {', '.join(OFFERS)}")
        bad = sorted(set(self.learners) - {"s", "t", "x", "dr", "ens"})
        if bad:
            raise ValueError(f"unknown learner(s) {bad}; choose from s, t, x, dr, ens")
        return self

    def cost(self, action: str) -> ActionCost:
        return self.costs.get(action, ActionCost())


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
    reasons_method: Literal["tree_shap", "path"] = Field(
        "tree_shap",
        description="How batch scoring and serving attribute a score to features: 'tree_shap' "
        "(exact Shapley values, LightGBM pred_contrib) or 'path' (Saabas path attribution: about "
        "100x cheaper, top reasons mostly the same; see training/attribution.py).",
    )
    compiled_trees: bool = Field(
        False,
        description="Batch scoring predicts with lleaves-compiled trees (several times faster on "
        "many rows; each model is compiled once, in seconds to minutes, and cached under "
        "<data>/models/compiled). Scores match LightGBM's to about 1e-15.",
    )
    nba: NbaConfig = Field(default_factory=NbaConfig, description="Next-best-action (uplift) model.")
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
