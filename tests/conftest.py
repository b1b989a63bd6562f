"""Shared fixtures: one small generated world, ingested once per test session."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

WORLD_CUSTOMERS = 2_000
WORLD_SEED = 7
#: The world's last day, pinned (a generated world ends today by default).
WORLD_AS_OF = date(2026, 6, 30)
INGEST_NOW = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture(scope="session")
def world_settings(tmp_path_factory: pytest.TempPathFactory):
    """Settings pointing at a generated world of 2,000 persons (raw + truth, not yet ingested)."""
    from cli.settings import Settings
    from pipelines.generate.pipeline import generate_world

    root: Path = tmp_path_factory.mktemp("world")
    settings = Settings(data_dir=root)
    generate_world(root, n_customers=WORLD_CUSTOMERS, seed=WORLD_SEED, as_of=WORLD_AS_OF)
    return settings


@pytest.fixture(scope="session")
def ingested_world(world_settings):
    """The world after `cip ingest`."""
    from pipelines.ingest.pipeline import run

    report = run(world_settings, now=INGEST_NOW)
    return world_settings, report


@pytest.fixture(scope="session")
def resolved_world(ingested_world):
    """The world after `cip identity run`."""
    from pipelines.identity.pipeline import run

    settings, _ = ingested_world
    result = run(settings)
    return settings, result


@pytest.fixture(scope="session")
def trained_world(resolved_world, tmp_path_factory: pytest.TempPathFactory):
    """The world after profiles, features (built with traits, applied, materialized) and `cip train` of every
    model into a real MLflow store in a temp dir (2 Optuna trials, 1 thread): what scoring reads.

    Returns ``(settings, {model name: TrainResult})``.
    """
    from cli.settings import Settings
    from features import store
    from features.traits import write_traits
    from pipelines.profiles.pipeline import run as profiles_run
    from training.config import TrainingConfig
    from training.specs import SPECS
    from training.train import train

    world, _ = resolved_world
    profiles_run(world)
    write_traits(world, store.build(world))
    store.apply(world)
    store.materialize(world)
    settings = Settings(
        data_dir=world.data_dir,
        mlruns_dir=tmp_path_factory.mktemp("mlruns"),
        training=TrainingConfig(trials=2, num_threads=1, min_rows=100),
    )
    results = {name: train(settings, name) for name in SPECS}
    return settings, results


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory: pytest.TempPathFactory):
    """A small feature store (150 synthetic customers, 10 weekly snapshots), built, applied and
    materialized; for tests that compare CIP's Feast stores with Feast's own."""
    from cli.settings import Settings
    from features.config import FeatureConfig
    from features.store import CipFeatureStore
    from tests.synthetic import write_world

    root = tmp_path_factory.mktemp("synthetic_store")
    write_world(root / "lake", 150, end=date(2026, 6, 30), days=200, seed=11, chunk=150)
    store = CipFeatureStore(Settings(data_dir=root), FeatureConfig(history_days=70, chunk_customers=100))
    store.build_snapshots()
    store.apply()
    store.materialize()
    return store
