"""Knobs of batch scoring, segments and exports (``settings.batch``): chunking, destinations, paths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from training.config import TrainingSettings

#: Purposes a customer consents to, one flag each in the golden record (``consent_<purpose>``).
Purpose = Literal["email", "sms", "profiling"]
#: File formats a destination accepts.
Format = Literal["hashed_audience", "crm_csv", "webhook_jsonl"]
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Destination(BaseModel):
    """Where a segment's members are delivered, in which format, under which consents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Format = Field(
        description="hashed_audience: SHA-256 of the normalized e-mail and E.164 phone (ad platforms); "
        "crm_csv: customer id, scores and segment for a CRM upsert; webhook_jsonl: one JSON object per line."
    )
    purposes: tuple[Purpose, ...] = Field(
        description="Consents every exported customer must have given (consent_<purpose> true)."
    )
    suppress: tuple[Literal["unsubscribed", "bounced"], ...] = Field(
        ("unsubscribed", "bounced"),
        description="Customers left out whatever their consents: those who unsubscribed from e-mail "
        "(a marketing opt-out), and those whose e-mail address bounced.",
    )
    segments: tuple[str, ...] | None = Field(
        None, description="Segments delivered here (None: every declared segment)."
    )
    description: str = ""

    @field_validator("purposes")
    @classmethod
    def _some_purpose(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("name at least one purpose (email, sms or profiling)")
        return tuple(dict.fromkeys(value))


def default_destinations() -> dict[str, Destination]:
    return {
        "ads_audience": Destination(
            format="hashed_audience",
            purposes=("profiling",),
            description="Customer-match audience for ad platforms: hashed e-mails and phones.",
        ),
        "crm_email": Destination(
            format="crm_csv",
            purposes=("email",),
            description="CRM upsert for e-mail campaigns: id, scores and segment.",
        ),
        "sms_webhook": Destination(
            format="webhook_jsonl",
            purposes=("sms",),
            description="JSON lines posted to an SMS provider's webhook.",
        ),
    }


class BatchConfig(BaseModel):
    """How batch scoring runs and where segments are delivered."""

    model_config = ConfigDict(extra="forbid")

    chunk_rows: int = Field(50_000, ge=100, description="Customers scored per chunk (bounds memory).")
    score_workers: int = Field(
        2,
        ge=1,
        le=32,
        description="Chunks scored at once, on threads (LightGBM, the compiled trees, numpy and Arrow "
        "release the GIL: two workers score about 25 % faster on two cores than one).",
    )
    destinations: dict[str, Destination] = Field(
        default_factory=default_destinations,
        description="Export destinations by name: format, required consents and segments.",
    )
    exports_dir: Path | None = Field(None, description="Where exports go (None: <data_dir>/exports).")
    report_path: Path | None = Field(
        None, description="The run report (None: <data_dir>/reports/run_report.html)."
    )
    keep_runs: int = Field(20, ge=2, description="Scoring runs whose memberships are kept (for diffs).")

    @field_validator("destinations")
    @classmethod
    def _names(cls, value: dict[str, Destination]) -> dict[str, Destination]:
        bad = [n for n in value if not NAME.match(n)]
        if bad:
            raise ValueError(f"destination names must be lower_snake_case: {', '.join(bad)}")
        return value


class BatchSettings(TrainingSettings):
    """Settings of batch scoring: the training stage's and ``batch``."""

    batch: BatchConfig = Field(default_factory=BatchConfig)

    @property
    def batch_dir(self) -> Path:
        """Scoring runs: ``runs/<run_id>/`` (run.json, membership.parquet)."""
        return self.root / "batch"

    @property
    def exports_dir(self) -> Path:
        path = self.batch.exports_dir
        return (path if path.is_absolute() else self.root / path) if path else self.root / "exports"

    @property
    def report_path(self) -> Path:
        path = self.batch.report_path
        return (
            (path if path.is_absolute() else self.root / path)
            if path
            else self.reports_dir / "run_report.html"
        )

    def stores(self) -> dict[str, Path]:
        return {**super().stores(), "batch_runs": self.batch_dir, "exports": self.exports_dir}
