"""The durable event log: accepted events appended to JSON-lines segments, fsynced before the ack.

Each worker process appends to its own open segment (``<start>-<pid>-<n>.jsonl.open``) under an
exclusive ``flock``; a batch of events is one ``write`` and one ``fsync``, so an acknowledged
event is on disk. A segment is closed (renamed to ``.jsonl``, which ``cip ingest`` reads as an
events file) when it holds ``max_events`` events, is ``max_seconds`` old, or its worker stops.
On start, segments left open by a dead worker (their lock is free) are closed, without a partial
last line (a write that never completed was never acknowledged).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cip.live import OPEN_SUFFIX


class EventLog:
    """Append-only, fsynced JSON-lines segments in ``folder`` (one writer per process)."""

    def __init__(self, folder: Path, *, max_events: int = 10_000, max_seconds: float = 300.0) -> None:
        self.folder = folder
        self.max_events = max_events
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._count = 0
        self._opened = 0.0
        self._serial = 0
        folder.mkdir(parents=True, exist_ok=True)
        _fsync_dir(folder)
        self.recovered = recover(folder)

    # --- writing ------------------------------------------------------------------------------------
    def append(self, records: Iterable[dict[str, Any]]) -> Path:
        """Write the records as lines, then fsync; returns the segment they are in."""
        data = b"".join(json.dumps(r, separators=(",", ":"), default=str).encode() + b"\n" for r in records)
        with self._lock:
            if self._fd is None or self._due():
                self._rotate()
            assert self._fd is not None and self._path is not None
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
            self._count += data.count(b"\n")
            return self._path

    def _due(self) -> bool:
        return self._count >= self.max_events or time.monotonic() - self._opened >= self.max_seconds

    def _rotate(self) -> None:
        self._close_current()
        self._serial += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.folder / f"live-{stamp}-{os.getpid()}-{self._serial}.jsonl{OPEN_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _fsync_dir(self.folder)
        self._fd, self._path, self._count, self._opened = fd, path, 0, time.monotonic()

    def _close_current(self) -> None:
        if self._fd is None or self._path is None:
            return
        fd, path = self._fd, self._path
        self._fd = self._path = None
        os.fsync(fd)
        if self._count:
            path.rename(path.with_name(path.name.removesuffix(OPEN_SUFFIX)))
        else:
            path.unlink()
        _fsync_dir(self.folder)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def rotate_if_due(self) -> None:
        """Close the open segment when it is old enough (called periodically, so an idle worker's
        events become readable by ``cip ingest``)."""
        with self._lock:
            if self._fd is not None and self._count and self._due():
                self._close_current()

    def close(self) -> None:
        with self._lock:
            self._close_current()

    @property
    def current(self) -> Path | None:
        return self._path


def recover(folder: Path) -> list[Path]:
    """Close the open segments of dead writers (lock free); returns the closed segments."""
    closed = []
    for path in sorted(folder.glob(f"*.jsonl{OPEN_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live worker's segment
            if not path.exists():  # closed by its writer meanwhile
                continue
            size = os.fstat(fd).st_size
            data = os.pread(fd, size, 0) if size else b""
            keep = data.rfind(b"\n") + 1  # drop a partial last line: it was never acknowledged
            if keep < size:
                os.ftruncate(fd, keep)
                os.fsync(fd)
            if keep:
                target = path.with_name(path.name.removesuffix(OPEN_SUFFIX))
                path.rename(target)
                closed.append(target)
            else:
                path.unlink()
            _fsync_dir(folder)
        finally:
            os.close(fd)
    return closed


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
