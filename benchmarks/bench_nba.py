"""Next-best-action benchmark (issue #13, "Measured"): train ``cip-nba`` through the product path and
measure the true incremental value of five policies on the held-out campaigns against the generator's
ground truth, next to their off-policy (IPW / DR) estimates.

    .venv/bin/python benchmarks/bench_nba.py --customers 100000 --data-dir /tmp/cipbench/nba100k \
        [--trials 10] [--threads 2] [--history-days 364] [--learners] [--json out.json]

Steps:

1. World: a built world under ``--data-dir`` (lake + feature snapshots) is reused; otherwise the
   ``cip`` CLI stages run (generate, ingest, identity run, profiles, features build, features apply),
   with ``features.history_days = --history-days`` so a year of weekly snapshots covers the campaigns.
2. Training: ``training.train.train(settings, "nba")`` (campaign log → outcomes → ``nba_v1`` →
   Optuna → S/T/X/DR learners → Qini choice → OPE → MLflow → registry), timed, peak RSS sampled. The
   registered champion is loaded back with ``NBAModel.load`` and is what gets measured.
3. Truth (read here only, never by training): each held-out exposure is linked to its person through
   the exposure's own record (``record_links``, source ``exposure``). The person's expected revenue in
   the 14-day window under action ``a`` is ``w * spend_mean * (14 * lam + p_response[a] * m_a)``, with
   ``w`` the share of the window the person is alive, ``m_a = 0.9`` for ``discount_10`` (the
   generator discounts those orders) else 1. Net of the settings' costs and minus the control's, that
   is the true incremental value of each action for that exposure.
4. Policies on the held-out exposures: random assignment (the logged shares), the best single offer
   for everyone (the offer with the highest true mean value: generous to this baseline), response
   propensity (the offer with the highest predicted response, always sent), CIP's uplift policy and
   the oracle (argmax of true value, ``no_offer`` when nothing is worth it). True value per exposure,
   % of the oracle's, and the IPW / DR estimates with 95 % intervals (do they cover the truth?).
   ``--learners`` also scores every learner (S, T, X, DR, ens) fitted on the same rows.
5. Diagnostics: the correlation of CIP's predicted net value of each action with the true one, and the
   features' ceiling: LightGBM fitted to the *true* net values (a diagnostic only), its policy's value.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_features import PeakRss  # noqa: E402
from bench_models import build_world, world_ready  # noqa: E402

#: Order values of responses to these offers are scaled by the generator (discount_10: 10 % off).
RESPONSE_VALUE_SCALE = {"discount_10": 0.9}


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", flush=True)


# --- truth ------------------------------------------------------------------------------------------
def exposure_truth(settings: Any, rows: pd.DataFrame, actions: tuple[str, ...]) -> pd.DataFrame:
    """Per exposure row: person, alive share of the window, and expected window revenue per action."""
    from training.specs import NBA

    links = pd.read_parquet(
        settings.truth_dir / "record_links.parquet",
        columns=["source", "record_key", "person_id"],
        filters=[("source", "=", "exposure")],
    )
    persons = pd.read_parquet(
        settings.truth_dir / "persons.parquet", columns=["person_id", "lam", "spend_mean", "dropout_at"]
    )
    resp = pd.read_parquet(settings.truth_dir / "offer_response.parquet").pivot(
        index="person_id", columns="offer", values="p_response"
    )
    out = rows[["exposure_id", "event_timestamp"]].rename(columns={"event_timestamp": "exposed_at"})
    out = out.reset_index(drop=True)
    out = out.merge(
        links.rename(columns={"record_key": "exposure_id"})[["exposure_id", "person_id"]], how="left"
    )
    out = out.merge(persons, on="person_id", how="left")
    assert len(out) == len(rows)
    days = float(NBA.horizon_days)
    dropout = pd.to_datetime(out["dropout_at"]).dt.tz_localize("UTC")
    alive_days = (dropout - out["exposed_at"]).dt.total_seconds().to_numpy() / 86400.0
    w = np.clip(alive_days / days, 0.0, 1.0)
    p = resp.reindex(out["person_id"])
    lam, spend = out["lam"].to_numpy(float), out["spend_mean"].to_numpy(float)
    revenue = {}
    for a in actions:
        scale = RESPONSE_VALUE_SCALE.get(a, 1.0)
        revenue[a] = w * spend * (days * lam + p[a].to_numpy(float) * scale)
    frame = pd.DataFrame({f"revenue_{a}": v for a, v in revenue.items()})
    frame["person_id"] = out["person_id"].to_numpy()
    frame["alive_share"] = w
    return frame


def true_net_values(truth: pd.DataFrame, actions: tuple[str, ...], costs: dict[str, Any]) -> np.ndarray:
    """``(n, A)`` true incremental value of each action net of its cost, against the control (column 0)."""

    def net(a: str) -> np.ndarray:
        c = costs.get(a)
        per, share = (0.0, 0.0) if c is None else (c.per_send, c.share_of_revenue)
        return (1.0 - share) * truth[f"revenue_{a}"].to_numpy(float) - per

    control = net(actions[0])
    return np.column_stack([net(a) - control for a in actions])


# --- evaluation -------------------------------------------------------------------------------------
def policy_table(
    model: Any, ns: Any, truth_v: np.ndarray, level: float, extra: dict[str, np.ndarray] | None = None
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """True value (per exposure and % of the oracle) and IPW / DR estimates of each policy."""
    from training import ope, policy
    from training.nba import net_reward_model

    arms = ns.arms("test")
    index = {a: j for j, a in enumerate(model.actions)}
    logged = np.array([index[a] for a in arms.action], dtype=np.int64)
    shares = np.array([arms.share(a) for a in model.actions])
    shares = shares / shares.sum()
    chosen, _ = model.choose(arms.X)
    baseline, uplift = model.revenue(arms.X)
    best_single = int(np.argmax(truth_v.mean(axis=0)))
    policies: dict[str, np.ndarray] = {
        "random assignment": np.tile(shares, (len(logged), 1)),
        f"best single offer ({model.actions[best_single]})": np.full(len(logged), best_single),
        "response propensity": 1 + np.argmax(uplift + baseline[:, None], axis=1),
        "CIP uplift policy": chosen,
        **(extra or {}),
        "oracle": np.argmax(truth_v, axis=1),
    }
    reward = policy.realized_net(arms.y, arms.action, model.costs)
    q = net_reward_model(model, arms.X)
    oracle = float(truth_v.max(axis=1).mean())
    rows = []
    for name, pol in policies.items():
        pi = ope.policy_matrix(pol, len(model.actions))
        true = float((pi * truth_v).sum(axis=1).mean())
        est = ope.incremental_value(pol, logged, arms.prob, reward, q, clusters=arms.group, level=level)
        sent = 1.0 - float(pi[:, 0].mean())
        rows.append(
            {
                "policy": name,
                "true_value": true,
                "pct_of_oracle": 100.0 * true / oracle if oracle else float("nan"),
                "share_sent": sent,
                **{f"{k}_{f}": getattr(e, f) for k, e in est.items() for f in ("value", "low", "high")},
                **{f"{k}_covers": e.covers(true) for k, e in est.items()},
            }
        )
    return pd.DataFrame(rows), policies


def learner_table(settings: Any, ns: Any, truth_v: np.ndarray, trials: int) -> pd.DataFrame:
    """Every learner fitted on the same rows: validation Qini, test Qini, true value of its policy."""
    from training import ope, policy
    from training.nba import fit_nba, scoring_model

    fitted = fit_nba(settings, ns, trials=trials)
    arms = ns.arms("test")
    oracle = float(truth_v.max(axis=1).mean())
    rows = []
    for name, up in fitted.learners.items():
        fitted.chosen = name
        m = scoring_model(settings, ns, fitted)
        chosen, values = m.choose(arms.X)
        reward = policy.realized_net(arms.y, arms.action, m.costs)
        qini = []
        for k, a in enumerate(up.actions):
            sel = arms.arm(a) | arms.arm(up.control)
            qini.append(ope.qini_coefficient(values[sel, 1 + k], arms.arm(a)[sel], reward[sel]))
        true = float(truth_v[np.arange(len(chosen)), chosen].mean())
        rows.append(
            {
                "learner": name,
                "valid_qini": float(fitted.selection.loc[name, "mean"]),
                "valid_policy_qini": float(fitted.selection.loc[name, "policy_qini"]),
                "test_qini": float(np.nanmean(qini)),
                "true_value": true,
                "pct_of_oracle": 100 * true / oracle,
                "share_sent": float((chosen > 0).mean()),
            }
        )
    return pd.DataFrame(rows)


def feature_ceiling(
    settings: Any, ns: Any, model: Any, truth_v: np.ndarray, threads: int
) -> dict[str, float]:
    """What the features allow when the noise is gone: LightGBM fitted to the *true* net value of each
    action on the training exposures (truth as the target, a diagnostic only), its policy scored on the
    test exposures."""
    from training.estimator import GBMModel
    from training.uplift import EffectGBM

    train, valid = ns.rows("train"), ns.rows("valid")
    tv_train = true_net_values(exposure_truth(settings, train, model.actions), model.actions, model.costs)
    tv_valid = true_net_values(exposure_truth(settings, valid, model.actions), model.actions, model.costs)
    test = ns.rows("test")
    pred = np.zeros((len(test), len(model.actions)))
    for j in range(1, len(model.actions)):
        m: GBMModel = EffectGBM(task="regression", params={"learning_rate": 0.1}, num_threads=threads)
        m.fit(train[ns.features], tv_train[:, j], eval_set=(valid[ns.features], tv_valid[:, j]))
        pred[:, j] = m.predict(test[ns.features])
    chosen = np.argmax(pred, axis=1)
    value = float(truth_v[np.arange(len(chosen)), chosen].mean())
    corr = [float(np.corrcoef(pred[:, j], truth_v[:, j])[0, 1]) for j in range(1, len(model.actions))]
    return {
        "true_value": value,
        "pct_of_oracle": 100 * value / float(truth_v.max(axis=1).mean()),
        "corr_with_truth": dict(zip(model.actions[1:], np.round(corr, 3).tolist(), strict=True)),
    }


def value_correlations(model: Any, X: pd.DataFrame, truth_v: np.ndarray) -> dict[str, float]:
    """Correlation of the model's predicted net value of each action with the true one."""
    values = model.values(X)
    return {
        a: round(float(np.corrcoef(values[:, j], truth_v[:, j])[0, 1]), 3)
        for j, a in enumerate(model.actions)
        if j > 0
    }


def action_shares(actions: tuple[str, ...], chosen: np.ndarray) -> dict[str, float]:
    counts = np.bincount(chosen, minlength=len(actions)) / max(len(chosen), 1)
    return {a: round(float(c), 4) for a, c in zip(actions, counts, strict=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--data-dir", type=Path, default=Path("/tmp/cipbench/nba100k"))
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--history-days", type=int, default=364)
    ap.add_argument("--learners", action="store_true", help="also score every learner (refits them)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from cli.settings import Settings
    from features.config import FeatureConfig
    from training.config import TrainingConfig

    data = args.data_dir.resolve()
    env = {
        **os.environ,
        "CIP_DATA_DIR": str(data),
        "CIP_MLRUNS_DIR": str(data / "mlruns"),
        "CIP_FEATURES__HISTORY_DAYS": str(args.history_days),
    }
    report: dict[str, Any] = {"customers": args.customers, "data_dir": str(data), "trials": args.trials}
    if not world_ready(data):
        log(f"building a {args.customers:,}-customer world in {data}")
        report["world"] = build_world(data, args.customers, env)
    settings = Settings(
        data_dir=data,
        mlruns_dir=data / "mlruns_bench_nba",
        features=FeatureConfig(history_days=args.history_days),
        training=TrainingConfig(trials=args.trials, num_threads=args.threads),
    )

    import training.train as tr
    from training.nba_data import nba_set
    from training.nba_runtime import NBAModel

    log("training cip-nba through the product path")
    with PeakRss() as rss:
        t0 = time.perf_counter()
        result = tr.train(settings, "nba", trials=args.trials)
        wall = time.perf_counter() - t0
    report["train"] = {
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(rss.peak / 2**20),
        "version": result.version,
        "promoted": result.promoted,
        "learner": result.params.get("learner"),
        "rows": result.rows,
        "metrics": result.metrics,
        "campaigns": result.plan.as_dict(),
    }
    log(
        f"trained v{result.version} ({result.params.get('learner')}-learner) in {wall:.0f}s, peak {rss.peak / 2**20:.0f} MiB"
    )

    model = NBAModel.load(settings, result.version)
    ns = nba_set(settings)
    test = ns.rows("test")
    truth = exposure_truth(settings, test, model.actions)
    ok = truth["person_id"].notna().to_numpy()
    report["test_rows"] = int(len(test))
    report["test_rows_with_truth"] = int(ok.sum())
    report["test_customers"] = int(test["customer_id"].nunique())
    truth_v = true_net_values(truth, model.actions, model.costs)
    assert ok.all(), "every held-out exposure links to a person"
    level = settings.training.nba.confidence
    t0 = time.perf_counter()
    chosen, _ = model.choose(test)
    report["score_rows_per_s"] = len(test) / (time.perf_counter() - t0)
    table, _ = policy_table(model, ns, truth_v, level)
    report["policies"] = table.to_dict("records")
    report["true_mean_value_per_action"] = dict(
        zip(model.actions, truth_v.mean(axis=0).round(4), strict=True)
    )
    report["oracle_action_shares"] = action_shares(model.actions, np.argmax(truth_v, axis=1))
    report["cip_action_shares"] = action_shares(model.actions, chosen)
    pd.set_option("display.width", 200)
    print(table.round(4).to_string(index=False))
    print("true mean value per action:", report["true_mean_value_per_action"])
    print("oracle action shares:", {k: round(v, 3) for k, v in report["oracle_action_shares"].items()})
    print("CIP action shares:", {k: round(v, 3) for k, v in report["cip_action_shares"].items()})
    report["cip_value_corr_with_truth"] = value_correlations(model, test, truth_v)
    print("CIP predicted vs true net value, correlation per action:", report["cip_value_corr_with_truth"])
    report["feature_ceiling"] = feature_ceiling(settings, ns, model, truth_v, args.threads)
    print("feature ceiling (LightGBM on the true values):", report["feature_ceiling"])
    if args.learners:
        lt = learner_table(settings, ns, truth_v, args.trials)
        report["learners"] = lt.to_dict("records")
        print(lt.round(4).to_string(index=False))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
