"""One settings object for every path and engine choice.

Precedence (highest first): explicit keyword arguments, ``CIP_*`` environment variables
(nested with ``__``, e.g. ``CIP_INGEST__FUTURE_TOLERANCE_HOURS=2``), the YAML file named by
``CIP_CONFIG`` (default ``cip.yaml`` in the working directory, optional), then defaults.
"""

from __future__ import annotations

import os
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from cip.errors import CipError
from cip.identity_config import IdentityConfig
from cip.matching_config import MatchingConfig
from cip.profile_config import ProfileConfig
from training.config import TrainingConfig


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


class GenerateConfig(BaseModel):
    """Defaults for ``cip generate``."""

    customers: int = 100_000
    as_of: date = date(2026, 6, 30)


def _config_file() -> Path:
    return Path(os.environ.get("CIP_CONFIG", "cip.yaml"))


class Settings(BaseSettings):
    """Paths, engines and stage configuration; the only place paths are decided."""

    model_config = SettingsConfigDict(
        env_prefix="CIP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(Path("data"), description="Root of everything generated or ingested.")
    mlruns_dir: Path = Field(
        Path("mlruns"), description="MLflow tracking store (SQLite) and artifacts, and Optuna studies."
    )
    seed: int = 42
    base_currency: Literal["USD"] = "USD"
    engine: Literal["duckdb", "spark"] = "duckdb"
    generate: GenerateConfig = GenerateConfig()
    ingest: IngestConfig = IngestConfig()
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
    profiles: ProfileConfig = Field(default_factory=ProfileConfig)
    features: dict[str, Any] = Field(
        default_factory=dict,
        description="Feature-store knobs (snapshot cadence, history, chunking); validated by "
        "features.config.FeatureConfig so the core imports no stage.",
    )

    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=_config_file())
        return (init_settings, env_settings, yaml_source)

    # --- derived paths: every stage asks here -------------------------------------------------
    @cached_property
    def root(self) -> Path:
        return self.data_dir.resolve()

    @property
    def raw_dir(self) -> Path:
        """Where `cip generate` writes raw channel exports (the default ingest input)."""
        return self.root / "raw"

    @property
    def truth_dir(self) -> Path:
        """Generator ground truth; read only by evaluation and tests, never by pipelines."""
        return self.root / "truth"

    @property
    def lake_dir(self) -> Path:
        return self.root / "lake"

    @property
    def mlflow_dir(self) -> Path:
        """MLflow's store: ``mlflow.db`` (runs, registry), ``artifacts/`` and ``optuna.db``."""
        return self.mlruns_dir.resolve()

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def features_dir(self) -> Path:
        """Feast registry, online store and feature snapshots."""
        return self.root / "features"

    @property
    def identity_rules_dir(self) -> Path:
        """User-maintained identity rules (never-link pairs)."""
        return self.root / "rules"

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def stores(self) -> dict[str, Path]:
        """Every store that can hold customer data, by name (privacy requests walk this)."""
        return {
            "raw_exports": self.raw_dir,
            "lake": self.lake_dir,
            "models": self.models_dir,
            "rules": self.identity_rules_dir,
            "reports": self.reports_dir,
            "features": self.features_dir,
            "mlruns": self.mlflow_dir,
        }


def get_settings(**overrides: Any) -> Settings:
    """Build settings from env + optional YAML, with keyword overrides on top; invalid values
    raise a :class:`CipError` naming each bad field."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CipError(
            f"invalid settings — {problems}",
            fix=f"correct {_config_file()} or the CIP_* environment variables (see README 'Configuration')",
        ) from exc
