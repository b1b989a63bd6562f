"""Batch scoring wiring: score everyone → segments (+ diff vs the previous run) → exports → report.

Each step reads what the previous one wrote, so each is also a command of its own (``cip score``,
``cip segments``, ``cip export``, ``cip report``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from cip.errors import MissingInputError
from cip.lake import Lake, write_parquet_atomic
from pipelines.batch import membership as mb
from pipelines.batch.config import BatchSettings
from pipelines.batch.runs import (
    MEMBERSHIP_FILE,
    RunInfo,
    load_run,
    new_run_id,
    previous_run_id,
    prune,
    read_membership,
    run_dir,
    save_run,
)
from pipelines.batch.score import score_columns, score_frame, scores_table
from pipelines.batch.snapshot import latest_features
from training.scoring import Scorer
from training.segments import SegmentBook, load_segments, save_thresholds

Progress = Callable[[str, int, int], None]
KEY = "customer_id"


@dataclass
class SegmentRun:
    """Memberships of a run and their movement since the previous run."""

    membership: pd.DataFrame  # customer_id, segment
    changes: pd.DataFrame  # customer_id, segment, change (enter/exit/stay)
    summary: pd.DataFrame  # segment, members, entered, exited, stayed, previous
    thresholds: dict[str, float]


def score(settings: BatchSettings, progress: Progress | None = None) -> RunInfo:
    """`cip score`: every customer through every champion, then segments; one run."""
    t0 = time.perf_counter()
    book = load_segments(settings)  # a bad segment file stops here, before any scoring
    scorer = Scorer.load(settings)
    snap = latest_features(settings, scorer.feature_columns)
    t_features = time.perf_counter()
    scores = score_frame(
        scorer,
        snap.features,
        reasons=settings.training.reasons,
        chunk_rows=settings.batch.chunk_rows,
        workers=settings.batch.score_workers,
        progress=progress,
    )
    t_scored = time.perf_counter()
    run_id = new_run_id()
    info = RunInfo(
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(),
        as_of=snap.as_of.isoformat(),
        features_at=snap.request_ts.isoformat(),
        versions=scorer.versions,
        customers=len(scores),
        score_columns=score_columns(scores, scorer.score_columns),
        segment_file=book.source,
    )
    lake = Lake(settings.lake_dir)
    lake.write_derived("scores", scores_table(scores, run_id, info.as_of, info.versions))
    segments(settings, info, book, scores[[KEY, *info.score_columns]])
    info.seconds = {
        "features": round(t_features - t0, 3),
        "scoring": round(t_scored - t_features, 3),
        "segments": round(time.perf_counter() - t_scored, 3),
    }
    save_run(settings, info)  # the run's commit point
    prune(settings, settings.batch.keep_runs)
    return info


def segments(settings: BatchSettings, info: RunInfo, book: SegmentBook, scores: pd.DataFrame) -> SegmentRun:
    """Assign the run's segments over ``scores`` ⨝ the lake's traits, diff them against the previous
    run, and write memberships (run folder and lake tables) and the run's thresholds."""
    traits = Lake(settings.lake_dir).read("traits")
    frame = mb.segment_input(scores, traits, book.inputs)
    thresholds = book.thresholds(frame)
    members = mb.assign(book, frame, thresholds)
    previous = previous_run_id(settings, info.run_id)
    before = read_membership(settings, previous) if previous else members.iloc[0:0]
    changes = mb.diff(before, members)
    summary = mb.summary(changes, book.names)
    folder = run_dir(settings, info.run_id)
    folder.mkdir(parents=True, exist_ok=True)
    write_parquet_atomic(members, folder / MEMBERSHIP_FILE)
    lake = Lake(settings.lake_dir)
    lake.write_derived("segment_membership", members.assign(run_id=info.run_id))
    lake.write_derived("segment_changes", changes.assign(run_id=info.run_id, previous_run_id=previous))
    info.previous_run = previous
    info.thresholds = {k: (None if np.isnan(v) else float(v)) for k, v in thresholds.items()}
    info.rules = {r.name: {"kind": r.kind, "expr": r.expr, "description": r.description} for r in book.rules}
    info.segments = dict(zip(summary["segment"], summary["members"].astype(int).tolist(), strict=True))
    info.changes = {
        row.segment: {"enter": int(row.entered), "exit": int(row.exited), "stay": int(row.stayed)}
        for row in summary.itertuples()
    }
    save_thresholds(settings, info.run_id, thresholds)
    return SegmentRun(members, changes, summary, thresholds)


def reassign(settings: BatchSettings) -> RunInfo:
    """`cip segments --reassign`: the latest run's scores against the current segment file
    (after editing it), without scoring again."""
    info = load_run(settings)
    lake = Lake(settings.lake_dir)
    if not lake.has("scores"):
        raise MissingInputError("the lake has no scores", fix="run `cip score` first")
    scores = lake.read("scores", columns=[KEY, *info.score_columns])
    book = load_segments(settings)
    info.segment_file = book.source
    segments(settings, info, book, scores)
    save_run(settings, info)
    return info


def summary_frame(info: RunInfo) -> pd.DataFrame:
    """Segment sizes and movement of a run, as recorded."""
    rows = []
    for name, members in info.segments.items():
        ch = info.changes.get(name, {})
        rows.append(
            {
                "segment": name,
                "kind": info.rules.get(name, {}).get("kind", ""),
                "members": members,
                "entered": ch.get("enter", 0),
                "exited": ch.get("exit", 0),
                "stayed": ch.get("stay", 0),
                "share": members / info.customers if info.customers else 0.0,
            }
        )
    return pd.DataFrame(rows)


def thresholds_frame(thresholds: Mapping[str, float | None]) -> pd.DataFrame:
    return pd.DataFrame({"reference": list(thresholds), "value": list(thresholds.values())})
