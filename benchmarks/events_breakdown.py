"""Where the CPU time of staging one event file goes, per event, and what that allows on this host.

    .venv/bin/python benchmarks/events_breakdown.py /tmp/bench1m/raw/events/2025-05.jsonl

Stages the file twice on one thread with one DuckDB thread (the first pass warms the lookup
memo, as the earlier files of a run do) and reports the second pass: thread CPU time per step,
in µs per event. Then it times the bare floor on the same file, which is DuckDB parsing the
contract's fields into Arrow, pyarrow writing them, SHA-256, and a file copy, with no
validation at all. Last, it turns both into events/s for a given number of busy cores
(``--cores``; 1.75–1.85 is what the 2-vCPU host delivers when both are busy).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from cip.sql import quote_literal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cip.contracts import CONTRACTS  # noqa: E402
from cli.settings import Settings  # noqa: E402
from pipelines.ingest import pipeline, stream  # noqa: E402
from pipelines.ingest.readers import _accessor, _columns  # noqa: E402

STEPS = {
    "take_snapshot": (pipeline, "copy, SHA-256 and line count (one read)"),
    "run_main": (stream, "the query: parse, extract, trim tests, checks, to Arrow"),
    "write_table": (stream, "Parquet writes (events + order lines)"),
    "_whole_file_checks": (stream, "whole-file checks (malformed lines, repeated ids)"),
    "_children": (stream, "order lines"),
    "_apply_lookup": (stream, "lookups (memo warm)"),
    "_convert": (stream, "FX for orders"),
    "_with_lineage": (stream, "lineage columns"),
    "_without": (stream, "split off rejected rows"),
}


def _timed(spent: collections.Counter, name: str, function: Callable) -> Callable:
    def timed(*args: object, **kwargs: object) -> object:
        started = time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[name] += time.thread_time() - started

    return timed


def breakdown(path: Path, work: Path) -> tuple[int, float, collections.Counter]:
    """Rows, thread CPU seconds of the whole staging, and seconds per step (second pass)."""
    contract = next(c for c in CONTRACTS if c.source == "events")
    fx = pd.read_csv(path.parents[1] / "fx_rates.csv")
    settings = Settings(data_dir=work / "data")
    spent: collections.Counter = collections.Counter()
    for name, (module, _) in STEPS.items():
        setattr(module, name, _timed(spent, name, getattr(module, name)))
    result = (0, 0.0)
    for _ in range(2):
        spent.clear()
        staging = work / "staging"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.thread_time()
        snapshot = pipeline.take_snapshot(path, staging / "raw" / path.name, json_lines=True)
        report, _ = pipeline.stage_file(
            contract, snapshot, staging, settings=settings, now=datetime.now(UTC), fx=fx, threads=1
        )
        result = (report.rows_in, time.thread_time() - started)
    return result[0], result[1], spent


def floor(path: Path, work: Path) -> dict[str, float]:
    """Thread CPU seconds of the bare steps no design can skip."""
    contract = next(c for c in CONTRACTS if c.source == "events")
    flat = ", ".join(f'p{_accessor(f.path or "$." + f.name)} AS "{f.name}"' for f in contract.fields)
    scan = (
        f"read_json({quote_literal(path)}, format = 'newline_delimited', ignore_errors = true, "
        f"columns = {_columns(contract)})"
    )
    out: dict[str, float] = {}
    with duckdb.connect() as con:
        con.execute("SET threads = 1")
        started = time.thread_time()
        table = con.sql(f"SELECT {flat} FROM {scan} p").to_arrow_table()
        out["DuckDB: parse the contract's fields into Arrow"] = time.thread_time() - started
    started = time.thread_time()
    pq.write_table(table, work / "floor.parquet", compression="zstd", compression_level=1)
    out["pyarrow: write them (zstd-1)"] = time.thread_time() - started
    data = path.read_bytes()
    started = time.thread_time()
    hashlib.sha256(data).hexdigest()
    out["SHA-256 of the file"] = time.thread_time() - started
    started = time.thread_time()
    shutil.copyfile(path, work / "copy")
    out["copy of the file (kernel)"] = time.thread_time() - started
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("events_file", type=Path)
    ap.add_argument("--cores", type=float, default=1.8, help="busy cores the host delivers (default 1.8)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows, total, spent = breakdown(args.events_file, work)
        bare = floor(args.events_file, work)

    def line(label: str, seconds: float) -> None:
        print(f"  {label:<58} {seconds:6.2f} s  {seconds / rows * 1e6:5.2f} µs/event")

    print(f"{args.events_file}: {rows:,} events, one thread, lookups warm")
    for name, (_, label) in STEPS.items():
        line(label, spent[name])
    line("other (quarantine records, glue)", total - sum(spent.values()))
    line("total", total)
    print("bare floor, no validation:")
    for label, seconds in bare.items():
        line(label, seconds)
    line("total", sum(bare.values()))
    for label, seconds in (("this design", total), ("bare floor", sum(bare.values()))):
        rate = rows / seconds * args.cores
        print(
            f"{label}: at most {rate:,.0f} events/s on {args.cores} busy cores (perfect overlap, warm cache)"
        )


if __name__ == "__main__":
    main()
