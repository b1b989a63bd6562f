"""Activation exports: per destination and segment, a file plus a manifest, written atomically.

Layout under ``settings.exports_dir``::

    <run_id>/<destination>/<segment>.<csv|jsonl>      the members the destination may receive
    <run_id>/<destination>/<segment>.manifest.json    rule, counts, suppressed by reason, run id,
                                                      model versions, SHA-256 of the file, created_at
    <run_id>/<destination>/_export.json               the destination's index (written last)
    _staging/                                         exports being written (cleared by the next run)
    .lock                                             held by the one process exporting

A destination's folder is written whole in ``_staging/``: every file is fsynced, the manifests
come after their files and the index last; then the folder is renamed into place (an older export
of the same run and destination is swapped out and removed). A crash at any point leaves either
the previous export or none, never a half-written folder under ``<run_id>/``; the next export
clears what the crashed one staged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cip.errors import CipError, LakeBusyError, MissingInputError
from cip.lake import Lake
from pipelines.batch import consent, formats
from pipelines.batch.config import BatchSettings, Destination
from pipelines.batch.runs import RunInfo, load_run, read_membership
from pipelines.batch.score import reasons_column

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

KEY = "customer_id"
INDEX_FILE = "_export.json"
STAGING = "_staging"
Progress = Callable[[str, int, int], None]


@dataclass
class SegmentExport:
    segment: str
    file: str
    members: int
    exported: int
    suppressed: dict[str, int]
    sha256: str


@dataclass
class DestinationExport:
    destination: str
    run_id: str
    folder: Path
    segments: list[SegmentExport] = field(default_factory=list)


# --- pure: one destination's files -------------------------------------------------------------------
def build_files(
    destination: Destination,
    segments: Sequence[str],
    membership: pd.DataFrame,
    scores: pd.DataFrame,
    contact: pd.DataFrame,
    score_columns: Sequence[str],
) -> Iterator[tuple[str, bytes, int, dict[str, int]]]:
    """Per segment: ``(segment, file bytes, members, suppressed by reason)``. ``scores`` holds
    ``customer_id``, the score columns and ``reasons_<model>``; ``contact`` the consent columns."""
    reasons = (
        [c for c in scores.columns if c.startswith("reasons_")]
        if destination.format == "webhook_jsonl"
        else []
    )
    picked = scores[[KEY, *score_columns, *reasons]]
    picked = picked.iloc[np.argsort(picked[KEY].to_numpy(dtype=object), kind="stable")]
    people = contact.drop_duplicates(KEY).set_index(KEY).reindex(picked[KEY].to_numpy())
    base = pd.DataFrame(  # columns side by side, not copied into blocks
        {
            **{c: people[c].array for c in people.columns if c not in picked.columns},
            **{c: picked[c].array for c in picked.columns},
        },
        copy=False,
    )
    verdict = consent.suppression(base, destination).to_numpy(dtype=object)
    ok = pd.isna(verdict)
    built = formats.lines(destination, base[ok], score_columns, reasons)  # each customer formatted once
    line_of = np.cumsum(ok) - 1  # a deliverable row's position among the built lines
    at = pd.Index(base[KEY]).get_indexer(membership[KEY])  # members' rows in base (-1: not scored)
    in_segment = membership["segment"].to_numpy(dtype=object)
    for segment in segments:
        rows = np.sort(at[(in_segment == segment) & (at >= 0)])  # by customer id
        left_out = consent.counts(pd.Series(verdict[rows], dtype=object))
        deliver = rows[ok[rows]]
        yield (
            segment,
            formats.assemble(destination, segment, built, line_of[deliver], score_columns),
            len(rows),
            left_out,
        )


# --- I/O -------------------------------------------------------------------------------------------------
@contextmanager
def exporting(root: Path) -> Iterator[Path]:
    """One exporting process per exports folder; stale staging of a crashed export is removed."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as fh:
        if fcntl is not None:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.seek(0)
                raise LakeBusyError(
                    f"another export (pid {fh.read().strip() or '?'}) is writing to {root}",
                    fix="wait for it to finish, then run again",
                ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        shutil.rmtree(root / STAGING, ignore_errors=True)
        try:
            yield root
        finally:
            shutil.rmtree(root / STAGING, ignore_errors=True)
            if fcntl is not None:
                fcntl.flock(fh, fcntl.LOCK_UN)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json(payload: Any) -> bytes:
    return (json.dumps(payload, indent=1, default=str) + "\n").encode()


def publish(staged: Path, final: Path) -> None:
    """Rename a complete staged folder into place; an existing one is swapped out, then removed."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = staged.with_name(staged.name + ".old")
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    _fsync_dir(final.parent)
    shutil.rmtree(old, ignore_errors=True)


def destinations_of(settings: BatchSettings, names: Sequence[str] | None) -> dict[str, Destination]:
    known = settings.batch.destinations
    if not names:
        return dict(known)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise CipError(
            f"unknown destination {', '.join(unknown)}",
            fix=f"choose from {', '.join(known)} (or declare it under batch.destinations)",
        )
    return {n: known[n] for n in names}


def _segments_for(name: str, destination: Destination, run: RunInfo) -> list[str]:
    declared = list(run.rules) or list(run.segments)
    if destination.segments is None:
        return declared
    unknown = [s for s in destination.segments if s not in declared]
    if unknown:
        raise CipError(
            f"destination '{name}' names unknown segment {', '.join(unknown)}",
            fix=f"run {run.run_id} has the segments {', '.join(declared)}",
        )
    return list(destination.segments)


def read_scores(settings: BatchSettings, run: RunInfo) -> pd.DataFrame:
    """The lake table ``scores`` of ``run`` (the table holds the latest run)."""
    lake = Lake(settings.lake_dir)
    if not lake.has("scores"):
        raise MissingInputError("the lake has no scores", fix="run `cip score` first")
    cols = [KEY, *run.score_columns, *(reasons_column(m) for m in run.versions)]
    with lake.connect(["scores"]) as con:
        found = con.execute("SELECT DISTINCT run_id FROM scores").fetchall()
        if [r[0] for r in found] != [run.run_id]:
            raise MissingInputError(
                f"the lake's scores are not those of run {run.run_id}",
                fix="export the latest run (the scores table keeps only it), or run `cip score` again",
            )
        listing = ", ".join(f'"{c}"' for c in cols)
        return con.execute(f"SELECT {listing} FROM scores").df()


def export_run(
    settings: BatchSettings,
    destinations: Sequence[str] | None = None,
    run_id: str | None = None,
    progress: Progress | None = None,
) -> list[DestinationExport]:
    """Export the latest (or ``run_id``'s) segments to every (or the named) destination."""
    chosen = destinations_of(settings, destinations)
    run = load_run(settings, run_id)
    plan = {name: _segments_for(name, d, run) for name, d in chosen.items()}
    scores = read_scores(settings, run)
    membership = read_membership(settings, run.run_id)
    contact = consent.contacts(Lake(settings.lake_dir))
    total = sum(len(s) for s in plan.values())
    done = 0
    results = []
    with exporting(settings.exports_dir) as root:
        for name, destination in chosen.items():
            staged = root / STAGING / f"{run.run_id}__{name}"
            staged.mkdir(parents=True)
            result = DestinationExport(name, run.run_id, root / run.run_id / name)
            files = build_files(destination, plan[name], membership, scores, contact, run.score_columns)
            for segment, data, members, left_out in files:
                file_name = f"{segment}.{formats.EXTENSIONS[destination.format]}"
                _write_synced(staged / file_name, data)
                digest = hashlib.sha256(data).hexdigest()
                exported = _rows(data, destination)
                manifest = _manifest(
                    run, name, destination, segment, file_name, data, digest, members, exported, left_out
                )
                _write_synced(staged / f"{segment}.manifest.json", _json(manifest))
                result.segments.append(SegmentExport(segment, file_name, members, exported, left_out, digest))
                done += 1
                if progress:
                    progress(f"{name}: {segment}", done, total)
            index = {
                "destination": name,
                "run_id": run.run_id,
                "created_at": datetime.now(UTC).isoformat(),
                "segments": {
                    s.segment: {"file": s.file, "sha256": s.sha256, "rows": s.exported}
                    for s in result.segments
                },
            }
            _write_synced(staged / INDEX_FILE, _json(index))
            _fsync_dir(staged)
            publish(staged, result.folder)
            results.append(result)
    return results


def _rows(data: bytes, destination: Destination) -> int:
    lines = data.count(b"\n")
    return lines if destination.format == "webhook_jsonl" else max(lines - 1, 0)


def _manifest(
    run: RunInfo,
    name: str,
    destination: Destination,
    segment: str,
    file_name: str,
    data: bytes,
    digest: str,
    members: int,
    exported: int,
    left_out: dict[str, int],
) -> dict[str, Any]:
    rule = run.rules.get(segment, {})
    refs = {k: v for k, v in run.thresholds.items() if k in rule.get("expr", "")}
    return {
        "destination": name,
        "format": destination.format,
        "purposes": list(destination.purposes),
        "segment": segment,
        "rule": rule.get("expr"),
        "rule_kind": rule.get("kind"),
        "description": rule.get("description"),
        "thresholds": refs,
        "run_id": run.run_id,
        "as_of": run.as_of,
        "model_versions": run.versions,
        "members": members,
        "exported": exported,
        "suppressed": left_out,
        "suppressed_total": sum(left_out.values()),
        "file": file_name,
        "bytes": len(data),
        "sha256": digest,
        "created_at": datetime.now(UTC).isoformat(),
    }


def verify(folder: Path) -> list[str]:
    """Problems with an exported destination folder (empty when every file matches its manifest)."""
    problems = []
    if not (folder / INDEX_FILE).is_file():
        return [f"{folder}: no {INDEX_FILE} (incomplete export)"]
    index = json.loads((folder / INDEX_FILE).read_text())
    for segment, entry in index["segments"].items():
        path = folder / entry["file"]
        manifest = folder / f"{segment}.manifest.json"
        if not path.is_file() or not manifest.is_file():
            problems.append(f"{segment}: file or manifest missing")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry["sha256"] or digest != json.loads(manifest.read_text())["sha256"]:
            problems.append(f"{segment}: checksum mismatch")
    return problems
