"""Core settings: paths, the seed and where settings come from. Stage sections live with their stage.

Precedence (highest first): explicit keyword arguments, ``CIP_*`` environment variables
(nested with ``__``, e.g. ``CIP_INGEST__FUTURE_TOLERANCE_HOURS=2``), the YAML file (see
:func:`config_file`), then defaults.

Paths are decided once, when the settings are loaded, and are absolute from then on: a relative
``data_dir`` or ``mlruns_dir`` in the YAML file is read against the file's folder, one given in the
environment or as a keyword against the working directory, and the defaults are the project's
``data/`` and ``mlruns/`` (see :func:`project_root`). So every command, run from any folder,
finds the same lake.

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

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from cip.errors import CipError

CONFIG_NAME = "cip.yaml"
#: Settings holding paths: relative values are resolved when the settings are loaded.
PATH_FIELDS = ("data_dir", "mlruns_dir")


def project_root() -> Path | None:
    """The project folder of a source checkout (the folder holding ``pyproject.toml`` next to the
    ``cip`` package, editable installs included); None when CIP is installed as a package."""
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def home_dir() -> Path:
    """Where data and models go by default: the project folder, or for an installed package
    ``$XDG_DATA_HOME/cip`` (``~/.local/share/cip``)."""
    root = project_root()
    if root is not None:
        return root
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "cip"


def config_file() -> Path:
    """The YAML settings file: ``CIP_CONFIG``; else ``cip.yaml`` in the working directory; else
    ``cip.yaml`` in the project folder (:func:`home_dir`). The file is optional."""
    if "CIP_CONFIG" in os.environ:
        return Path(os.environ["CIP_CONFIG"]).expanduser().absolute()
    here = Path.cwd() / CONFIG_NAME
    return here if here.is_file() else home_dir() / CONFIG_NAME


class _YamlSource(YamlConfigSettingsSource):
    """The YAML file, with relative paths read against the file's folder (not the working one)."""

    def _read_file(self, file_path: Any) -> dict[str, Any]:
        data = super()._read_file(file_path)
        if isinstance(data, dict):
            folder = Path(str(file_path)).expanduser().absolute().parent
            for name in PATH_FIELDS:
                if isinstance(data.get(name), str) and not Path(data[name]).expanduser().is_absolute():
                    data[name] = str(folder / data[name])
        return data


class CoreSettings(BaseSettings):
    """Paths and the seed; the only place paths are decided.

    Unknown sections are ignored here, so a stage can load its own settings class from a
    ``cip.yaml`` that also holds other stages' sections; the door's ``Settings`` forbids them.
    """

    model_config = SettingsConfigDict(
        env_prefix="CIP_", env_nested_delimiter="__", extra="ignore", validate_default=True
    )

    data_dir: Path = Field(
        default_factory=lambda: home_dir() / "data",
        description="Root of everything generated or ingested (default: the project's data/).",
    )
    mlruns_dir: Path = Field(
        default_factory=lambda: home_dir() / "mlruns",
        description="MLflow tracking store (SQLite) and artifacts, and Optuna studies (default: the project's mlruns/).",
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
        yaml_source = _YamlSource(settings_cls, yaml_file=config_file())
        return (init_settings, env_settings, yaml_source)

    @field_validator(*PATH_FIELDS)
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        """Resolved once, at load time: later changes of the working directory change nothing."""
        return path.expanduser().resolve()

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

    @property
    def live_dir(self) -> Path:
        """What the real-time service keeps: its durable event log (JSON-lines segments that
        ``cip ingest`` reads as an events source) and its state database (identity links made
        by live events, trigger outbox)."""
        return self.root / "live"

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
            "live": self.live_dir,
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
