"""Schema contracts of the raw sources: one declaration per source, read by ingestion and docs.

A contract names the file(s) of a source, its fields (kind, required, allowed values) and, for
JSON sources, where each field sits in the document. Ingestion turns every violated rule into a
quarantine row with the field and a reason code (see :data:`REASONS`); nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import phonenumbers

Kind = Literal[
    "string",
    "timestamp",
    "local_timestamp",
    "amount",
    "probability",
    "currency",
    "email",
    "int",
    "enum",
    "date",
]

#: Reason codes written to the quarantine table.
REASONS: dict[str, str] = {
    "malformed_json": "the line is not valid JSON",
    "invalid_encoding": "the line is not valid UTF-8 (its bytes are kept, escaped, in the record)",
    "missing_required": "a required field is blank",
    "invalid_timestamp": "the timestamp cannot be parsed",
    "future_timestamp": "the timestamp lies in the future",
    "invalid_amount": "the amount is not a number >= 0",
    "invalid_probability": "the probability is not a number in (0, 1]",
    "unknown_currency": "the currency has no FX rate",
    "invalid_email": "the e-mail address is malformed",
    "invalid_value": "the value is not one of the allowed values",
    "invalid_int": "the value is not a whole number >= 1",
    "duplicate_key": "the record key was already seen in this file",
    # not a quarantine reason: a row whose key a published batch already holds (a source with
    # ``lake_unique``) is skipped and counted as a duplicate (rows in = accepted + quarantined +
    # duplicates); the lake's raw copy of the file keeps it
}


@dataclass(frozen=True)
class Field:
    """One field of a source."""

    name: str
    kind: Kind = "string"
    required: bool = False
    values: tuple[str, ...] | None = None
    #: ``quarantine`` rejects the row; ``flag`` keeps it, nulls the standardized value, counts it.
    on_invalid: Literal["quarantine", "flag"] = "quarantine"
    #: Only validate when another field has this value, e.g. ``("event", "Order Completed")``.
    when: tuple[str, str] | None = None
    #: JSON path for JSON sources (``$.properties.revenue``).
    path: str | None = None


@dataclass(frozen=True)
class Contract:
    """The declared shape of one raw source."""

    source: str
    pattern: str
    format: Literal["csv", "jsonl"]
    fields: tuple[Field, ...]
    #: Groups of fields of which at least one must be non-blank.
    require_any: tuple[tuple[str, ...], ...] = ()
    #: Field that must be unique within a file (duplicates are quarantined).
    unique: str | None = None
    #: ``unique`` holds across files and runs too (Segment's ``messageId``): a row whose key is
    #: already in the lake is skipped and counted, not ingested twice.
    lake_unique: bool = False
    description: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def required_columns(self) -> list[str]:
        """Columns a CSV file must have in its header."""
        return [f.name for f in self.fields if f.required]

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


#: ISO-3166 alpha-2 codes of every country and territory (phonenumbers knows each one's phone plan).
COUNTRIES: tuple[str, ...] = tuple(
    sorted(r for r in phonenumbers.SUPPORTED_REGIONS if len(r) == 2 and r.isalpha())
)

OFFERS = ("no_offer", "discount_10", "free_shipping", "double_points", "new_arrivals")
SEGMENT_TYPES = ("identify", "track", "page", "alias")
TRACK_EVENTS = ("Product Viewed", "Product Added", "Checkout Started", "Order Completed")
ORDER = ("event", "Order Completed")

FX_RATES = Contract(
    source="fx_rates",
    pattern="fx_rates.csv",
    format="csv",
    description="Daily FX rates to the base currency.",
    fields=(
        Field("date", "date", required=True),
        Field("currency", "string", required=True),
        Field("rate_to_base", "amount", required=True),
    ),
)

CRM_CUSTOMERS = Contract(
    source="crm_customers",
    pattern="crm_customers.csv",
    format="csv",
    unique="crm_id",
    description="CRM accounts (store and web sign-ups).",
    fields=(
        Field("crm_id", required=True),
        Field("first_name"),
        Field("last_name"),
        Field("email", "email", on_invalid="flag"),
        Field("phone"),
        Field("birth_date"),
        Field("street"),
        Field("city"),
        Field("postcode"),
        Field("country", "enum", required=True, values=COUNTRIES),
        Field("loyalty_id"),
        Field("national_id"),
        Field("signup_channel", "enum", values=("store", "web", "app")),
        Field("created_at", "timestamp", required=True),
        Field("updated_at", "timestamp", required=True),
        Field("consent_email"),
        Field("consent_sms"),
        Field("consent_profiling"),
    ),
)

EVENTS = Contract(
    source="events",
    pattern="events/*.jsonl",
    format="jsonl",
    unique="message_id",
    lake_unique=True,  # Segment dedupes on messageId: re-exports and overlapping backfills repeat it
    description="Segment-spec web/app events (identify, track, page, alias).",
    require_any=(("anonymous_id", "user_id"),),
    fields=(
        Field("message_id", required=True, path="$.messageId"),
        Field("type", "enum", required=True, values=SEGMENT_TYPES, path="$.type"),
        Field("timestamp", "timestamp", required=True, path="$.timestamp"),
        Field("anonymous_id", path="$.anonymousId"),
        Field("user_id", path="$.userId"),
        Field("event", path="$.event"),
        Field("name", path="$.name"),
        Field("previous_id", path="$.previousId"),
        Field("device_id", path="$.context.device.id"),
        Field("device_type", path="$.context.device.type"),
        Field("channel", path="$.context.channel"),
        Field("locale", path="$.context.locale"),
        Field("email", "email", on_invalid="flag", path="$.traits.email"),
        Field("phone", path="$.traits.phone"),
        Field("first_name", path="$.traits.firstName"),
        Field("last_name", path="$.traits.lastName"),
        Field("order_id", required=True, when=ORDER, path="$.properties.order_id"),
        Field("revenue", "amount", required=True, when=ORDER, path="$.properties.revenue"),
        Field("currency", "currency", required=True, when=ORDER, path="$.properties.currency"),
        Field("product_id", path="$.properties.product_id"),
        Field("category", path="$.properties.category"),
        Field("price", "amount", path="$.properties.price"),
        Field("page_path", path="$.properties.path"),
    ),
    extra={"products_path": "$.properties.products"},
)

POS_TRANSACTIONS = Contract(
    source="pos_transactions",
    pattern="pos_transactions.csv",
    format="csv",
    description="Store sales, one row per line item, local store time and currency.",
    extra={"timezone_field": "store_timezone", "country_field": "store_country"},
    fields=(
        Field("transaction_id", required=True),
        Field("line_number", "int", required=True),
        Field("store_id", required=True),
        Field("store_country", "enum", required=True, values=COUNTRIES),
        Field("store_timezone", required=True),
        Field("transaction_time", "local_timestamp", required=True),
        Field("loyalty_id"),
        Field("product_id", required=True),
        Field("category", required=True),
        Field("quantity", "int", required=True),
        Field("unit_price", "amount", required=True),
        Field("currency", "currency", required=True),
    ),
)

EMAIL_EVENTS = Contract(
    source="email_events",
    pattern="email_events.csv",
    format="csv",
    description="ESP export: sends, opens, clicks, unsubscribes, bounces keyed by e-mail.",
    fields=(
        Field("email", "email", required=True),
        Field("event_type", "enum", required=True, values=("send", "open", "click", "unsubscribe", "bounce")),
        Field("campaign_id", required=True),
        Field("timestamp", "timestamp", required=True),
    ),
)

CAMPAIGN_EXPOSURES = Contract(
    source="campaign_exposures",
    pattern="campaign_exposures.csv",
    format="csv",
    unique="exposure_id",
    description="Randomized offer assignments with their logged probabilities.",
    fields=(
        Field("exposure_id", required=True),
        Field("campaign_id", required=True),
        Field("crm_id", required=True),
        Field("offer", "enum", required=True, values=OFFERS),
        Field("assignment_probability", "probability", required=True),
        Field("exposed_at", "timestamp", required=True),
        Field("channel", "enum", required=True, values=("email", "app")),
    ),
)

#: Ingestion order matters: FX rates first (amount conversion needs them).
CONTRACTS: tuple[Contract, ...] = (
    FX_RATES,
    CRM_CUSTOMERS,
    POS_TRANSACTIONS,
    EVENTS,
    EMAIL_EVENTS,
    CAMPAIGN_EXPOSURES,
)


def contract_for(source: str) -> Contract:
    for c in CONTRACTS:
        if c.source == source:
            return c
    raise KeyError(source)
