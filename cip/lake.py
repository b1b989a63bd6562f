"""The Parquet lake: immutable raw copies, standardized tables per ingested batch, derived tables.

Layout under ``settings.lake_dir``::

    raw/<source>/<batch_id>/<file name>   byte-for-byte copy of each ingested file (read-only):
                                          the bytes that were hashed and parsed
    tables/<table>/<batch_id>.parquet     standardized rows, one file per ingested batch
    quarantine/<batch_id>.parquet         rejected rows with file, line, field and reason
    derived/<table>.parquet               tables rebuilt whole by later stages (identity, profiles)
    _manifest.json                        the batches that are part of the lake
    _staging/                             batches being staged (removed by the next run after a crash)
    .lock                                 held by the one process adding batches (its pid inside)

Writes are atomic: a batch is staged under ``_staging/`` and published by renames, and the
manifest (written last, by ``os.replace``) decides which batches readers see. A crash at any
point leaves the previously published lake readable and unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cip.errors import LakeBusyError, MissingInputError
from cip.sql import literal_list, quote_ident

try:  # POSIX; elsewhere the lake is not locked
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None


@dataclass
class BatchRecord:
    """One ingested source file, as recorded in the manifest."""

    batch_id: str
    source: str
    file_name: str
    sha256: str
    rows_in: int
    rows_accepted: int
    rows_quarantined: int
    ingested_at: str
    tables: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    bytes: int = 0  # size of the raw file (0 in manifests written before it was recorded)
    #: rows skipped because their key was already in the lake (rows in = accepted + quarantined
    #: + duplicates)
    duplicates: int = 0


#: Folder of a staging folder (and of the lake) that holds the raw copies of source files.
RAW = "raw"


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Content hash of a file (the idempotency key of ingestion)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: Path, payload: object) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=str))
    os.replace(tmp, path)


def write_parquet_atomic(table: pa.Table | pd.DataFrame, path: Path) -> None:
    """Write a Parquet file to a temp name and rename it into place."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp, compression="zstd", coerce_timestamps="us", allow_truncated_timestamps=True)
    os.replace(tmp, path)


class Lake:
    """Access to one lake directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    # --- paths -------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / "_manifest.json"

    def table_dir(self, table: str) -> Path:
        return self.root / "tables" / table

    def derived_path(self, table: str) -> Path:
        return self.root / "derived" / f"{table}.parquet"

    # --- manifest ----------------------------------------------------------------------------
    def batches(self) -> list[BatchRecord]:
        if not self.manifest_path.exists():
            return []
        return [BatchRecord(**b) for b in json.loads(self.manifest_path.read_text())["batches"]]

    def known_hashes(self) -> set[str]:
        return {b.sha256 for b in self.batches()}

    # --- publishing a batch ------------------------------------------------------------------
    @contextmanager
    def writing(self) -> Iterator[None]:
        """The right to add batches to this lake, for one process at a time: an OS lock on
        ``.lock`` (released when the process ends, even by a crash). Once it is held, staging
        folders left by a run that crashed are removed."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            if fcntl is not None:
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.seek(0)
                    holder = fh.read().strip() or "?"
                    raise LakeBusyError(
                        f"another process (pid {holder}) is writing to the lake {self.root}",
                        fix="wait for that `cip ingest` to finish, or stop it, then run again",
                    ) from None
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            shutil.rmtree(self.root / "_staging", ignore_errors=True)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def stage(self, batch_id: str) -> Iterator[Path]:
        """A private staging folder for one batch; removed on failure."""
        staging = self.new_staging(batch_id)
        try:
            yield staging
        finally:
            self.discard(staging)

    def new_staging(self, name: str) -> Path:
        """A fresh private staging folder ``_staging/<name>``; :meth:`discard` it when done."""
        staging = self.root / "_staging" / name
        if staging.exists():
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        return staging

    @staticmethod
    def discard(staging: Path) -> None:
        """Remove a staging folder and whatever was not published from it."""
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)

    def publish(self, staging: Path, record: BatchRecord) -> None:
        """Move a staged batch into the lake, then add it to the manifest (the commit point). The
        staging folder holds the raw copy of the file under ``raw/`` (read-only once published)."""
        raw_dest = self.root / RAW / record.source / record.batch_id / record.file_name
        raw_dest.parent.mkdir(parents=True, exist_ok=True)
        if not raw_dest.exists():
            snapshot = staging / RAW / record.file_name
            os.chmod(snapshot, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(snapshot, raw_dest)
        for staged in sorted(staging.rglob("*.parquet")):
            if staged.is_relative_to(staging / RAW):
                continue
            dest = self.root / staged.relative_to(staging)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged, dest)
        batches = [asdict(b) for b in self.batches() if b.batch_id != record.batch_id]
        batches.append(asdict(record))
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.manifest_path, {"batches": batches})

    # --- reading -----------------------------------------------------------------------------
    def table_files(self, table: str) -> list[Path]:
        """Parquet files of a batch table, restricted to published batches."""
        files = []
        for b in self.batches():
            if table in b.tables:
                path = self.table_dir(table) / f"{b.batch_id}.parquet"
                if path.exists():
                    files.append(path)
        return files

    def quarantine_files(self) -> list[Path]:
        files = [self.root / "quarantine" / f"{b.batch_id}.parquet" for b in self.batches()]
        return [f for f in files if f.exists()]

    def has(self, table: str) -> bool:
        return bool(self.table_files(table)) or self.derived_path(table).exists()

    def scan_sql(self, table: str) -> str:
        """A DuckDB ``FROM`` expression over a table (batch or derived)."""
        if table == "quarantine":
            files = self.quarantine_files()
        elif self.derived_path(table).exists():
            files = [self.derived_path(table)]
        else:
            files = self.table_files(table)
        if not files:
            raise MissingInputError(
                f"lake table '{table}' does not exist yet in {self.root}",
                fix="run the stage that produces it first (see `cip --help`), e.g. `cip ingest`",
            )
        listing = literal_list(files)
        return f"read_parquet([{listing}], union_by_name=true)"

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Read a whole table into pandas."""
        cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            return con.sql(f"SELECT {cols} FROM {self.scan_sql(table)}").df()

    def connect(self, tables: list[str] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with a view per existing lake table."""
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        names = tables or self.table_names()
        for name in names:
            if name == "quarantine" or self.has(name):
                con.execute(f"CREATE VIEW {quote_ident(name)} AS SELECT * FROM {self.scan_sql(name)}")
        return con

    def table_names(self) -> list[str]:
        names = {t for b in self.batches() for t in b.tables}
        derived = self.root / "derived"
        if derived.exists():
            names |= {p.stem for p in derived.glob("*.parquet")}
        if self.quarantine_files():
            names.add("quarantine")
        return sorted(names)

    def write_derived(self, table: str, data: pa.Table | pd.DataFrame) -> Path:
        """Replace a derived table atomically."""
        path = self.derived_path(table)
        write_parquet_atomic(data, path)
        return path
