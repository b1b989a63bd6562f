"""Typed survivorship rules for the golden record (declared once, validated, loadable from YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cip.settings import CoreSettings

Strategy = Literal["most_recent", "most_frequent", "source_priority", "non_null_first"]

#: Fields a golden record can carry; each comes from CRM rows and/or identify traits.
PROFILE_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "phone_e164",
    "birth_date",
    "street",
    "city",
    "postcode",
    "country",
    "loyalty_id",
    "consent_email",
    "consent_sms",
    "consent_profiling",
)


class SurvivorshipRule(BaseModel):
    """How one field (or a group of fields that must come from the same record) survives.

    * ``most_recent``: the non-null value seen last;
    * ``most_frequent``: the value seen on most records (ties → most recent);
    * ``source_priority``: the first source in ``priority`` that has a value (ties → most recent);
    * ``non_null_first``: the earliest non-null value (first value ever given).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: tuple[str, ...] = Field(min_length=1)
    strategy: Strategy
    priority: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> SurvivorshipRule:
        unknown = [f for f in self.fields if f not in PROFILE_FIELDS]
        if unknown:
            raise ValueError(f"unknown profile field(s) {unknown}; choose from {list(PROFILE_FIELDS)}")
        if self.strategy == "source_priority" and not self.priority:
            raise ValueError("strategy 'source_priority' needs a non-empty 'priority' list of sources")
        return self


def _default_rules() -> list[SurvivorshipRule]:
    return [
        SurvivorshipRule(fields=("first_name",), strategy="most_frequent"),
        SurvivorshipRule(fields=("last_name",), strategy="most_frequent"),
        SurvivorshipRule(fields=("email",), strategy="most_recent"),
        SurvivorshipRule(fields=("phone_e164",), strategy="most_recent"),
        SurvivorshipRule(fields=("birth_date",), strategy="most_frequent"),
        # an address survives whole, never stitched together from different records
        SurvivorshipRule(fields=("street", "city", "postcode", "country"), strategy="most_recent"),
        SurvivorshipRule(
            fields=("loyalty_id",), strategy="source_priority", priority=("crm:store", "crm:web", "crm:app")
        ),
        SurvivorshipRule(fields=("consent_email",), strategy="most_recent"),
        SurvivorshipRule(fields=("consent_sms",), strategy="most_recent"),
        SurvivorshipRule(fields=("consent_profiling",), strategy="most_recent"),
    ]


class ProfileConfig(BaseModel):
    """Survivorship rules plus trait options."""

    model_config = ConfigDict(extra="forbid")

    survivorship: list[SurvivorshipRule] = Field(default_factory=_default_rules)
    rfm_bins: int = Field(5, ge=2, le=10)

    @model_validator(mode="after")
    def _each_field_once(self) -> ProfileConfig:
        seen: list[str] = [f for rule in self.survivorship for f in rule.fields]
        dupes = sorted({f for f in seen if seen.count(f) > 1})
        if dupes:
            raise ValueError(f"field(s) {dupes} appear in more than one survivorship rule")
        return self


class ProfileSettings(CoreSettings):
    """The settings the profiles stage reads: core paths plus its ``profiles`` section."""

    profiles: ProfileConfig = Field(default_factory=ProfileConfig)
