"""Typed settings of the ingest stage (``settings.ingest``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cip.settings import CoreSettings


class IngestConfig(BaseModel):
    """Ingestion knobs."""

    future_tolerance_hours: float = Field(
        24.0, description="Timestamps later than ingestion time plus this are quarantined as future."
    )
    currencies: tuple[str, ...] = Field(
        ("USD", "EUR", "GBP", "CAD"),
        description=(
            "Currencies known even without FX rates (an amount in one of them with no rate stops the ingest,"
            " naming fx_rates.csv). Any ISO-4217 code that fx_rates.csv has a rate for is accepted as well."
        ),
    )
    column_map: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description=(
            "source -> {your CSV header: contract field}, e.g. {crm_customers: {CustomerNo: crm_id,"
            " DOB: birth_date}}: ingest a company's own export without renaming its columns."
        ),
    )
    default_country: str = "US"
    one_pass: bool = Field(
        True,
        description="Parse event files once and finish them in Arrow (false: the generic validate-then-standardize path).",
    )
    workers: int = Field(
        0,
        description=(
            "Files of one source ingested at once (0: one per CPU core); fewer when the largest file's"
            " staging would not fit in half the memory. Publishing stays in file order."
        ),
    )


class IngestSettings(CoreSettings):
    """The settings the ingest stage reads: core paths plus its ``ingest`` section."""

    ingest: IngestConfig = IngestConfig()
