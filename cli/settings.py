"""The full settings object: every stage's typed section, assembled at the door.

Each stage declares its section next to its code as a subclass of ``cip.settings.CoreSettings``
(``XSettings``, in ``<stage>/config.py``). :class:`Settings` inherits them all, so one object built
from ``CIP_*`` environment variables and ``cip.yaml`` carries every section, typed, and unknown
sections are refused. The core imports none of this.

To add a stage's section: declare ``class TrainingSettings(FeatureSettings)`` with a
``training: TrainingConfig`` field in ``training/config.py``, then add ``TrainingSettings`` to the
top of the bases below (later stages first, so the method resolution order stays consistent).
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import SettingsConfigDict

from cip.settings import load_settings
from features.config import FeatureSettings
from pipelines.batch.config import BatchSettings
from pipelines.generate.config import GenerateSettings
from pipelines.identity.config import IdentitySettings
from pipelines.ingest.config import IngestSettings
from pipelines.profiles.config import ProfileSettings
from serving.config import ServingSettings
from training.config import TrainingSettings


class Settings(
    ServingSettings,
    BatchSettings,
    TrainingSettings,
    FeatureSettings,
    ProfileSettings,
    IdentitySettings,
    IngestSettings,
    GenerateSettings,
):
    """Paths, seed and every stage's configuration (sections in the order the stages run)."""

    model_config = SettingsConfigDict(extra="forbid")


def get_settings(**overrides: Any) -> Settings:
    """Build settings from env + optional YAML, with keyword overrides on top; invalid values
    raise a :class:`cip.errors.CipError` naming each bad field."""
    return load_settings(Settings, **overrides)
