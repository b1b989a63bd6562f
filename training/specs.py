"""The models CIP trains, declared once: task, FeatureService, label window, gate metric, registry name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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

SPECS: dict[str, ModelSpec] = {s.name: s for s in (CHURN, CLV, PROPENSITY)}


def spec(name: str) -> ModelSpec:
    """The spec called ``name``; a clear error naming the known ones otherwise."""
    from cip.errors import CipError

    try:
        return SPECS[name]
    except KeyError:
        raise CipError(f"unknown model '{name}'", fix=f"choose one of {', '.join(SPECS)}") from None
