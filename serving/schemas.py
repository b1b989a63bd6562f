"""Request and response models of the service's API (clients and tests import them too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


# --- POST /score ------------------------------------------------------------------------------------
class ScoreRequest(BaseModel):
    """One or many customers, scored as one batch."""

    model_config = ConfigDict(extra="forbid")

    customer_ids: list[str] = Field(min_length=1, description="Customers to score (scored as one batch).")
    models: list[str] | None = Field(None, description="Models to run (default: every loaded champion).")
    reasons: int | None = Field(None, ge=0, le=20, description="Reason codes per model (default: settings).")
    as_of: datetime | None = Field(
        None, description="Request time of the request-time features (default: now). Timezone required."
    )
    include_features: bool = Field(
        False, description="Return the feature values the scores were computed from."
    )


class Reason(BaseModel):
    feature: str
    value: Any = None
    contribution: float
    description: str


class Alternative(BaseModel):
    action: str
    value: float | None = None


class NextBestAction(BaseModel):
    action: str
    expected_value: float | None = Field(None, description="Expected incremental value of the action.")
    alternatives: list[Alternative] = Field(default_factory=list)


class Freshness(BaseModel):
    snapshot_ts: datetime | None = Field(
        None, description="Batch snapshot the customer's batch features come from."
    )
    last_event_ts: datetime | None = Field(None, description="Latest live event pushed for the customer.")
    request_ts: datetime = Field(description="Clock of the request-time features (days_since_*).")


class CustomerScore(BaseModel):
    customer_id: str
    provisional: bool = Field(
        False, description="Known only from live events (not yet resolved by `cip identity run`)."
    )
    churn_probability: float | None = None
    clv_365d: float | None = None
    propensity: dict[str, float | None] = Field(default_factory=dict, description="Category -> probability.")
    next_best_action: NextBestAction | None = None
    segments: list[str] = Field(default_factory=list)
    reasons: dict[str, list[Reason]] = Field(default_factory=dict, description="Model -> top reasons.")
    freshness: Freshness
    features: dict[str, Any] | None = None


class ScoreResponse(BaseModel):
    model_versions: dict[str, str]
    segments_run: str | None = Field(
        None, description="Batch run whose quantile thresholds the segments use."
    )
    segments_skipped: list[str] = Field(
        default_factory=list,
        description="Segments not evaluated: their quantile thresholds are not computed yet.",
    )
    customers: list[CustomerScore]


# --- POST /events -----------------------------------------------------------------------------------
class SegmentEvent(BaseModel):
    """A Segment-spec ``track``/``identify``/``page``/``alias`` call (the fields CIP reads are
    checked by the events contract, ``cip.contracts.EVENTS``; other fields are kept as sent)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    messageId: str | None = None
    type: str | None = None
    timestamp: str | None = None
    anonymousId: str | None = None
    userId: str | None = None
    event: str | None = None
    name: str | None = None
    previousId: str | None = None
    context: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


class EventsRequest(SegmentEvent):
    """One Segment event, or Segment's batch shape ``{"batch": [event, ...]}``."""

    batch: list[SegmentEvent] | None = Field(None, min_length=1, max_length=1000)

    def payloads(self) -> list[dict[str, Any]]:
        """The events as sent (fields CIP does not read are kept)."""
        if self.batch is not None:
            return [e.model_dump(exclude_unset=True) for e in self.batch]
        return [self.model_dump(exclude_unset=True, exclude={"batch"})]


class Firing(BaseModel):
    rule: str
    customer_id: str
    key: str
    fired_at: datetime


class EventResult(BaseModel):
    message_id: str
    customer_id: str
    provisional: bool
    linked: list[str] = Field(
        default_factory=list, description="Identifiers linked to the customer by this event."
    )
    duplicate: bool = Field(False, description="The messageId was accepted before; nothing was done again.")
    triggers: list[Firing] = Field(default_factory=list)


class EventsResponse(BaseModel):
    accepted: int
    results: list[EventResult]


# --- GET /customers/{id} ----------------------------------------------------------------------------
class Identity(BaseModel):
    type: str
    value: str | None = Field(None, description="Hidden (null) for roles that may not see PII.")
    source: Literal["identity_map", "live"] = "identity_map"
    first_seen: datetime | None = None


class CustomerProfile(BaseModel):
    customer_id: str
    provisional: bool = False
    pii_visible: bool
    golden_record: dict[str, Any] | None = None
    identities: list[Identity] = Field(default_factory=list)
    traits: dict[str, Any] | None = None
    consent: dict[str, Any] | None = None
    batch_scores: dict[str, Any] | None = Field(
        None, description="Latest `cip score` row (lake table `scores`)."
    )
    live_score: CustomerScore | None = None


class ErrorBody(BaseModel):
    error: str
    fix: str | None = None
    field: str | None = None
