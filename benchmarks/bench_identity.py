"""Benchmark: identity resolution (deterministic graph + Splink) and profiles on an ingested world.

    .venv/bin/python benchmarks/bench_identity.py --data-dir /tmp/cip-bench   # after bench_ingest.py --keep

Prints wall time and peak RSS of `cip identity run` (Splink model trained from scratch) and of
`cip profiles`, then identity quality against the generator's truth.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _stage(stage: str, data_dir: Path) -> dict:
    from cli.settings import Settings

    settings = Settings(data_dir=data_dir)
    started = time.perf_counter()
    out: dict = {"stage": stage}
    if stage == "identity":
        from pipelines.identity.pipeline import run

        shutil.rmtree(settings.models_dir, ignore_errors=True)
        result = run(settings, retrain=True)
        out["stats"] = {k: v for k, v in result.stats.items() if isinstance(v, int | float)}
        out["probabilistic_pairs"] = result.n_probabilistic_pairs
    elif stage == "profiles":
        from pipelines.profiles.pipeline import run

        out["tables"] = run(settings).tables
    else:
        from cip.lake import Lake
        from pipelines.identity.evaluate import evaluate

        out["quality"] = evaluate(Lake(settings.lake_dir), settings.truth_dir)
    out["seconds"] = time.perf_counter() - started
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("/tmp/cip-bench"))
    parser.add_argument("--stage", choices=["identity", "profiles", "evaluate"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(_stage(args.stage, args.data_dir), default=str))
        return
    results = {}
    for stage in ("identity", "profiles", "evaluate"):
        proc = subprocess.run(
            [sys.executable, __file__, "--stage", stage, "--data-dir", str(args.data_dir)],
            check=True,
            capture_output=True,
            text=True,
        )
        results[stage] = json.loads(proc.stdout.strip().splitlines()[-1])
    ident, prof, ev = results["identity"], results["profiles"], results["evaluate"]
    print(
        f"identity   {ident['seconds']:.1f} s, peak RSS {ident['peak_rss_mib']:,.0f} MiB, "
        f"{ident['stats'].get('n_nodes', 0):,} nodes, {ident['stats'].get('n_edges', 0):,} edges, "
        f"{ident['probabilistic_pairs']:,} Splink pairs, {ident['stats'].get('n_customers', 0):,} customers"
    )
    print(f"profiles   {prof['seconds']:.1f} s, peak RSS {prof['peak_rss_mib']:,.0f} MiB")
    for scope, m in ev["quality"].items():
        print(
            f"{scope:<28} P {m['pairwise_precision']:.4f}  R {m['pairwise_recall']:.4f}  F1 {m['pairwise_f1']:.4f}  "
            f"B3-F1 {m['bcubed_f1']:.4f}  over-merged customers {m['over_merged_customers']}  split {m['split_persons']}"
        )
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    main()
