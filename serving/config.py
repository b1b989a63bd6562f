"""Knobs of the real-time service (``settings.serving``): address, workers, API keys and roles,
trigger rules, reload cadence and the event log.

API keys are never written in code: set them in ``cip.yaml`` (``serving.api_keys``) or the
environment, e.g. ``CIP_SERVING__API_KEYS='{"s3cr3t-admin": "admin"}'``.
"""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cip.contracts import TRACK_EVENTS
from pipelines.identity.config import IdentitySettings
from pipelines.ingest.config import IngestSettings
from training.config import TrainingSettings

#: Endpoints guarded by a role, as named in ``ServingConfig.permissions``.
ENDPOINTS = ("score", "events", "customers")


class CartAbandonment(BaseModel):
    """Fires when ``start_event`` is not followed by ``cancel_event`` within ``minutes`` (event time).

    One firing per open cart: the key is rule + customer + the cart's first ``start_event`` time.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["cart_abandonment"] = "cart_abandonment"
    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    start_event: str = "Product Added"
    cancel_event: str = "Order Completed"
    minutes: float = Field(30.0, gt=0, description="Minutes without cancel_event after which it fires.")

    @field_validator("start_event", "cancel_event")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in TRACK_EVENTS:
            raise ValueError(f"'{value}' is not a tracked event; choose one of {', '.join(TRACK_EVENTS)}")
        return value


class ScoreThreshold(BaseModel):
    """Fires when a customer's live ``score`` reaches ``threshold`` after an event, at most once per
    customer per ``window_minutes`` (key: rule + customer + window start), and only when the score
    was below it (or never scored live) before."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["score_threshold"] = "score_threshold"
    name: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    score: str = "churn_probability"
    threshold: float = 0.7
    window_minutes: float = Field(1440.0, gt=0)
    events: list[str] = Field(
        default_factory=list,
        description="Events (track names, or page/identify/alias) that check it; empty: every event.",
    )


TriggerRule = Annotated[CartAbandonment | ScoreThreshold, Field(discriminator="kind")]


def default_triggers() -> list[CartAbandonment | ScoreThreshold]:
    return [
        CartAbandonment(name="cart_abandonment", minutes=30),
        ScoreThreshold(name="churn_risk", score="churn_probability", threshold=0.7),
    ]


class ServingConfig(BaseModel):
    """How ``cip serve`` runs."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64, description="Worker processes (each loads models and stores once).")
    api_key_header: str = "X-API-Key"
    api_keys: dict[str, str] = Field(
        default_factory=dict,
        description="API key -> role. Set in cip.yaml or CIP_SERVING__API_KEYS (JSON); never in code.",
    )
    permissions: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "score": ["scorer", "admin"],
            "events": ["events", "admin"],
            "customers": ["scorer", "admin"],
        },
        description="Endpoint (score, events, customers) -> roles allowed to call it.",
    )
    pii_roles: list[str] = Field(
        default_factory=lambda: ["admin"], description="Roles that see PII in GET /customers/{id}."
    )
    max_customers_per_request: int = Field(1000, ge=1)
    shap_threads: int | None = Field(
        None,
        ge=1,
        le=16,
        description="Threads a request may use for reason codes (TreeSHAP of large models split by tree range). "
        "Default: the cores per worker (cores // workers, at least 1), so that under load no worker splits "
        "its TreeSHAP onto a core another worker is using (2 workers on 2 cores: 264 -> 288 req/s).",
    )

    @property
    def reason_threads(self) -> int:
        """``shap_threads``, or the cores per worker."""
        return self.shap_threads or max(1, (os.cpu_count() or 1) // self.workers)

    reload_interval_seconds: float = Field(
        10.0,
        gt=0,
        description="How often a worker checks MLflow for new champions and the lake for a new identity map.",
    )
    trigger_sweep_seconds: float = Field(
        1.0, gt=0, description="How often due cart-abandonment timers are fired."
    )
    triggers: list[TriggerRule] = Field(default_factory=default_triggers)
    segment_max_events: int = Field(
        10_000,
        ge=1,
        description="Events per event-log segment before it is closed (and `cip ingest` can read it).",
    )
    segment_max_seconds: float = Field(
        300.0, gt=0, description="Age at which an event-log segment is closed."
    )
    access_log: bool = Field(False, description="BentoML's per-request access log (costs latency).")

    @model_validator(mode="after")
    def _check(self) -> ServingConfig:
        unknown = set(self.permissions) - set(ENDPOINTS)
        if unknown:
            raise ValueError(
                f"permissions: unknown endpoint {', '.join(sorted(unknown))}; use {', '.join(ENDPOINTS)}"
            )
        names = [t.name for t in self.triggers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"triggers: rule name {', '.join(dupes)} declared twice")
        return self


class ServingSettings(TrainingSettings, IdentitySettings, IngestSettings):
    """Settings of the serving stage: the training stage's, ``identity`` (customer ids of live
    identifiers), ``ingest`` (the events contract's tolerances) and ``serving``."""

    serving: ServingConfig = Field(default_factory=ServingConfig)
