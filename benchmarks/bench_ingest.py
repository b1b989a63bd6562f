"""Benchmark: generate a world of N persons, then ingest it; each stage in its own process.

    .venv/bin/python benchmarks/bench_ingest.py --customers 1000000 [--data-dir /tmp/cip-bench]
    .venv/bin/python benchmarks/bench_ingest.py --data-dir /tmp/cip-bench --ingest-only [--only events]

``--ingest-only`` re-ingests an existing world (kept with ``--keep``) into a fresh lake;
``--only`` ingests just the named sources (plus the FX rates they need), cold, in a new process.

Prints wall time, rows and events per second, and peak RSS per stage, plus a JSON line. A source's
seconds are the wall time its files added to the run (files of one source are staged in parallel).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path


def _only_folder(data_dir: Path, only: list[str]) -> Path:
    """A folder of links to the raw files of the ``only`` sources and the FX rates."""
    from pipelines.ingest.pipeline import discover

    raw, linked = data_dir / "raw", data_dir / "_only_raw"
    shutil.rmtree(linked, ignore_errors=True)
    for contract, path in discover(raw):
        if contract.source in {*only, "fx_rates"}:
            dest = linked / path.relative_to(raw)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.symlink_to(path.resolve())
    return linked


def _stage(stage: str, data_dir: Path, customers: int, seed: int, only: list[str] | None = None) -> dict:
    from cli.settings import Settings

    settings = Settings(data_dir=data_dir)
    started = time.perf_counter()
    out: dict = {"stage": stage}
    if stage == "generate":
        from pipelines.generate.pipeline import generate_world

        # pinned, so figures stay comparable with earlier runs (a world ends today by default)
        summary = generate_world(data_dir, n_customers=customers, seed=seed, as_of=date(2026, 6, 30))
        out["summary"] = {k: v for k, v in summary.items() if isinstance(v, int | float | dict)}
    else:
        from pipelines.ingest.pipeline import run

        report = run(settings, _only_folder(data_dir, only) if only else None)
        totals = report.totals()
        out["rows_in"] = int(totals["rows_in"].sum())
        out["events_in"] = int(totals.loc[totals["source"] == "events", "rows_in"].sum())
        out["quarantined"] = int(totals["quarantined"].sum())
        out["per_source"] = totals.to_dict("records")
    out["seconds"] = time.perf_counter() - started
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    out["cpu_seconds"] = sum(u.ru_utime + u.ru_stime for u in usage)  # incl. worker processes
    out["peak_rss_mib"] = usage[0].ru_maxrss / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/cip-bench"))
    parser.add_argument("--stage", choices=["generate", "ingest"], help=argparse.SUPPRESS)
    parser.add_argument("--keep", action="store_true", help="keep the data folder afterwards")
    parser.add_argument("--ingest-only", action="store_true", help="re-ingest the world in --data-dir")
    parser.add_argument("--only", help="comma-separated sources to ingest (with fx_rates)")
    args = parser.parse_args()
    only = args.only.split(",") if args.only else None
    if args.stage:
        print(json.dumps(_stage(args.stage, args.data_dir, args.customers, args.seed, only), default=str))
        return
    if args.ingest_only:
        if not (args.data_dir / "raw").is_dir():
            sys.exit(f"--ingest-only: no world in {args.data_dir} (generate one with --keep first)")
        shutil.rmtree(args.data_dir / "lake", ignore_errors=True)
        stages = ["ingest"]
    else:
        if args.data_dir.exists():
            shutil.rmtree(args.data_dir)
        stages = ["generate", "ingest"]
    results = []
    for stage in stages:
        command = [sys.executable, __file__, "--stage", stage, "--customers", str(args.customers)]
        command += ["--seed", str(args.seed), "--data-dir", str(args.data_dir)]
        proc = subprocess.run(
            command + (["--only", args.only] if only else []), check=True, capture_output=True, text=True
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    gen, ing = results if len(results) == 2 else ({}, results[0])
    raw_bytes = sum(p.stat().st_size for p in (args.data_dir / "raw").rglob("*") if p.is_file())
    if gen:
        print(f"customers            {args.customers:,}")
        print(
            f"generate             {gen['seconds']:.1f} s, peak RSS {gen['peak_rss_mib']:,.0f} MiB, raw {raw_bytes / 2**30:.2f} GiB"
        )
    print(
        f"ingest               {ing['seconds']:.1f} s, CPU {ing['cpu_seconds']:.1f} s "
        f"({ing['cpu_seconds'] / ing['seconds']:.2f} cores busy), peak RSS {ing['peak_rss_mib']:,.0f} MiB"
    )
    print(
        f"rows in              {ing['rows_in']:,} ({ing['rows_in'] / ing['seconds']:,.0f} rows/s), quarantined {ing['quarantined']:,}"
    )
    ev_seconds = sum(r["seconds"] for r in ing["per_source"] if r["source"] == "events")
    ev_rate = ing["events_in"] / ev_seconds if ev_seconds else 0
    print(f"events in            {ing['events_in']:,} in {ev_seconds:.1f} s ({ev_rate:,.0f} events/s)")
    for row in ing["per_source"]:
        rate = row["rows_in"] / row["seconds"] if row["seconds"] else 0
        print(
            f"  {row['source']:<20} {row['rows_in']:>12,} rows {row['seconds']:8.1f} s {rate:>12,.0f} rows/s"
        )
    print(
        json.dumps(
            {
                "customers": args.customers if gen else None,
                "generate": gen,
                "ingest": ing,
                "raw_gib": raw_bytes / 2**30,
            },
            default=str,
        )
    )
    if not args.keep and not args.ingest_only:
        shutil.rmtree(args.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
