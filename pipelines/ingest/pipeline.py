"""`cip ingest`: raw channel files → validated, standardized, lineage-tagged lake tables.

For each file: hash it (already ingested → skip), read, validate against its contract,
quarantine every rejected row with field and reason, standardize the rest, stage, publish.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd

from cip.contracts import CONTRACTS, Contract
from cip.errors import MissingInputError, SourceFileError
from cip.lake import BatchRecord, Lake, file_sha256
from cip.settings import Settings
from pipelines.ingest import rules
from pipelines.ingest.nodes import NODES, Context
from pipelines.ingest.readers import load_csv, load_jsonl
from pipelines.ingest.validate import duplicate_rows_sql, validation_sql

Progress = Callable[[str, int, int], None]


@dataclass
class FileReport:
    source: str
    file: str
    status: str  # ingested | skipped
    rows_in: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)
    tables: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass
class IngestReport:
    files: list[FileReport]

    @property
    def ingested(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "ingested"]

    def totals(self) -> pd.DataFrame:
        rows = [
            {
                "source": f.source,
                "files": 1,
                "skipped": int(f.status == "skipped"),
                "rows_in": f.rows_in,
                "accepted": f.rows_accepted,
                "quarantined": f.rows_quarantined,
                "seconds": f.seconds,
            }
            for f in self.files
        ]
        if not rows:
            return pd.DataFrame(
                columns=["source", "files", "skipped", "rows_in", "accepted", "quarantined", "seconds"]
            )
        return pd.DataFrame(rows).groupby("source", sort=False).sum().reset_index()


def discover(source_dir: Path) -> list[tuple[Contract, Path]]:
    """Files in ``source_dir`` per contract, in ingestion order."""
    if not source_dir.exists():
        raise MissingInputError(
            f"raw folder {source_dir} does not exist", fix="run `cip generate` or pass --source DIR"
        )
    found = [(c, p) for c in CONTRACTS for p in sorted(source_dir.glob(c.pattern)) if p.is_file()]
    if not found:
        raise MissingInputError(
            f"no source files in {source_dir}",
            fix="expected fx_rates.csv, crm_customers.csv, events/*.jsonl, ... (see docs/sources.md)",
        )
    return found


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _quarantine_sql(contract: Contract, path: Path, batch_id: str, now_literal: str) -> str:
    value = (
        "CASE v._field "
        + " ".join(f"WHEN '{f.name}' THEN raw.\"{f.name}\"" for f in contract.fields)
        + " END"
    )
    source = "raw"
    if contract.format == "jsonl":
        record, source = "lines.line", "lines"
    else:
        record = (
            "to_json(struct_pack("
            + ", ".join(f'"{f.name}" := raw."{f.name}"' for f in contract.fields)
            + "))::VARCHAR"
        )
    return f"""SELECT {_sql_text(batch_id)} AS batch_id, {_sql_text(contract.source)} AS source,
                      {_sql_text(path.name)} AS source_file, v._row, v._field AS field, v._reason AS reason,
                      {value} AS value, {record} AS record, {now_literal} AS ingested_at
               FROM v JOIN raw USING (_row) {"JOIN lines USING (_row)" if source == "lines" else ""} WHERE v._reason IS NOT NULL ORDER BY v._row"""


def _copy(con: duckdb.DuckDBPyConnection, sql: str, dest: Path) -> int:
    dest.parent.mkdir(parents=True, exist_ok=True)
    result = con.execute(
        f"COPY ({sql}) TO '{dest.as_posix()}' (FORMAT parquet, COMPRESSION zstd)"
    ).fetchall()[0]
    return int(result[0])


def _fx(lake: Lake) -> pd.DataFrame:
    if lake.has("fx_rates"):
        return lake.read("fx_rates", ["date", "currency", "rate_to_base"])
    return pd.DataFrame(columns=["date", "currency", "rate_to_base"])


def ingest_file(
    lake: Lake,
    contract: Contract,
    path: Path,
    *,
    settings: Settings,
    now: datetime,
    sha: str,
    fx: pd.DataFrame | None = None,
) -> FileReport:
    """Validate, standardize and publish one file atomically."""
    started = time.perf_counter()
    batch_id = f"{contract.source}-{sha[:16]}"
    with duckdb.connect() as con:
        rules.prepare(con)
        rows_in = (load_jsonl if contract.format == "jsonl" else load_csv)(con, path, contract)
        fx = (
            lake.read("fx_rates")
            if lake.has("fx_rates")
            else pd.DataFrame(columns=["date", "currency", "rate_to_base"])
        )
        rules.register_fx(con, fx, settings.base_currency)
        known = set(settings.ingest.currencies)
        convertible = {settings.base_currency} | (set(fx["currency"].dropna().str.upper()) & known)
        emails = [f'raw."{f.name}"' for f in contract.fields if f.kind == "email"]
        rules.register_email_map(con, emails)
        limit = pd.Timestamp(now).tz_convert("UTC") + pd.Timedelta(
            hours=settings.ingest.future_tolerance_hours
        )
        con.execute(f"CREATE TEMP TABLE dup_rows AS {duplicate_rows_sql(contract)}")
        con.execute(
            f"CREATE TEMP TABLE v AS {validation_sql(contract, currencies=convertible if contract.source != 'fx_rates' else known, now_sql=f'TIMESTAMPTZ {_sql_text(limit.isoformat())}')}"
        )
        reasons = dict(
            con.execute(
                "SELECT _reason, count(*) FROM v WHERE _reason IS NOT NULL GROUP BY 1 ORDER BY 1"
            ).fetchall()
        )
        foreign = [c for c in known - convertible]
        if foreign and reasons.get("unknown_currency"):
            cur_fields = [f.name for f in contract.fields if f.kind == "currency"]
            listing = ", ".join(f"'{c}'" for c in foreign)
            stranded = sum(
                con.execute(f"SELECT count(*) FROM v WHERE upper(v_{c}) IN ({listing})").fetchall()[0][0]
                for c in cur_fields
            )
            if stranded:
                raise SourceFileError(
                    path,
                    f"has {stranded:,} amounts in {', '.join(sorted(foreign))} but no FX rates for them are ingested",
                    fix="put fx_rates.csv (with those currencies) in the source folder; it is ingested first",
                )
        flag_cols = [
            f"flag_invalid_{f.name}" for f in contract.fields if f.kind == "email" and f.on_invalid == "flag"
        ]
        flagged = {}
        for col in flag_cols:
            flagged[col.removeprefix("flag_")] = int(
                con.execute(f"SELECT count(*) FROM v WHERE _reason IS NULL AND {col}").fetchall()[0][0]
            )
        rows_quarantined = sum(reasons.values())
        rows_accepted = rows_in - rows_quarantined
        ctx = Context(base_currency=settings.base_currency, default_country=settings.ingest.default_country)
        selects = NODES[contract.source](con, ctx)
        now_literal = f"TIMESTAMPTZ {_sql_text(pd.Timestamp(now).isoformat())}"
        lineage = (
            f"{_sql_text(contract.source)} AS _source, {_sql_text(path.name)} AS _source_file, "
            f"{_sql_text(batch_id)} AS _batch_id, {now_literal} AS _ingested_at"
        )
        tables: dict[str, int] = {}
        with lake.stage(batch_id) as staging:
            for name, sql in selects.items():
                tables[name] = _copy(
                    con,
                    f"SELECT *, {lineage} FROM ({sql})",
                    staging / "tables" / name / f"{batch_id}.parquet",
                )
            if rows_quarantined:
                _copy(
                    con,
                    _quarantine_sql(contract, path, batch_id, now_literal),
                    staging / "quarantine" / f"{batch_id}.parquet",
                )
            record = BatchRecord(
                batch_id=batch_id,
                source=contract.source,
                file_name=path.name,
                sha256=sha,
                rows_in=rows_in,
                rows_accepted=rows_accepted,
                rows_quarantined=rows_quarantined,
                ingested_at=pd.Timestamp(now).isoformat(),
                tables=tables,
                flagged=flagged,
            )
            lake.publish(staging, record, path)
    return FileReport(
        source=contract.source,
        file=str(path),
        status="ingested",
        rows_in=rows_in,
        rows_accepted=rows_accepted,
        rows_quarantined=rows_quarantined,
        reasons=reasons,
        flagged=flagged,
        tables=tables,
        seconds=time.perf_counter() - started,
    )


def run(
    settings: Settings,
    source_dir: Path | None = None,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> IngestReport:
    """Ingest every new file of ``source_dir`` (default: the generated raw folder)."""
    source_dir = Path(source_dir or settings.raw_dir)
    now = now or datetime.now(UTC)
    lake = Lake(settings.lake_dir)
    files = discover(source_dir)
    reports: list[FileReport] = []
    fx = _fx(lake)
    for i, (contract, path) in enumerate(files):
        if progress:
            progress(f"{contract.source}: {path.name}", i, len(files))
        sha = file_sha256(path)
        if sha in lake.known_hashes():
            reports.append(FileReport(source=contract.source, file=str(path), status="skipped"))
            continue
        reports.append(ingest_file(lake, contract, path, settings=settings, now=now, sha=sha, fx=fx))
        if contract.source == "fx_rates":
            fx = _fx(lake)
    if progress:
        progress("done", len(files), len(files))
    return IngestReport(reports)
