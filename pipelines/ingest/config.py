"""Typed settings of the ingest stage (``settings.ingest``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cip.settings import CoreSettings


class IngestConfig(BaseModel):
    """Ingestion knobs."""

    future_tolerance_hours: float = Field(
        24.0, description="Timestamps later than ingestion time plus this are quarantined as future."
    )
    currencies: tuple[str, ...] = ("USD", "EUR", "GBP", "CAD")
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
