"""Both sides of the identity guards on the generated world: re-registered persons (3-6 CRM records)
must come out whole, households sharing a landline and an address must stay apart.

    .venv/bin/python benchmarks/guards_synthetic.py [--customers 2000] [--seed 7] [--data-dir DIR]

Generates and ingests the world (once per ``--data-dir``), then runs ``identity run`` twice on copies
of the same lake: with the product's defaults and with the guards as before issue 17
(``strong_match_probability: null``: no strong evidence, every link meets ``max_per_customer``).
Reports, per run, the CRM-record figures of ``pipelines.identity.evaluate`` (pairwise P/R/F1,
over-merged customers, split persons) plus:

* re-registered persons (3-6 CRM records): how many come out as exactly one customer;
* landline households (two or more persons with one phone on their records): how many were merged
  into one customer (over-merge).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.settings import Settings  # noqa: E402


def build(data_dir: Path, customers: int, seed: int) -> Settings:
    from pipelines.generate.pipeline import generate_world
    from pipelines.ingest.pipeline import run as ingest

    settings = Settings(data_dir=data_dir)
    if not (settings.lake_dir / "crm_customers").exists():
        generate_world(data_dir, n_customers=customers, seed=seed, as_of=date(2026, 6, 30))
        ingest(settings)
    return settings


def guard_figures(settings: Settings) -> dict[str, Any]:
    from cip.lake import Lake
    from pipelines.identity.evaluate import evaluate, guard_checks

    lake = Lake(settings.lake_dir)
    metrics = evaluate(lake, settings.truth_dir)["crm_accounts"]
    return {
        "crm": {k: metrics[k] for k in ("pairwise_precision", "pairwise_recall", "pairwise_f1")}
        | {k: int(metrics[k]) for k in ("over_merged_customers", "split_persons")},
        **guard_checks(lake, settings.truth_dir),
    }


def run_identity(base: Settings, workdir: Path, identity: dict[str, Any]) -> dict[str, Any]:
    from pipelines.identity.pipeline import run

    target = workdir / "w"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(base.root, target, ignore=shutil.ignore_patterns("raw"))
    settings = Settings(data_dir=target, identity=identity)
    shutil.rmtree(settings.models_dir, ignore_errors=True)
    t0 = time.perf_counter()
    result = run(settings, retrain=True)
    out = {"identity_seconds": round(time.perf_counter() - t0, 1)}
    out["rejected_by_reason"] = result.stats["rejected_by_reason"]
    out.update(guard_figures(settings))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        base = build(args.data_dir or Path(tmp) / "world", args.customers, args.seed)
        results = {
            "before (no strong evidence)": run_identity(base, Path(tmp), {"strong_match_probability": None}),
            "default": run_identity(base, Path(tmp), {}),
        }
    for name, r in results.items():
        print(f"--- {name}")
        print(json.dumps(r, indent=1))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
