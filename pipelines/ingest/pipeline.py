"""`cip ingest`: raw channel files → validated, standardized, lineage-tagged lake tables.

For each file: hash it (already ingested → skip), read, validate against its contract,
quarantine every rejected row with field and reason, standardize the rest, stage, publish.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cip.contracts import CONTRACTS, Contract
from cip.errors import MissingInputError, SourceFileError
from cip.lake import BatchRecord, Lake, file_sha256, write_parquet_atomic
from cip.settings import Settings
from pipelines.ingest.nodes import NODES, Context
from pipelines.ingest.readers import ROW, read_csv_strings, read_jsonl_strings
from pipelines.ingest.validate import validate

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
            return pd.DataFrame(columns=["source", "files", "skipped", "rows_in", "accepted", "quarantined", "seconds"])
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


def _quarantine_frame(
    frame: pd.DataFrame, reason: pd.Series, fld: pd.Series, contract: Contract, path: Path, batch_id: str, now: datetime
) -> pd.DataFrame:
    bad = reason.notna().to_numpy()
    rows = frame.loc[bad]
    record_cols = ["line"] if "line" in frame.columns else [f.name for f in contract.fields]
    records = rows[record_cols].astype(object).where(rows[record_cols].notna(), None)
    if "line" in frame.columns:
        raw = records["line"].astype("string")
    else:
        raw = pd.Series([json.dumps(r, ensure_ascii=False) for r in records.to_dict("records")], index=rows.index, dtype="string")
    value = pd.Series(pd.NA, index=rows.index, dtype="string")
    for name in fld[bad].dropna().unique():
        if name in rows.columns:
            m = (fld[bad] == name).to_numpy()
            value[m] = rows.loc[m, name].astype("string")
    return pd.DataFrame(
        {
            "batch_id": batch_id,
            "source": contract.source,
            "source_file": path.name,
            ROW: rows[ROW].astype("int64"),
            "field": fld[bad].astype("string"),
            "reason": reason[bad].astype("string"),
            "value": value,
            "record": raw,
            "ingested_at": pd.Timestamp(now),
        }
    )


def _lineage(table: pd.DataFrame, source: str, path: Path, batch_id: str, now: datetime) -> pd.DataFrame:
    table = table.copy()
    table["_source"] = source
    table["_source_file"] = path.name
    table["_batch_id"] = batch_id
    table["_ingested_at"] = pd.Timestamp(now)
    return table.reset_index(drop=True)


def ingest_file(
    lake: Lake, contract: Contract, path: Path, *, settings: Settings, now: datetime, sha: str
) -> FileReport:
    """Validate, standardize and publish one file atomically."""
    started = datetime.now(UTC)
    batch_id = f"{contract.source}-{sha[:16]}"
    products = None
    if contract.format == "jsonl":
        frame, products = read_jsonl_strings(path, contract)
    else:
        frame = read_csv_strings(path, contract)
    fx = lake.read("fx_rates") if lake.has("fx_rates") else pd.DataFrame(columns=["date", "currency", "rate_to_base"])
    known = set(settings.ingest.currencies)
    convertible = {settings.base_currency} | (set(fx["currency"].dropna()) & known)

    malformed = frame.pop("_malformed") if "_malformed" in frame.columns else pd.Series(False, index=frame.index)
    v = validate(
        frame,
        contract,
        now=now,
        future_tolerance=pd.Timedelta(hours=settings.ingest.future_tolerance_hours),
        currencies=convertible if contract.source != "fx_rates" else known,
    )
    v.reason[malformed.to_numpy()] = "malformed_json"
    v.field[malformed.to_numpy()] = "line"
    if contract.source != "fx_rates" and len(convertible) < len(known):
        needed = {c for f in contract.fields if f.kind == "currency" for c in v.parsed.get(f.name, pd.Series()).dropna().unique()}
        if needed - convertible - {None} and fx.empty:
            raise SourceFileError(path, "has amounts in foreign currencies but no FX rates are ingested",
                                  fix="put fx_rates.csv in the same folder (it is ingested first)")

    ctx = Context(fx=fx, base_currency=settings.base_currency, default_country=settings.ingest.default_country)
    tables = NODES[contract.source](frame, v, ctx, products=products)
    quarantine = _quarantine_frame(frame, v.reason, v.field, contract, path, batch_id, now)
    flagged = {k: int(s.loc[v.ok.to_numpy()].sum()) for k, s in v.flags.items()}
    record = BatchRecord(
        batch_id=batch_id,
        source=contract.source,
        file_name=path.name,
        sha256=sha,
        rows_in=len(frame),
        rows_accepted=int(v.ok.sum()),
        rows_quarantined=len(quarantine),
        ingested_at=pd.Timestamp(now).isoformat(),
        tables={name: len(t) for name, t in tables.items()},
        flagged=flagged,
    )
    if record.rows_in != record.rows_accepted + record.rows_quarantined:  # pragma: no cover - invariant
        raise AssertionError(f"{path}: rows do not reconcile")
    with lake.stage(batch_id) as staging:
        for name, table in tables.items():
            write_parquet_atomic(_lineage(table, contract.source, path, batch_id, now), staging / "tables" / name / f"{batch_id}.parquet")
        if len(quarantine):
            write_parquet_atomic(quarantine, staging / "quarantine" / f"{batch_id}.parquet")
        lake.publish(staging, record, path)
    return FileReport(
        source=contract.source,
        file=str(path),
        status="ingested",
        rows_in=record.rows_in,
        rows_accepted=record.rows_accepted,
        rows_quarantined=record.rows_quarantined,
        reasons=quarantine["reason"].value_counts().to_dict() if len(quarantine) else {},
        flagged=flagged,
        tables=record.tables,
        seconds=(datetime.now(UTC) - started).total_seconds(),
    )


def run(
    settings: Settings, source_dir: Path | None = None, *, now: datetime | None = None, progress: Progress | None = None
) -> IngestReport:
    """Ingest every new file of ``source_dir`` (default: the generated raw folder)."""
    source_dir = Path(source_dir or settings.raw_dir)
    now = now or datetime.now(UTC)
    lake = Lake(settings.lake_dir)
    files = discover(source_dir)
    reports: list[FileReport] = []
    for i, (contract, path) in enumerate(files):
        if progress:
            progress(f"{contract.source}: {path.name}", i, len(files))
        sha = file_sha256(path)
        if sha in lake.known_hashes():
            reports.append(FileReport(source=contract.source, file=str(path), status="skipped"))
            continue
        reports.append(ingest_file(lake, contract, path, settings=settings, now=now, sha=sha))
    if progress:
        progress("done", len(files), len(files))
    return IngestReport(reports)
