"""Model benchmark (issue #12, "Measured"): train churn, CLV and propensity through the product path and
measure them against the world's ground truth and classic baselines, on the same test rows.

    .venv/bin/python benchmarks/bench_models.py --customers 100000 --trials 20 \
        [--data-dir /tmp/bench100k] [--threads 2] [--json out.json]

Steps:

1. World: with ``--data-dir`` pointing at a built world (lake + feature snapshots) it is reused;
   otherwise the ``cip`` CLI stages run one by one (generate, ingest, identity run, profiles,
   features build, features apply), each in its own process, timed.
2. Training: ``training.train.train(settings, name, trials=N)`` for each model (the product path:
   labels, FeatureService join, Optuna, LightGBM, calibration, baselines, MLflow logging and
   registry), timed, with the peak RSS of the process sampled while it runs. The benchmark keeps the
   training set and the fitted estimator by wrapping ``training.train.prepare`` / ``fit_model``
   (``TrainResult`` does not carry them) and checks that the registered version scores the same.
3. Evaluation on each model's test cutoff:
   * churn: AUC / ECE / log-loss of the model; oracle AUC (the generator's ``p_churn_90d`` of the
     same rows against the realized label); MAE between predicted and true churn probability; the
     recency rule, logistic regression (``training.baselines``) and BG/NBD (P(alive) and
     P(no purchase in 90 days), ``lifetimes``, fitted on the orders before the cutoff); the share of
     the AUC gap between the best baseline and the oracle that the model closes.
   * CLV: Pearson r, Spearman, MAE, RMSE and total error against realized spend and against the
     truth's ``expected_spend_365d``, for the model, BG/NBD + Gamma-Gamma (365 days), the product's
     historical-average and last-year rules and a per-customer historical annual-rate rule.
   * propensity: AUC and top-decile lift of the model next to the category-frequency rule.

Truth rows are matched to resolved customers through the CRM records: each customer is assigned the
person owning most of its CRM accounts (truth cutoff = model cutoff - 1 day, "end of that day").
Ground truth is read here only, never by training.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

MODELS = ("churn", "clv", "propensity")
STAGES = (
    ("generate", ["generate", "--customers", "{n}"]),
    ("ingest", ["ingest"]),
    ("identity", ["identity", "run"]),
    ("profiles", ["profiles"]),
    ("features build", ["features", "build"]),
    ("features apply", ["features", "apply"]),
)


from bench_features import PeakRss  # noqa: E402  (sampled peak RSS of this process and its children)


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# --- world ------------------------------------------------------------------------------------------
def world_ready(data: Path) -> bool:
    return (
        (data / "lake" / "derived" / "customer_orders.parquet").exists()
        and any((data / "features").glob("**/customer_snapshots/*.parquet"))
        and (data / "truth" / "labels.parquet").exists()
    )


def build_world(data: Path, customers: int, env: dict[str, str]) -> dict[str, dict[str, float]]:
    """Run the CLI stages in order, each in its own process; wall time and peak RSS per stage."""
    import psutil

    out: dict[str, dict[str, float]] = {}
    data.mkdir(parents=True, exist_ok=True)
    for name, args in STAGES:
        cmd = [sys.executable, "-m", "cli", *[a.format(n=customers) for a in args]]
        logf = data / f"bench_{name.replace(' ', '_')}.log"
        t0 = time.perf_counter()
        with open(logf, "w") as fh:
            p = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT)
            ps = psutil.Process(p.pid)
            peak = 0
            while p.poll() is None:
                with contextlib.suppress(Exception):
                    peak = max(peak, sum(q.memory_info().rss for q in [ps, *ps.children(recursive=True)]))
                time.sleep(0.2)
        secs = time.perf_counter() - t0
        if p.returncode:
            raise SystemExit(f"stage {name} failed (exit {p.returncode}); see {logf}")
        out[name] = {"seconds": round(secs, 1), "peak_rss_mb": round(peak / 2**20)}
        log(f"world: {name} {secs:.1f}s, peak {peak / 2**20:.0f} MiB")
    return out


# --- truth ------------------------------------------------------------------------------------------
def customer_person(settings: Any) -> pd.DataFrame:
    """customer_id → majority person over its CRM accounts, with the share of its CRM accounts that
    person owns (1.0 = a pure cluster)."""
    m = pd.read_parquet(
        settings.lake_dir / "derived" / "identity_map.parquet", columns=["node", "node_type", "customer_id"]
    )
    m = m[m["node_type"] == "crm_id"]
    m = m.assign(record_key=m["node"].str.removeprefix("crm_id:"))
    links = pd.read_parquet(
        settings.truth_dir / "record_links.parquet", columns=["source", "record_key", "person_id"]
    )
    links = links[links["source"] == "crm"]
    j = m.merge(links[["record_key", "person_id"]], on="record_key", how="inner")
    counts = j.groupby(["customer_id", "person_id"]).size().rename("n").reset_index()
    counts["total"] = counts.groupby("customer_id")["n"].transform("sum")
    best = counts.sort_values(
        ["customer_id", "n", "person_id"], ascending=[True, False, True]
    ).drop_duplicates("customer_id")
    return best.assign(purity=best["n"] / best["total"])[["customer_id", "person_id", "purity"]]


def with_truth(rows: pd.DataFrame, cp: pd.DataFrame, truth: pd.DataFrame, cutoff: Any) -> pd.DataFrame:
    """``rows`` (one cutoff) joined to the truth of their majority person at ``cutoff - 1 day``."""
    t = truth[truth["cutoff"] == cutoff - timedelta(days=1)]
    out = rows[["customer_id"]].reset_index(drop=True).merge(cp, on="customer_id", how="left")
    out = out.merge(t.drop(columns="cutoff"), on="person_id", how="left")
    assert len(out) == len(rows)
    return out


# --- metrics ----------------------------------------------------------------------------------------
def auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else float("nan")


def binary(
    y: np.ndarray, p: np.ndarray, truth: np.ndarray | None = None, prob: bool = True
) -> dict[str, float]:
    from training import metrics as mt

    out = {"auc": auc(y, p)}
    if prob:
        m = mt.binary_metrics(y, p)
        out |= {k: m[k] for k in ("logloss", "brier", "ece", "mean_prediction")}
        if truth is not None:
            ok = np.isfinite(truth)
            out["mae_vs_true_p"] = float(np.mean(np.abs(p[ok] - truth[ok])))
    out["lift_top_decile"] = float(
        mt.lift_table(y, pd.Series(p).rank(pct=True, method="first").to_numpy())["lift"].iloc[0]
    )
    return out


def regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from training import metrics as mt

    m = mt.regression_metrics(y, pred)
    return {
        k: m[k]
        for k in ("pearson", "spearman", "mae", "rmse", "total_error_pct", "mean_prediction", "mean_actual")
    }


# --- training through the product path --------------------------------------------------------------
def train_model(settings: Any, name: str, trials: int) -> dict[str, Any]:
    """``training.train.train`` with the training set and estimator kept (wrapped module functions)."""
    import training.train as tr

    kept: dict[str, Any] = {}
    prepare, fit_model = tr.prepare, tr.fit_model

    def prepare_kept(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        kept["ts"] = prepare(*a, **k)
        kept["prepare_s"] = time.perf_counter() - t0
        return kept["ts"]

    def fit_kept(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        kept["model"], params = fit_model(*a, **k)
        kept["fit_s"] = time.perf_counter() - t0
        return kept["model"], params

    tr.prepare, tr.fit_model = prepare_kept, fit_kept
    try:
        with PeakRss() as rss:
            t0 = time.perf_counter()
            result = tr.train(settings, name, trials=trials)
            wall = time.perf_counter() - t0
    finally:
        tr.prepare, tr.fit_model = prepare, fit_model
    return {
        "result": result,
        "ts": kept["ts"],
        "model": kept["model"],
        "wall_s": wall,
        "prepare_s": kept["prepare_s"],
        "fit_s": kept["fit_s"],
        "peak_rss_mb": rss.peak / 2**20,
    }


def check_registry(settings: Any, name: str, version: str, test: pd.DataFrame, pred: np.ndarray) -> float:
    """Largest difference between the registered version's scores and the in-memory model's."""
    from training.runtime import ScoringModel

    sm = ScoringModel.load(settings, name, version)
    scored = sm.score(test, reasons=0)[sm.spec.score_column].to_numpy()
    return float(np.max(np.abs(scored - pred))) if len(pred) else 0.0


# --- evaluation -------------------------------------------------------------------------------------
def orders_frame(settings: Any) -> pd.DataFrame:
    from training.datasets import read_activity

    a = read_activity(settings)
    return a.orders.rename(columns={"amount_base": "amount"})


def eval_churn(run: dict, settings: Any, cp: pd.DataFrame, truth: pd.DataFrame, orders: pd.DataFrame) -> dict:
    from btyd import fit_btyd, rfm

    from training.baselines import logistic_regression
    from training.labels import cutoff_ts

    ts, model = run["ts"], run["model"]
    d = ts.plan.test
    test = ts.rows("test").reset_index(drop=True)
    y = test["label"].to_numpy(int)
    pred = model.predict(test)
    t0 = time.perf_counter()
    x = rfm(orders, cutoff_ts(d))
    bt = fit_btyd(x, gamma_gamma=False)
    xr = x.reindex(test["customer_id"])
    p_alive = bt.p_alive(xr.fillna(0))
    p_none = bt.p_no_purchase(xr.fillna(0), 90)
    btyd_s = time.perf_counter() - t0
    scores = {
        "LightGBM (product)": (pred, True),
        "recency rule": (test["recency_days"].astype(float).fillna(1e6).to_numpy(), False),
        "logistic regression": (logistic_regression(ts), True),
        "BG/NBD 1 - P(alive)": (1.0 - p_alive, False),
        "BG/NBD P(no purchase 90d)": (p_none, True),
    }
    tj = with_truth(test, cp, truth, d)
    ok = tj["p_churn_90d"].notna().to_numpy()
    true_p = tj["p_churn_90d"].to_numpy(float)
    table = {}
    for k, (s, prob) in scores.items():
        table[k] = binary(y[ok], s[ok], true_p[ok] if prob else None, prob)
        table[k]["auc_all_rows"] = auc(y, s)
    table["oracle: truth p_churn_90d"] = binary(y[ok], true_p[ok], true_p[ok], True)
    base_keys = [k for k in scores if k != "LightGBM (product)"]
    best = max(base_keys, key=lambda k: table[k]["auc"])
    a_m, a_b, a_o = (
        table["LightGBM (product)"]["auc"],
        table[best]["auc"],
        table["oracle: truth p_churn_90d"]["auc"],
    )
    return {
        "cutoff_test": d.isoformat(),
        "rows_test": int(len(test)),
        "rows_with_truth": int(ok.sum()),
        "pure_cluster_share": float((tj.loc[ok, "purity"] == 1).mean()),
        "base_rate": float(y[ok].mean()),
        "mean_true_p": float(true_p[ok].mean()),
        "btyd_fit_s": btyd_s,
        "bgnbd_params": {k: float(v) for k, v in bt.bgf.params_.items()},
        "table": table,
        "best_baseline": best,
        "auc_gap_closed": (a_m - a_b) / (a_o - a_b) if a_o > a_b else float("nan"),
        "registry_max_abs_diff": check_registry(settings, "churn", run["result"].version, test, pred),
    }


def eval_clv(run: dict, settings: Any, cp: pd.DataFrame, truth: pd.DataFrame, orders: pd.DataFrame) -> dict:
    from btyd import fit_btyd, rfm

    from training.labels import cutoff_ts

    ts, model = run["ts"], run["model"]
    d = ts.plan.test
    test = ts.rows("test").reset_index(drop=True)
    y = test["label"].to_numpy(float)
    pred = model.predict(test)
    h = ts.spec.horizon_days
    t0 = time.perf_counter()
    x = rfm(orders, cutoff_ts(d))
    bt = fit_btyd(x)
    xr = x.reindex(test["customer_id"])
    buyers = xr["frequency"].notna().to_numpy()
    btyd = np.zeros(len(test))
    btyd[buyers] = bt.expected_spend(xr[buyers], h)
    # customers without an order before the cutoff have no BG/NBD history: they get the mean spend of
    # such customers at the training cutoffs (a rule, so the baseline is defined on every row)
    train = ts.rows("train")
    no_order_mean = float(train.loc[train["frequency"].fillna(0) <= 0, "label"].mean())
    btyd[~buyers] = no_order_mean if np.isfinite(no_order_mean) else 0.0
    btyd_s = time.perf_counter() - t0
    tenure_years = np.maximum(test["tenure_days"].astype(float).fillna(0).to_numpy(), 90.0) / 365.0
    scores = {
        "LightGBM (product)": pred,
        "BG/NBD + Gamma-Gamma": btyd,
        "historical average (train mean)": np.full(len(y), float(train["label"].mean())),
        "last-year rule (spend_365d)": test["spend_365d"].astype(float).fillna(0).to_numpy(),
        "historical annual rate (monetary / tenure)": test["monetary"].astype(float).fillna(0).to_numpy()
        / tenure_years,
    }
    tj = with_truth(test, cp, truth, d)
    ok = tj["expected_spend_365d"].notna().to_numpy()
    exp = tj["expected_spend_365d"].to_numpy(float)
    table = {}
    for k, s in scores.items():
        table[k] = {"vs_realized": regression(y, s), "vs_expected": regression(exp[ok], s[ok])}
    table["oracle: truth expected_spend_365d"] = {
        "vs_realized": regression(y[ok], exp[ok]),
        "vs_expected": regression(exp[ok], exp[ok]),
    }
    return {
        "cutoff_test": d.isoformat(),
        "rows_test": int(len(test)),
        "rows_with_truth": int(ok.sum()),
        "rows_without_orders": int((~buyers).sum()),
        "btyd_fit_s": btyd_s,
        "bgnbd_params": {k: float(v) for k, v in bt.bgf.params_.items()},
        "gamma_gamma_params": {k: float(v) for k, v in bt.ggf.params_.items()}
        if bt.ggf is not None
        else None,
        "table": table,
        "registry_max_abs_diff": check_registry(settings, "clv", run["result"].version, test, pred),
    }


def eval_propensity(run: dict, settings: Any) -> dict:
    from training.datasets import CATEGORY

    ts, model = run["ts"], run["model"]
    test = ts.rows("test").reset_index(drop=True)
    y = test["label"].to_numpy(int)
    pred = model.predict(test)
    # category-frequency rule: the customer's 365-day affinity to the scored category
    aff = np.full(len(test), np.nan)
    for c in test[CATEGORY].unique():
        m = (test[CATEGORY] == c).to_numpy()
        col = f"affinity_{c}_365d"
        if col in test:
            aff[m] = test.loc[m, col].astype(float).to_numpy()
    aff = np.nan_to_num(aff, nan=0.0)
    scores = {"LightGBM (product)": (pred, True), "category-frequency rule": (aff, False)}
    table = {}
    for k, (s, prob) in scores.items():
        table[k] = binary(y, s, None, prob)
        per = [
            auc(y[m], s[m]) for c in test[CATEGORY].unique() if (m := (test[CATEGORY] == c).to_numpy()).any()
        ]
        table[k]["mean_auc_per_category"] = float(np.nanmean(per))
    for k, v in run["result"].baselines.items():
        if k == "logistic_regression":
            table["logistic regression"] = {
                "auc": v["auc"],
                "ece": v["ece"],
                "lift_top_decile": v["lift_top_decile"],
            }
    return {
        "cutoff_test": ts.plan.test.isoformat(),
        "rows_test": int(len(test)),
        "table": table,
        "registry_max_abs_diff": check_registry(
            settings, "propensity", run["result"].version, test.head(20000), pred[:20000]
        ),
    }


# --- report -----------------------------------------------------------------------------------------
def fmt(v: Any, spec: str = ".4f") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    return format(v, spec)


def markdown(res: dict) -> str:
    out = []
    tr = res["training"]
    out.append(
        "| model | wall (train()) | of which: training set | tuning + fit | rows train / valid / test | best iteration | peak RSS |"
    )
    out.append("|---|---|---|---|---|---|---|")
    for m in MODELS:
        t = tr[m]
        out.append(
            f"| {m} | {t['wall_s']:.1f} s | {t['prepare_s']:.1f} s | {t['fit_s']:.1f} s | "
            f"{t['rows']['train']:,} / {t['rows']['valid']:,} / {t['rows']['test']:,} | {t['best_iteration']} | {t['peak_rss_mb']:.0f} MiB |"
        )
    out.append(
        f"| **all three** | **{res['training_total_s']:.1f} s** | | | | | **{res['peak_rss_mb']:.0f} MiB** (process max) |"
    )
    c = res["churn"]
    out.append("")
    out.append(
        f"Churn, test cutoff {c['cutoff_test']}: {c['rows_with_truth']:,} of {c['rows_test']:,} rows matched to a person ({100 * c['pure_cluster_share']:.1f} % pure clusters)."
    )
    out.append("")
    out.append(
        f"Realized churn rate on those rows {c['base_rate']:.4f}; mean truth p_churn_90d {c['mean_true_p']:.4f}."
    )
    out.append("")
    out.append(
        "| contender | AUC | AUC (all rows) | ECE | log-loss | MAE vs true p | mean p | top-decile lift |"
    )
    out.append("|---|---|---|---|---|---|---|---|")
    for k, v in c["table"].items():
        out.append(
            f"| {k} | {fmt(v['auc'])} | {fmt(v.get('auc_all_rows'))} | {fmt(v.get('ece'))} | {fmt(v.get('logloss'))} | "
            f"{fmt(v.get('mae_vs_true_p'))} | {fmt(v.get('mean_prediction'))} | {fmt(v.get('lift_top_decile'), '.2f')} |"
        )
    out.append("")
    out.append(
        f"AUC gap closed between the best baseline ({c['best_baseline']}) and the oracle: **{100 * c['auc_gap_closed']:.1f} %**."
    )
    v = res["clv"]
    out.append("")
    out.append(
        f"CLV (365 days), test cutoff {v['cutoff_test']}: {v['rows_test']:,} rows ({v['rows_without_orders']:,} without an order before the cutoff), {v['rows_with_truth']:,} matched to a person."
    )
    out.append("")
    out.append(
        "| contender | r (realized) | Spearman | MAE | RMSE | total error | r (expected) | MAE (expected) | total error (expected) |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|")
    for k, t in v["table"].items():
        a, b = t["vs_realized"], t["vs_expected"]
        out.append(
            f"| {k} | {fmt(a['pearson'], '.3f')} | {fmt(a['spearman'], '.3f')} | ${a['mae']:.2f} | ${a['rmse']:.2f} | {a['total_error_pct']:+.1f} % | "
            f"{fmt(b['pearson'], '.3f')} | ${b['mae']:.2f} | {b['total_error_pct']:+.1f} % |"
        )
    p = res["propensity"]
    out.append("")
    out.append(
        f"Propensity (30 days, one row per customer and category), test cutoff {p['cutoff_test']}: {p['rows_test']:,} rows."
    )
    out.append("")
    out.append("| contender | AUC | mean AUC per category | ECE | top-decile lift |")
    out.append("|---|---|---|---|---|")
    for k, t in p["table"].items():
        out.append(
            f"| {k} | {fmt(t['auc'])} | {fmt(t.get('mean_auc_per_category'))} | {fmt(t.get('ece'))} | {fmt(t.get('lift_top_decile'), '.2f')} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--data-dir", type=Path, default=None, help="world to reuse (built here if missing)")
    ap.add_argument("--threads", type=int, default=2, help="LightGBM threads (training.num_threads)")
    ap.add_argument(
        "--json",
        type=Path,
        default=None,
        help="where to write the results (default: <data>/bench_models.json)",
    )
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()

    data = (args.data_dir or Path(f"/tmp/cip-bench-models-{args.customers}")).resolve()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    mlruns = data / "bench_mlruns" / stamp  # a fresh registry per run: every model is a first version
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(data),
        "CIP_MLRUNS_DIR": str(mlruns),
        "CIP_TRAINING__NUM_THREADS": str(args.threads),
    }
    os.environ.update({k: env[k] for k in ("CIP_DATA_DIR", "CIP_MLRUNS_DIR", "CIP_TRAINING__NUM_THREADS")})

    res: dict[str, Any] = {
        "started": datetime.now(UTC).isoformat(),
        "customers": args.customers,
        "trials": args.trials,
        "threads": args.threads,
        "data_dir": str(data),
        "mlruns": str(mlruns),
        "load_average_start": os.getloadavg(),
    }
    if world_ready(data):
        log(f"reusing the world in {data}")
        res["world"] = "reused"
    else:
        log(f"building a {args.customers:,}-customer world in {data}")
        res["world"] = build_world(data, args.customers, env)

    from cli.settings import get_settings

    settings = get_settings()
    assert settings.training.num_threads == args.threads
    models = [m for m in args.models.split(",") if m]
    runs: dict[str, dict] = {}
    res["training"] = {}
    for name in models:
        log(f"training {name} ({args.trials} trials)")
        run = train_model(settings, name, args.trials)
        r = run["result"]
        runs[name] = run
        res["training"][name] = {
            "wall_s": run["wall_s"],
            "prepare_s": run["prepare_s"],
            "fit_s": run["fit_s"],
            "peak_rss_mb": run["peak_rss_mb"],
            "rows": r.rows,
            "version": r.version,
            "best_iteration": run["model"].best_iteration_,
            "params": r.params,
            "cutoffs": {
                "train": [d.isoformat() for d in r.plan.train],
                "valid": r.plan.valid.isoformat(),
                "test": r.plan.test.isoformat(),
            },
            "product_metrics": r.metrics,
            "product_baselines": r.baselines,
        }
        log(
            f"{name}: {run['wall_s']:.1f}s (training set {run['prepare_s']:.1f}s, tuning+fit {run['fit_s']:.1f}s), "
            f"peak {run['peak_rss_mb']:.0f} MiB, test {r.gate_metric} {r.metrics[r.gate_metric]:.4f}"
        )
    res["training_total_s"] = sum(t["wall_s"] for t in res["training"].values())
    res["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["load_average_after_training"] = os.getloadavg()

    log("evaluating against the truth and the baselines")
    truth = pd.read_parquet(settings.truth_dir / "labels.parquet")
    cp = customer_person(settings)
    orders = orders_frame(settings)
    if "churn" in runs:
        res["churn"] = eval_churn(runs["churn"], settings, cp, truth, orders)
    if "clv" in runs:
        res["clv"] = eval_clv(runs["clv"], settings, cp, truth, orders)
    if "propensity" in runs:
        res["propensity"] = eval_propensity(runs["propensity"], settings)
    res["finished"] = datetime.now(UTC).isoformat()

    out = args.json or data / "bench_models.json"
    out.write_text(json.dumps(res, indent=1, default=str))
    if set(models) == set(MODELS):
        print()
        print(markdown(res))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
