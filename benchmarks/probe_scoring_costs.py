"""Where batch scoring time goes, per champion: LightGBM predict vs TreeSHAP vs the Python around
them, and what compiled trees (``lleaves``) would give for predict.

    .venv/bin/python benchmarks/probe_scoring_costs.py --data-dir DATA --mlruns-dir MLRUNS \
        [--customers 4000] [--lleaves]

Customers are sampled (with replacement) from the world's latest snapshot. Per model it prints
the tree shapes and µs per customer for: expanding rows (per-category model), building the
matrix, predict (default threads and one thread), TreeSHAP (``pred_contrib``; default threads and
one thread), picking the top-3 reasons and encoding them as JSON.

``--lleaves`` also compiles each champion with lleaves (not a project dependency:
``pip install lleaves 'llvmlite<0.45'``; lleaves 1.3 does not run on llvmlite ≥ 0.45) and compares
its predict speed and output with LightGBM's on the same matrix.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def depth(node: dict) -> int:
    if "leaf_index" in node:
        return 0
    return 1 + max(depth(node["left_child"]), depth(node["right_child"]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--mlruns-dir", type=Path, required=True)
    ap.add_argument("--customers", type=int, default=4000)
    ap.add_argument("--lleaves", action="store_true")
    args = ap.parse_args()

    from cli.settings import Settings
    from pipelines.batch.score import encode_reasons
    from pipelines.batch.snapshot import latest_features
    from training.datasets import CATEGORY
    from training.reasons import top_reasons
    from training.scoring import Scorer

    settings = Settings(data_dir=args.data_dir, mlruns_dir=args.mlruns_dir)
    scorer = Scorer.load(settings)
    snap = latest_features(settings, scorer.feature_columns).features
    n = args.customers
    x = snap.sample(n, random_state=0, replace=True).reset_index(drop=True)
    for name, model in scorer.models.items():
        est, booster = model.estimator, model.estimator.booster_
        it = est.best_iteration_
        trees = booster.dump_model(num_iteration=it)["tree_info"]
        per_cat = CATEGORY in model.features
        rows, t_expand = (
            timed(model.expand, x[[c for c in model.features if c != CATEGORY]]) if per_cat else (x, 0.0)
        )
        X, t_matrix = timed(est.matrix, rows)
        _, t_pred = timed(booster.predict, X, raw_score=True, num_iteration=it)
        _, t_pred1 = timed(booster.predict, X, raw_score=True, num_iteration=it, num_threads=1)
        step = len(X) // n  # reasons: one row per customer (the per-category model explains one)
        Xc, explained = X[::step], rows.iloc[::step].reset_index(drop=True)
        contrib, t_con = timed(booster.predict, Xc, pred_contrib=True, num_iteration=it)
        _, t_con1 = timed(booster.predict, Xc, pred_contrib=True, num_iteration=it, num_threads=1)
        reasons, t_top = timed(top_reasons, np.asarray(contrib), model.features, explained, 3)
        _, t_json = timed(encode_reasons, reasons)
        us = {
            "expand": t_expand,
            "matrix": t_matrix,
            "predict": t_pred,
            "predict_1_thread": t_pred1,
            "treeshap": t_con,
            "treeshap_1_thread": t_con1,
            "top_reasons": t_top,
            "reasons_json": t_json,
        }
        out = {
            "model": name,
            "trees": len(trees),
            "mean_leaves": round(float(np.mean([t["num_leaves"] for t in trees])), 1),
            "mean_depth": round(float(np.mean([depth(t["tree_structure"]) for t in trees])), 1),
            "customers": n,
            "rows_predicted": len(X),
            "us_per_customer": {k: round(v / n * 1e6, 1) for k, v in us.items()},
        }
        if args.lleaves:
            import lleaves

            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"{name}.txt"
                booster.save_model(str(path), num_iteration=it)
                compiled = lleaves.Model(model_file=str(path))
                _, t_compile = timed(compiled.compile, cache=str(Path(tmp) / f"{name}.so"))
                Xa = np.ascontiguousarray(X)
                ref, t_lgb = timed(booster.predict, Xa, num_iteration=it)
                got, t_ll = timed(compiled.predict, Xa)
            out["lleaves"] = {
                "compile_s": round(t_compile, 1),
                "lightgbm_rows_per_s": round(len(X) / t_lgb),
                "lleaves_rows_per_s": round(len(X) / t_ll),
                "speedup": round(t_lgb / t_ll, 1),
                "max_abs_diff": float(np.max(np.abs(got - ref))),
                "bit_identical": bool(np.array_equal(got, ref)),
            }
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
