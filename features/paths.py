"""Where the feature store keeps its data (everything under the settings data dir)."""

from __future__ import annotations

import os
from pathlib import Path

from cip.settings import CoreSettings
from features.catalog import SNAPSHOT_TABLE

#: Environment variable that ``feature_store.yaml`` expands (Feast runs ``os.path.expandvars``).
DATA_DIR_ENV = "CIP_FEAST_DIR"
#: The Feast repo (this package's folder): ``feature_store.yaml`` + definitions.
REPO_DIR = Path(__file__).resolve().parent


def feature_data_dir(settings: CoreSettings) -> Path:
    """Root of the feature store's data: snapshots, registry, online store, materialization state
    (``settings.features_dir``)."""
    return settings.features_dir


def snapshot_dir(data_dir: Path) -> Path:
    """One Parquet file per snapshot date: ``<data_dir>/snapshots/customer_snapshots/<date>.parquet``."""
    return data_dir / "snapshots" / SNAPSHOT_TABLE


def snapshot_glob(data_dir: Path) -> str:
    return (snapshot_dir(data_dir) / "*.parquet").as_posix()


def fresh_source_path(data_dir: Path) -> Path:
    """Batch (offline) side of the push source."""
    return data_dir / "fresh" / "customer_fresh.parquet"


def online_state_dir(data_dir: Path) -> Path:
    """Per-view hashes of what is in the online store (drives incremental materialization)."""
    return data_dir / "online_state"


def export_data_dir(data_dir: Path) -> None:
    """Point ``feature_store.yaml`` (and the ``feast`` CLI run from ``features/``) at ``data_dir``."""
    os.environ[DATA_DIR_ENV] = str(Path(data_dir).resolve())
