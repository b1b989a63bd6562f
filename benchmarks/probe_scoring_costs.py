"""Where batch scoring time goes, per champion: LightGBM predict vs TreeSHAP vs path attribution vs
the Python around them, and what compiled trees (``lleaves``) would give for predict.

    .venv/bin/python benchmarks/probe_scoring_costs.py --data-dir DATA --mlruns-dir MLRUNS \
        [--customers 4000] [--lleaves]

Customers are sampled (with replacement) from the world's latest snapshot. Per model it prints
the tree shapes and µs per customer for: expanding rows (per-category model), building the
matrix, predict (default threads and one thread), TreeSHAP (``pred_contrib``; default threads and
one thread), path attribution (building the leaf table once, then per row: ``pred_leaf`` and the
sparse sum), picking the top-3 reasons and encoding them as JSON. It also prints how often path
attribution's reasons agree with TreeSHAP's: the same first reason, TreeSHAP's first among path's
top three, and the overlap of the two top-three sets (the next-best-action model too, on the
uplift of each customer's best offer).

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


def agreement(shap: np.ndarray, path: np.ndarray, k: int = 3) -> dict[str, float]:
    """How alike two attributions rank the features (last column, the base value, left out)."""
    f = shap.shape[1] - 1
    a = np.argsort(-np.abs(shap[:, :f]), axis=1, kind="stable")[:, :k]
    b = np.argsort(-np.abs(path[:, :f]), axis=1, kind="stable")[:, :k]
    return {
        "same_first_reason": round(float(np.mean(a[:, 0] == b[:, 0])), 3),
        "treeshap_first_in_path_top3": round(
            float(np.mean([x[0] in y for x, y in zip(a, b, strict=True)])), 3
        ),
        "top3_overlap": round(
            float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b, strict=True)])), 3
        ),
        "same_sign_of_treeshap_top3": round(
            float(
                np.mean(np.sign(np.take_along_axis(shap, a, 1)) == np.sign(np.take_along_axis(path, a, 1)))
            ),
            3,
        ),
    }


def nba_agreement(model, x) -> dict:
    """Path vs TreeSHAP on the next-best-action uplift of each customer's best offer."""
    values = model.values(x)
    best = 1 + np.argmax(values[:, 1:], axis=1)
    shap = np.zeros((len(x), len(model.features) + 1))
    path = np.zeros_like(shap)
    t = {"tree_shap": 0.0, "path": 0.0}
    for col in np.unique(best):
        idx = np.flatnonzero(best == col)
        sub = x.iloc[idx]
        shap[idx], dt = timed(model.uplift.contributions, sub, model.actions[col], "tree_shap")
        t["tree_shap"] += dt
        path[idx], dt = timed(model.uplift.contributions, sub, model.actions[col], "path")
        t["path"] += dt
    return {
        "model": "nba",
        "learner": model.uplift.learner,
        "customers": len(x),
        "us_per_customer": {k: round(v / len(x) * 1e6, 1) for k, v in t.items()},
        "path_vs_treeshap": agreement(shap, path),
    }


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
    from training.attribution import PathTable
    from training.datasets import CATEGORY
    from training.reasons import top_reasons
    from training.scoring import Scorer

    settings = Settings(data_dir=args.data_dir, mlruns_dir=args.mlruns_dir)
    scorer = Scorer.load(settings)
    snap = latest_features(settings, scorer.feature_columns).features
    n = args.customers
    x = snap.sample(n, random_state=0, replace=True).reset_index(drop=True)
    for name, model in scorer.models.items():
        if getattr(model, "estimator", None) is None:
            print(json.dumps(nba_agreement(model, x)), flush=True)
            continue
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
        table, t_table = timed(PathTable.from_booster, booster, it)
        leaves, t_leaf = timed(booster.predict, Xc, pred_leaf=True, num_iteration=it)
        path, t_sum = timed(table.contributions, leaves)
        reasons, t_top = timed(top_reasons, np.asarray(contrib), model.features, explained, 3)
        _, t_json = timed(encode_reasons, reasons)
        us = {
            "expand": t_expand,
            "matrix": t_matrix,
            "predict": t_pred,
            "predict_1_thread": t_pred1,
            "treeshap": t_con,
            "treeshap_1_thread": t_con1,
            "path": t_leaf + t_sum,
            "path_pred_leaf": t_leaf,
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
            "path_table_build_s": round(t_table, 2),
            "path_vs_treeshap": agreement(np.asarray(contrib), path),
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
