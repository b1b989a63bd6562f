"""Core settings: paths, the seed and where settings come from. Stage sections live with their stage.

Precedence (highest first): explicit keyword arguments, ``CIP_*`` environment variables
(nested with ``__``, e.g. ``CIP_INGEST__FUTURE_TOLERANCE_HOURS=2``), the YAML file named by
``CIP_CONFIG`` (default ``cip.yaml`` in the working directory, optional), then defaults.

Each stage declares its typed section next to its code, as a subclass of :class:`CoreSettings`
(e.g. ``pipelines.identity.config.IdentitySettings`` adds ``identity`` and ``matching``), and
types its entry points with it. The door (``cli.settings.Settings``) inherits every stage's
settings class, so one object carries every section, typed; the core imports no stage.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from cip.errors import CipError


def config_file() -> Path:
    """The YAML settings file: ``CIP_CONFIG`` or ``cip.yaml`` in the working directory."""
    return Path(os.environ.get("CIP_CONFIG", "cip.yaml"))


class CoreSettings(BaseSettings):
    """Paths and the seed; the only place paths are decided.

    Unknown sections are ignored here, so a stage can load its own settings class from a
    ``cip.yaml`` that also holds other stages' sections; the door's ``Settings`` forbids them.
    """

    model_config = SettingsConfigDict(
        env_prefix="CIP_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(Path("data"), description="Root of everything generated or ingested.")
    mlruns_dir: Path = Field(
        Path("mlruns"), description="MLflow tracking store (SQLite) and artifacts, and Optuna studies."
    )
    seed: int = 42
    base_currency: Literal["USD"] = "USD"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_source = YamlConfigSettingsSource(settings_cls, yaml_file=config_file())
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


S = TypeVar("S", bound=CoreSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build ``cls`` from env + optional YAML, with keyword overrides on top; invalid values
    raise a :class:`CipError` naming each bad field."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise CipError(
            f"invalid settings — {problems}",
            fix=f"correct {config_file()} or the CIP_* environment variables (see README 'Configuration')",
        ) from exc
