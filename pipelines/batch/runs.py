"""Scoring runs on disk: ``<data_dir>/batch/runs/<run_id>/`` holds ``run.json`` and the run's
segment memberships (``membership.parquet``). Run ids sort by time, so the previous run is the one
before in name order. A run folder is complete once its ``run.json`` exists (written last)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from cip.errors import MissingInputError
from pipelines.batch.config import BatchSettings

RUN_FILE = "run.json"
MEMBERSHIP_FILE = "membership.parquet"


@dataclass
class RunInfo:
    """What a scoring run did: when, on which features, with which models; what it found."""

    run_id: str
    created_at: str
    as_of: str  # last day of data the features include
    features_at: str  # instant of the snapshot (request-time features count to it)
    versions: dict[str, str]  # model name -> registered version
    customers: int
    score_columns: list[str]
    thresholds: dict[str, float | None] = field(default_factory=dict)
    rules: dict[str, dict[str, str]] = field(default_factory=dict)  # segment -> kind, expr, description
    segments: dict[str, int] = field(default_factory=dict)  # segment -> members
    changes: dict[str, dict[str, int]] = field(default_factory=dict)  # segment -> enter/exit/stay
    previous_run: str | None = None
    segment_file: str = ""
    seconds: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def new_run_id(now: datetime | None = None) -> str:
    """``run_<UTC time to the microsecond>_<random>``: unique and sorting by time."""
    now = now or datetime.now(UTC)
    return f"run_{now:%Y%m%dT%H%M%S%fZ}_{uuid.uuid4().hex[:6]}"


def runs_dir(settings: BatchSettings) -> Path:
    return settings.batch_dir / "runs"


def run_dir(settings: BatchSettings, run_id: str) -> Path:
    return runs_dir(settings) / run_id


def run_ids(settings: BatchSettings) -> list[str]:
    """Complete runs, oldest first."""
    root = runs_dir(settings)
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / RUN_FILE).is_file())


def load_run(settings: BatchSettings, run_id: str | None = None) -> RunInfo:
    """A run's record (default: the latest)."""
    ids = run_ids(settings)
    if not ids:
        raise MissingInputError("no scoring run yet", fix="run `cip score` first")
    rid = run_id or ids[-1]
    path = run_dir(settings, rid) / RUN_FILE
    if not path.is_file():
        raise MissingInputError(f"no scoring run '{rid}'", fix=f"choose one of {', '.join(ids[-5:])}")
    return RunInfo(**json.loads(path.read_text()))


def previous_run_id(settings: BatchSettings, run_id: str) -> str | None:
    earlier = [r for r in run_ids(settings) if r < run_id]
    return earlier[-1] if earlier else None


def save_run(settings: BatchSettings, info: RunInfo) -> Path:
    """Write ``run.json`` atomically (the run's commit point)."""
    folder = run_dir(settings, info.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / RUN_FILE
    tmp = folder / f".{RUN_FILE}.tmp"
    with open(tmp, "w") as fh:
        json.dump(info.to_json(), fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_membership(settings: BatchSettings, run_id: str) -> pd.DataFrame:
    path = run_dir(settings, run_id) / MEMBERSHIP_FILE
    if not path.is_file():
        return pd.DataFrame({"customer_id": pd.Series(dtype=object), "segment": pd.Series(dtype=object)})
    return pd.read_parquet(path, columns=["customer_id", "segment"])


def prune(settings: BatchSettings, keep: int) -> list[str]:
    """Remove all but the newest ``keep`` complete runs, and folders of runs that never finished
    (other than ``current``'s); returns the removed run ids."""
    root = runs_dir(settings)
    if not root.exists():
        return []
    complete = run_ids(settings)
    removed = complete[:-keep] if len(complete) > keep else []
    for rid in removed:
        shutil.rmtree(root / rid, ignore_errors=True)
    return removed
