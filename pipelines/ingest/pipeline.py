"""`cip ingest`: raw channel files → validated, standardized, lineage-tagged lake tables.

For each file: copy it into a staging folder while hashing it (already ingested → skip; a file
with the name and size of an ingested one is hashed in place first, so re-runs copy nothing),
then read that copy, validate it against its contract, quarantine every rejected row with field
and reason, standardize the rest, and publish the batch with the copy as its raw file. The hash,
the rows and the raw copy thus describe the same bytes, even if the user's file changes meanwhile.
The files of one source are staged by parallel workers (``ingest.workers``) and published one
batch per file, in file order.

A source whose key is unique across the lake (events: Segment's ``messageId``) skips, when its
batch is published, the rows whose key an earlier batch or an earlier file of the run holds
(``dedupe.py``); they are counted as duplicates.

Publishing is per file: a run publishes every file it accepts. A file that cannot be ingested
(unreadable, a required column missing, amounts without FX rates…) is not published, the run
goes on with the other files, and at the end :class:`IncompleteIngestError` names each failed
file and says that the others were published (a rerun skips them, by content hash). A failure
that is not one file's (the lake is busy, its disk is full, a crash) stops the run; its error
notes which files were published before it.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from cip.contracts import CONTRACTS, EVENTS, Contract
from cip.errors import CipError, MissingInputError, SourceFileError
from cip.lake import RAW, BatchRecord, Lake, file_sha256
from cip.live import closed_segments
from cip.sql import literal_list, quote_ident, quote_literal
from pipelines.ingest import rules, stream
from pipelines.ingest.config import IngestSettings
from pipelines.ingest.dedupe import LakeKeys
from pipelines.ingest.nodes import NODES, STREAM_NODES, Context
from pipelines.ingest.readers import (
    LineIndex,
    Snapshot,
    load_csv,
    load_jsonl,
    load_rejected,
    mark_malformed,
    prefetch,
    take_snapshot,
)
from pipelines.ingest.validate import duplicate_rows_sql, validation_sql

Progress = Callable[[str, int, int], None]


@dataclass
class FileReport:
    source: str
    file: str
    status: str  # ingested (published) | skipped (its content is in the lake) | failed (not published)
    rows_in: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0  # wall time the file added to the run
    duplicates: int = 0  # rows skipped: their key was already in the lake
    error: str | None = None  # why a failed file was not published
    fix: str | None = None


TOTAL_COLUMNS = (
    "source",
    "files",
    "skipped",
    "failed",
    "rows_in",
    "accepted",
    "quarantined",
    "duplicates",
    "seconds",
    "rows_per_s",
)


@dataclass
class IngestReport:
    files: list[FileReport]

    @property
    def ingested(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "ingested"]

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    def totals(self) -> pd.DataFrame:
        """Per source: files (skipped: already in the lake; failed: not published), rows in =
        accepted + quarantined + duplicates (skipped: key already in the lake)."""
        rows = [
            {
                "source": f.source,
                "files": 1,
                "skipped": int(f.status == "skipped"),
                "failed": int(f.status == "failed"),
                "rows_in": f.rows_in,
                "accepted": f.rows_accepted,
                "quarantined": f.rows_quarantined,
                "duplicates": f.duplicates,
                "seconds": f.seconds,
            }
            for f in self.files
        ]
        if not rows:
            return pd.DataFrame(columns=list(TOTAL_COLUMNS))
        totals = pd.DataFrame(rows).groupby("source", sort=False).sum().reset_index()
        rate = totals["rows_in"] / totals["seconds"].where(totals["seconds"] > 0)
        return totals.assign(rows_per_s=rate.round().astype("Int64"))


class IncompleteIngestError(SourceFileError):
    """Some files of a run could not be ingested; every other file was published. ``report``
    has a row per file (status ``failed`` with its error for the ones not published)."""

    def __init__(self, report: IngestReport) -> None:
        self.report = report
        failed = report.failed
        published = len(report.ingested)
        lines = "; ".join(str(f.error) for f in failed)  # each error names its file
        kept = (
            f"The other {published} new file(s) of the run were published"
            if published
            else "No other new file was published"
        )
        fixes = list(dict.fromkeys(f.fix for f in failed if f.fix))
        CipError.__init__(
            self,
            f"{len(failed)} of {len(report.files)} file(s) not ingested — {lines}. {kept}, each as one batch",
            fix="; ".join([*fixes, "then run `cip ingest` again: files already in the lake are skipped"]),
        )


def discover(source_dir: Path, live: list[Path] | None = None) -> list[tuple[Contract, Path]]:
    """Files in ``source_dir`` per contract, in ingestion order; ``live``: closed segments of the
    real-time service's event log (``cip.live``), read as event files after the folder's."""
    live = live or []
    if not source_dir.exists() and not live:
        raise MissingInputError(
            f"raw folder {source_dir} does not exist", fix="run `cip generate` or pass --source DIR"
        )
    found = [
        (c, p)
        for c in CONTRACTS
        for p in [
            *(sorted(source_dir.glob(c.pattern)) if source_dir.exists() else []),
            *(live if c is EVENTS else []),
        ]
        if p.is_file()
    ]
    if not found:
        raise MissingInputError(
            f"no source files in {source_dir}",
            fix="expected fx_rates.csv, crm_customers.csv, events/*.jsonl, ... (see docs/sources.md)",
        )
    return found


def _quarantine_sql(contract: Contract, path: Path, batch_id: str, now_literal: str) -> str:
    value = (
        "CASE v._field "
        + " ".join(f"WHEN {quote_literal(f.name)} THEN raw.{quote_ident(f.name)}" for f in contract.fields)
        + " END"
    )
    if contract.format == "jsonl":
        record, lines = "lines.line", "JOIN lines USING (_row)"
    else:
        pairs = ", ".join(f"{quote_ident(f.name)} := raw.{quote_ident(f.name)}" for f in contract.fields)
        record, lines = f"to_json(struct_pack({pairs}))::VARCHAR", ""
    return f"""SELECT {quote_literal(batch_id)} AS batch_id, {quote_literal(contract.source)} AS source,
                      {quote_literal(path.name)} AS source_file, v._row, v._field AS field, v._reason AS reason,
                      {value} AS value, {record} AS record, {now_literal} AS ingested_at
               FROM (SELECT _row, _field, _reason FROM v WHERE _reason IS NOT NULL) v
               JOIN raw USING (_row) {lines} ORDER BY v._row"""


def _copy(con: duckdb.DuckDBPyConnection, sql: str, dest: Path) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    result = con.execute(
        f"COPY ({sql}) TO {quote_literal(dest)} (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)"
    ).fetchall()[0]
    return int(result[0])


def _fx(lake: Lake) -> pd.DataFrame:
    if lake.has("fx_rates"):
        return lake.read("fx_rates", ["date", "currency", "rate_to_base"])
    return pd.DataFrame(columns=["date", "currency", "rate_to_base"])


@dataclass
class _Staging:
    """What staging one file needs besides the file: settings-derived values and the paths."""

    contract: Contract
    path: Path  # the user's file (its name goes into lineage and quarantine)
    read: Path  # the snapshot of it that is parsed
    staging: Path
    batch_id: str
    now: pd.Timestamp  # ingestion time (UTC)
    now_literal: str  # TIMESTAMPTZ literal of the ingestion time
    limit_sql: str  # TIMESTAMPTZ literal: ingestion time + future tolerance
    known: set[str]  # currencies the settings know
    convertible: set[str]  # currencies with FX rates (or the base)
    ctx: Context

    @property
    def currencies(self) -> set[str]:
        return self.convertible if self.contract.source != "fx_rates" else self.known

    @property
    def foreign(self) -> set[str]:
        return self.known - self.convertible

    def lineage_values(self) -> dict[str, pa.Array]:
        """The lineage columns every lake row carries, as one-element Arrow arrays."""
        return {
            "_source": pa.array([self.contract.source]),
            "_source_file": pa.array([self.path.name]),
            "_batch_id": pa.array([self.batch_id]),
            "_ingested_at": pa.array([self.now], type=pa.timestamp("us", tz="UTC")),
        }

    def lineage(self) -> str:
        """The same columns as SQL literals."""
        texts = [
            f"{quote_literal(v[0].as_py())} AS {k}"
            for k, v in self.lineage_values().items()
            if k != "_ingested_at"
        ]
        return ", ".join([*texts, f"{self.now_literal} AS _ingested_at"])

    def stranded_error(self, count: int) -> SourceFileError:
        return SourceFileError(
            self.path,
            f"has {count:,} amounts in {', '.join(sorted(self.foreign))} but no FX rates for them are ingested",
            fix="put fx_rates.csv (with those currencies) in the source folder; it is ingested first",
        )


def _stage_generic(
    con: duckdb.DuckDBPyConnection, job: _Staging, index: LineIndex | None
) -> tuple[dict[str, int], dict[str, int], dict[str, int], list[int]]:
    """Validate into a table ``v``, then standardize from it (every source, every file shape).
    Returns (reasons, flagged, table row counts, rejected rows of a JSON-lines file)."""
    contract = job.contract
    keys = "raw"
    if index is not None:
        load_jsonl(con, job.read, contract, index)
        keys = "raw_keys"
    rules.register_email_map(con, [f'"{f.name}"' for f in contract.fields if f.kind == "email"], keys)
    con.execute(f"CREATE TEMP TABLE dup_rows AS {duplicate_rows_sql(contract, keys)}")
    con.execute(
        f"CREATE TEMP TABLE v AS {validation_sql(contract, currencies=job.currencies, now_sql=job.limit_sql)}"
    )
    if index is not None:
        mark_malformed(con, index, contract)
    reasons = dict(
        con.execute(
            "SELECT _reason, count(*) FROM v WHERE _reason IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    if job.foreign and reasons.get("unknown_currency"):
        listing = literal_list(sorted(job.foreign))
        stranded = sum(
            con.execute(f"SELECT count(*) FROM v WHERE upper(v_{f.name}) IN ({listing})").fetchall()[0][0]
            for f in contract.fields
            if f.kind == "currency"
        )
        if stranded:
            raise job.stranded_error(stranded)
    flagged = {}
    for f in contract.fields:
        if f.kind == "email" and f.on_invalid == "flag":
            flagged[f"invalid_{f.name}"] = int(
                con.execute(
                    f"SELECT count(*) FROM v WHERE _reason IS NULL AND flag_invalid_{f.name}"
                ).fetchall()[0][0]
            )
    tables: dict[str, int] = {}
    for name, sql in NODES[contract.source](con, job.ctx).items():
        tables[name] = _copy(
            con,
            f"SELECT *, {job.lineage()} FROM ({sql})",
            job.staging / "tables" / name / f"{job.batch_id}.parquet",
        )
    rejected = []
    if index is not None and reasons:
        rejected = [r for (r,) in con.execute("SELECT _row FROM v WHERE _reason IS NOT NULL").fetchall()]
    return reasons, flagged, tables, rejected


def _stage_one_pass(
    con: duckdb.DuckDBPyConnection, job: _Staging, index: LineIndex
) -> tuple[dict[str, int], dict[str, int], dict[str, int], list[int]] | None:
    """The one-pass path (``stream.py``); None when the file's rows do not line up with its lines."""
    contract = job.contract
    plan = STREAM_NODES[contract.source](job.ctx)
    table = stream.run_main(con, job.read, contract, plan, currencies=job.currencies, now_sql=job.limit_sql)
    if table.num_rows != index.count:
        con.execute("DROP VIEW raw")
        return None
    result = stream.finish(
        con,
        table,
        index,
        contract,
        plan,
        lineage=job.lineage_values(),
        out_dir=job.staging / "tables",
        batch_id=job.batch_id,
        foreign=job.foreign,
    )
    if result.foreign_rows and result.reasons.get("unknown_currency"):
        raise job.stranded_error(result.foreign_rows)
    return result.reasons, result.flagged, result.tables, result.rejected_rows


_THREAD = threading.local()


def _database(threads: int | None) -> duckdb.DuckDBPyConnection:
    """This thread's in-memory DuckDB database, kept across the files it stages (opening one
    costs about 15 ms, a tenth of staging a small file); each file gets a cursor of its own."""
    if getattr(_THREAD, "threads", "none") != threads:
        database = duckdb.connect()
        if threads:
            database.execute(f"SET threads = {int(threads)}")
        _THREAD.database, _THREAD.threads = database, threads
    return _THREAD.database


def stage_file(
    contract: Contract,
    snapshot: Snapshot,
    staging: Path,
    *,
    settings: IngestSettings,
    now: datetime,
    fx: pd.DataFrame,
    threads: int | None = None,
) -> tuple[FileReport, BatchRecord]:
    """Validate and standardize one file (its ``snapshot`` in ``staging``) into ``staging``;
    returns its report and manifest record."""
    path, sha, index = snapshot.source, snapshot.sha256, snapshot.index
    batch_id = f"{contract.source}-{sha[:16]}"
    rated = {c for c in fx["currency"].dropna().str.upper() if len(c) == 3 and c.isalpha()}
    known = set(settings.ingest.currencies) | rated  # any ISO-4217 code with a rate
    limit = pd.Timestamp(now).tz_convert("UTC") + pd.Timedelta(hours=settings.ingest.future_tolerance_hours)
    job = _Staging(
        contract=contract,
        path=path,
        read=snapshot.path,
        staging=staging,
        batch_id=batch_id,
        now=pd.Timestamp(now).tz_convert("UTC"),
        now_literal=f"TIMESTAMPTZ {quote_literal(pd.Timestamp(now).isoformat())}",
        limit_sql=f"TIMESTAMPTZ {quote_literal(limit.isoformat())}",
        known=known,
        convertible={settings.base_currency} | (set(fx["currency"].dropna().str.upper()) & known),
        ctx=Context(base_currency=settings.base_currency, default_country=settings.ingest.default_country),
    )
    with _database(threads).cursor() as con:  # its temp tables and views go with it
        rules.prepare(con)
        rules.register_fx(con, fx, settings.base_currency)
        rows_in = (
            index.count
            if index is not None
            else load_csv(
                con,
                snapshot.path,
                contract,
                name=path,
                columns=settings.ingest.column_map.get(contract.source),
            )
        )
        staged = None
        if (
            index is not None
            and settings.ingest.one_pass
            and contract.source in STREAM_NODES
            and stream.eligible(contract)
        ):
            staged = _stage_one_pass(con, job, index)
        if staged is None:
            staged = _stage_generic(con, job, index)
        reasons, flagged, tables, rejected = staged
        rows_quarantined = sum(reasons.values())
        if rows_quarantined:
            if index is not None:
                load_rejected(con, index, contract, rejected)
            _copy(
                con,
                _quarantine_sql(contract, path, batch_id, job.now_literal),
                staging / "quarantine" / f"{batch_id}.parquet",
            )
    rows_accepted = rows_in - rows_quarantined
    record = BatchRecord(
        batch_id=batch_id,
        source=contract.source,
        file_name=path.name,
        sha256=sha,
        bytes=snapshot.path.stat().st_size,
        rows_in=rows_in,
        rows_accepted=rows_accepted,
        rows_quarantined=rows_quarantined,
        ingested_at=pd.Timestamp(now).isoformat(),
        tables=tables,
        flagged=flagged,
    )
    report = FileReport(
        source=contract.source,
        file=str(path),
        status="ingested",
        rows_in=rows_in,
        rows_accepted=rows_accepted,
        rows_quarantined=rows_quarantined,
        reasons=reasons,
        flagged=flagged,
        tables=tables,
    )
    return report, record


@dataclass
class _Staged:
    report: FileReport
    record: BatchRecord | None = None
    staging: Path | None = None


#: Peak memory of staging one file, as a multiple of its size (measured: 2.7× one-pass, 3.8× generic).
STAGING_MEMORY_FACTOR = 4
#: Share of physical memory the parallel stagings of one source may take together.
STAGING_MEMORY_SHARE = 0.5


def plan_workers(cores: int, configured: int, files: int, largest_bytes: int, memory_bytes: int) -> int:
    """Files staged at once: one per core (or as configured), no more than there are files, and
    no more than fit in half the memory at the largest file's peak (at least one)."""
    fit = int(STAGING_MEMORY_SHARE * memory_bytes // max(1, STAGING_MEMORY_FACTOR * largest_bytes))
    return max(1, min(configured or cores, files, fit))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # reported when the file is read
        return -1


def _memory_bytes() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: assume 8 GiB
        return 8 << 30


def _skip_known(keys: LakeKeys, staged: _Staged) -> None:
    """Drop the staged rows whose key the lake already holds; count them in report and record."""
    assert staged.record is not None and staged.staging is not None
    skipped = keys.skip_known(staged.staging / "tables", staged.record.batch_id)
    if skipped.rows or skipped.tables:
        for record in (staged.record, staged.report):
            record.tables = {**record.tables, **skipped.tables}
            record.rows_accepted -= skipped.rows
            record.duplicates = skipped.rows


def _ingest_source(
    lake: Lake,
    contract: Contract,
    paths: list[Path],
    *,
    settings: IngestSettings,
    now: datetime,
    fx: pd.DataFrame,
    progress: Callable[[Path], None],
    published: list[Path],
) -> list[FileReport]:
    """Ingest the files of one source: staged by parallel workers, published one by one in file
    order (each file stays one atomic batch; ``published`` gets each file as it is published).
    A file that fails is reported and not published. A file's ``seconds`` is the wall time it
    added."""
    cores = os.cpu_count() or 1
    largest = max((p.stat().st_size for p in paths), default=0)
    workers = plan_workers(cores, settings.ingest.workers, len(paths), largest, _memory_bytes())
    threads = max(1, cores // workers)
    batches = lake.batches()
    known = {b.sha256 for b in batches}
    seen = {(b.file_name, b.bytes) for b in batches}

    def skipped(path: Path) -> _Staged:
        return _Staged(FileReport(source=contract.source, file=str(path), status="skipped"))

    def stage(i: int, path: Path) -> _Staged:
        if i + workers < len(paths):  # read the file after this round from disk meanwhile
            prefetch(paths[i + workers])
        if (path.name, _size(path)) in seen and file_sha256(path) in known:
            return skipped(path)  # likely seen before: hashed without copying first
        staging = lake.new_staging(f"{contract.source}.{i}.{uuid.uuid4().hex[:8]}")
        try:
            snapshot = take_snapshot(path, staging / RAW / path.name, json_lines=contract.format == "jsonl")
            if snapshot.sha256 in known:
                lake.discard(staging)
                return skipped(path)
            report, record = stage_file(
                contract, snapshot, staging, settings=settings, now=now, fx=fx, threads=threads
            )
        except BaseException:
            lake.discard(staging)
            raise
        return _Staged(report, record, staging)

    keys = LakeKeys(lake, contract, contract.source) if contract.lake_unique else None
    reports: list[FileReport] = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(stage, i, p) for i, p in enumerate(paths)]
        try:
            mark = time.perf_counter()
            for path, future in zip(paths, futures, strict=True):
                try:
                    staged = future.result()
                except SourceFileError as exc:  # this file only: the others are still published
                    failed = FileReport(contract.source, str(path), "failed", error=exc.message, fix=exc.fix)
                    staged = _Staged(failed)
                if staged.record is not None and staged.staging is not None:
                    try:
                        if staged.record.sha256 in lake.known_hashes():  # same content earlier in this run
                            staged.report = FileReport(
                                source=contract.source, file=str(path), status="skipped"
                            )
                        else:
                            if keys is not None:
                                _skip_known(keys, staged)
                            lake.publish(staged.staging, staged.record)
                            published.append(path)
                    finally:
                        lake.discard(staged.staging)
                done = time.perf_counter()
                staged.report.seconds, mark = done - mark, done
                reports.append(staged.report)
                progress(path)
        except BaseException:
            for future in futures:
                future.cancel()
            for future in futures:
                if not future.cancelled() and future.exception() is None and future.result().staging:
                    lake.discard(future.result().staging)
            raise
    return reports


def run(
    settings: IngestSettings,
    source_dir: Path | None = None,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every new file of ``source_dir`` (default: the generated raw folder)."""
    source_dir = Path(source_dir or settings.raw_dir)
    now = now or datetime.now(UTC)
    lake = Lake(settings.lake_dir)
    files = discover(source_dir, closed_segments(settings))
    reports: list[FileReport] = []
    published: list[Path] = []
    done = iter(range(1, len(files) + 1))

    def tick(path: Path) -> None:
        step = next(done)
        if progress:
            progress(path.name, step, len(files))

    try:
        with lake.writing():  # one writer per lake; clears what a crashed run left in _staging
            fx = _fx(lake)
            for _, group in groupby(files, key=lambda cp: cp[0].source):
                pairs = list(group)
                contract = pairs[0][0]
                reports += _ingest_source(
                    lake,
                    contract,
                    [p for _, p in pairs],
                    settings=settings,
                    now=now,
                    fx=fx,
                    progress=tick,
                    published=published,
                )
                if contract.source == "fx_rates":
                    fx = _fx(lake)
    except BaseException as exc:
        exc.add_note(_published_note(published))
        raise
    if progress:
        progress("done", len(files), len(files))
    report = IngestReport(reports)
    if report.failed:
        raise IncompleteIngestError(report)
    return report


def _published_note(published: list[Path]) -> str:
    """What a run that stopped had already published (each file is one complete batch)."""
    if not published:
        return "no file of this run was published: the lake is as it was"
    names = ", ".join(p.name for p in published[:5]) + (" …" if len(published) > 5 else "")
    return (
        f"{len(published)} file(s) of this run were published before it stopped ({names}); they stay "
        "in the lake, complete, and the next `cip ingest` skips them"
    )
