"""The models CIP trains, declared once: task, FeatureService, label window, gate metric, registry name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from features.catalog import RESPONSE_WINDOW_DAYS

Task = Literal["binary", "regression"]


@dataclass(frozen=True)
class ModelSpec:
    """One model: what it predicts, from which FeatureService, and how it is judged."""

    name: str
    task: Task
    service: str
    horizon_days: int
    score_column: str
    description: str
    #: Gate metric on the held-out cutoff, and whether larger is better.
    metric: str
    greater_is_better: bool
    #: Registered model name in MLflow.
    registered: str = ""
    #: Features the score may only rise (+1) or fall (-1) with.
    monotone: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if not self.registered:
            object.__setattr__(self, "registered", f"cip-{self.name}")


#: Customers "active" for churn: an order in this many days before the cutoff.
ACTIVE_DAYS = 365

CHURN = ModelSpec(
    "churn",
    "binary",
    "churn_v1",
    90,
    "churn_probability",
    "P(no purchase in the next 90 days) for customers who bought in the last 365 days.",
    metric="auc",
    greater_is_better=True,
    monotone=(("recency_days", 1), ("days_since_last_purchase", 1)),
)
CLV = ModelSpec(
    "clv",
    "regression",
    "clv_v1",
    365,
    "clv_365d",
    "Expected spend (base currency) in the next 365 days.",
    metric="rmse",
    greater_is_better=False,
)
PROPENSITY = ModelSpec(
    "propensity",
    "binary",
    "propensity_v1",
    30,
    "propensity",
    "P(a purchase in a category within the next 30 days); one model, the category is a feature.",
    metric="auc",
    greater_is_better=True,
)

#: Next-best-action: one uplift model per offer against the control, trained on the randomized campaign
#: log (``training.nba``), scored by ``training.nba_runtime.NBAModel``. Its gate metric is the doubly
#: robust off-policy estimate of its policy's incremental value per exposure on held-out campaigns.
NBA = ModelSpec(
    "nba",
    "regression",
    "nba_v1",
    RESPONSE_WINDOW_DAYS,
    "nba_value",
    "Next-best-action: the offer with the highest expected incremental 14-day revenue net of its cost.",
    metric="dr_value",
    greater_is_better=True,
)

#: The per-row models trained by ``training.train`` from labels at cutoffs.
SPECS: dict[str, ModelSpec] = {s.name: s for s in (CHURN, CLV, PROPENSITY)}
#: Every model CIP registers (``cip models list`` shows them all).
MODELS: dict[str, ModelSpec] = {**SPECS, NBA.name: NBA}


def spec(name: str) -> ModelSpec:
    """The spec called ``name``; a clear error naming the known ones otherwise."""
    from cip.errors import CipError

    try:
        return MODELS[name]
    except KeyError:
        raise CipError(f"unknown model '{name}'", fix=f"choose one of {', '.join(MODELS)}") from None
