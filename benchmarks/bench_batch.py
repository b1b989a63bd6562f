"""Batch scoring benchmark (issue #15): N customers × every champion + top-3 reasons, scored,
segmented and exported, with the real trained champions of a world.

    .venv/bin/python benchmarks/bench_batch.py --data-dir DATA --mlruns-dir MLRUNS \
        --customers 1000000 [--reasons-sample 20000] [--full-reasons] \
        [--reasons-method tree_shap|path] [--compiled-trees] [--score-workers 2] [--json out.json]

A world of N generated customers takes long to build, so the feature frame is synthetic: rows of
the world's latest snapshot (every customer's features, as `cip score` reads them), sampled with
replacement to N rows under new customer ids, with their traits and contacts sampled alike (e-mails
made unique per row). Scores of a row depend only on its values, so the work per row is the real
one. Steps, each timed, with peak RSS sampled:

1. predict: ``Scorer.score(reasons=0)`` over the N rows in chunks (``batch.chunk_rows``,
   ``--score-workers`` chunks at once on threads, as ``batch.score_workers``);
2. reasons: ``Scorer.score(reasons=3)`` on ``--reasons-sample`` rows (or all N with
   ``--full-reasons``), per model: the contributions (``--reasons-method``: TreeSHAP, LightGBM's
   ``pred_contrib``, or path attribution) and the reason records;
3. segments: thresholds over the population, ``SegmentBook.assign``, diff against a previous run
   (the same population with CLV scores shifted);
4. export: every default destination, every segment: consent, suppression, formats, SHA-256,
   written to a temp folder with fsync (``pipelines.batch.export.build_files``). With
   ``--full-reasons`` segments and export take the scores with reasons (reasons in the webhook).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import PeakRss  # noqa: E402

KEY = "customer_id"


def timed(label: str, figures: dict, fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    figures[label] = round(time.perf_counter() - t0, 2)
    print(f"  {label}: {figures[label]:.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--mlruns-dir", type=Path, required=True)
    ap.add_argument("--customers", type=int, default=1_000_000)
    ap.add_argument("--reasons-sample", type=int, default=20_000)
    ap.add_argument("--full-reasons", action="store_true", help="reasons for all N rows (slow)")
    ap.add_argument("--chunk-rows", type=int, default=50_000)
    ap.add_argument("--score-workers", type=int, default=2, help="batch.score_workers (chunks at once)")
    ap.add_argument("--reasons-method", choices=["tree_shap", "path"], default="tree_shap")
    ap.add_argument("--compiled-trees", action="store_true", help="training.compiled_trees (lleaves)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from cip.lake import Lake
    from cli.settings import Settings
    from pipelines.batch import consent, membership
    from pipelines.batch.config import BatchConfig
    from pipelines.batch.export import build_files
    from pipelines.batch.score import score_frame
    from pipelines.batch.snapshot import latest_features
    from training.config import TrainingConfig
    from training.scoring import Scorer
    from training.segments import load_segments

    settings = Settings(
        data_dir=args.data_dir,
        mlruns_dir=args.mlruns_dir,
        batch=BatchConfig(chunk_rows=args.chunk_rows, score_workers=args.score_workers),
        training=TrainingConfig(reasons_method=args.reasons_method, compiled_trees=args.compiled_trees),
    )
    figures: dict[str, object] = {
        "customers": args.customers,
        "reasons method": args.reasons_method,
        "compiled trees": args.compiled_trees,
        "threads": os.environ.get("OMP_NUM_THREADS", "all"),
        "score workers": args.score_workers,
    }
    n = args.customers
    with PeakRss() as rss:
        scorer = timed("load champions", figures, Scorer.load, settings)
        figures["versions"] = scorer.versions
        snap = timed("read latest snapshot", figures, latest_features, settings, scorer.feature_columns)
        lake = Lake(settings.lake_dir)
        traits = lake.read("traits").set_index(KEY)
        people = consent.contacts(lake).set_index(KEY)
        rng = np.random.default_rng(0)
        src = snap.features[KEY].to_numpy()[rng.integers(0, len(snap.features), n)]
        ids = np.array([f"cus_b{i:011d}" for i in range(n)], dtype=object)
        features = snap.features.set_index(KEY).loc[src].reset_index(drop=True)
        features.insert(0, KEY, ids)
        tr = traits.reindex(src).reset_index(drop=True)
        tr.insert(0, KEY, ids)
        ct = people.reindex(src).reset_index(drop=True)
        ct.insert(0, KEY, ids)
        ct["email"] = [f"{i}.{e}" if isinstance(e, str) else None for i, e in enumerate(ct["email"])]
        print(
            f"synthetic frame: {n:,} rows × {features.shape[1] - 1} features from {len(snap.features):,} customers"
        )

        if args.compiled_trees:  # compiled on first use (or loaded from the cache): time it apart

            def compile_all() -> None:
                for m in scorer.models.values():
                    if getattr(m, "estimator", None) is not None:
                        m.estimator.raw_score(np.zeros((1, len(m.features))))

            timed("compile trees (or load them from the cache)", figures, compile_all)
        wide = timed(
            "predict (all models, no reasons)",
            figures,
            score_frame,
            scorer,
            features,
            reasons=0,
            chunk_rows=args.chunk_rows,
            workers=args.score_workers,
        )
        figures["predict rows/s"] = round(n / figures["predict (all models, no reasons)"])

        k = n if args.full_reasons else min(args.reasons_sample, n)
        sample = features.iloc[:k]
        probe = features.iloc[: min(args.reasons_sample, n)]  # per model: a sample, never all N at once
        per_model = {}
        for name in scorer.versions:
            t0 = time.perf_counter()
            scorer.score(probe, reasons=0, models=[name], alternatives=False)
            t_pred = time.perf_counter() - t0
            t0 = time.perf_counter()
            scorer.score(probe, reasons=3, models=[name], reasons_as="json", alternatives=False)
            t_both = time.perf_counter() - t0
            per_model[name] = {
                "predict rows/s": round(len(probe) / t_pred),
                "predict+reasons rows/s": round(len(probe) / t_both),
                "reasons cost × predict": round(t_both / t_pred, 1),
            }
            print(f"  {name}: {per_model[name]}", flush=True)
        figures["per model"] = per_model
        with_reasons = timed(
            f"score with reasons ({k:,} rows)",
            figures,
            score_frame,
            scorer,
            sample,
            reasons=3,
            chunk_rows=args.chunk_rows,
            workers=args.score_workers,
        )
        rate = k / figures[f"score with reasons ({k:,} rows)"]
        figures["score+reasons rows/s"] = round(rate)
        figures["score+reasons, N rows (s, extrapolated)" if k < n else "score+reasons, N rows (s)"] = round(
            n / rate, 1
        )
        if k == n:
            wide = with_reasons  # segments and export carry the reasons
        del with_reasons

        book = load_segments(settings)
        frame = timed("segments: join traits", figures, membership.segment_input, wide, tr, book.inputs)
        th = timed("segments: thresholds", figures, book.thresholds, frame)
        members = timed("segments: assign", figures, membership.assign, book, frame, th)
        shifted = frame.assign(clv_365d=frame["clv_365d"] * rng.uniform(0.8, 1.25, n))
        before = membership.assign(book, shifted, book.thresholds(shifted))
        changes = timed("segments: diff vs previous", figures, membership.diff, before, members)
        figures["memberships"] = len(members)
        figures["changes"] = changes["change"].value_counts().to_dict()

        reason_cols = [c for c in wide.columns if c.startswith("reasons_")]
        scores = wide[[KEY, *scorer.score_columns, *reason_cols]]
        exported = 0
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            for dname, dest in settings.batch.destinations.items():
                folder = Path(tmp) / dname
                folder.mkdir()
                for seg, data, _members, _left in build_files(
                    dest, book.names, members, scores, ct, scorer.score_columns
                ):
                    with open(folder / f"{seg}.out", "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    exported += len(data)
        figures["export (3 destinations × all segments)"] = round(time.perf_counter() - t0, 2)
        figures["export MB"] = round(exported / 1e6, 1)
        print(f"  export: {figures['export (3 destinations × all segments)']:.2f} s, {exported / 1e6:.1f} MB")
        seg_s = sum(v for k_, v in figures.items() if str(k_).startswith("segments:"))
        figures["score (no reasons) → segments → export (s)"] = round(
            figures["predict (all models, no reasons)"]
            + seg_s
            + figures["export (3 destinations × all segments)"],
            1,
        )
        if k == n:
            figures["score + top-3 reasons → segments → export (s)"] = round(
                figures[f"score with reasons ({k:,} rows)"]
                + seg_s
                + figures["export (3 destinations × all segments)"],
                1,
            )
    figures["peak RSS GiB"] = round(rss.peak / 2**30, 2)
    print(json.dumps(figures, indent=1, default=str))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
