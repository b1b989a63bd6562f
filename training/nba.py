"""Train the next-best-action model end to end: campaign log → uplift learners (S, T, X, DR) → the one
with the best Qini on the validation campaigns → off-policy evaluation on the test campaigns (IPW and
doubly robust, with intervals) → MLflow run → ``cip-nba`` version, champion only if its policy is worth
more than the champion's on the same held-out exposures.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from cip.contracts import OFFERS
from cip.errors import CipError
from training import ope, policy
from training.estimator import GBMModel
from training.nba_data import ORDERS, REVENUE, NbaSet, nba_set
from training.nba_runtime import NBAModel
from training.specs import NBA
from training.uplift import ACTION, Arms, UpliftModel, fit_learners

if TYPE_CHECKING:
    from training.config import TrainingSettings
    from training.train import TrainResult

Progress = Callable[[str, int, int], None]
#: Top fractions of uplift@k.
UPLIFT_AT = (0.1, 0.2, 0.3)
#: Reference policies evaluated next to the model's, on the same held-out exposures.
RANDOM = "random_assignment"
PROPENSITY = "response_propensity"


@dataclass
class NbaFit:
    """Fitted learners (on orders), the revenue-per-order model, the chosen learner and how each learner
    did on the validation campaigns."""

    learners: dict[str, UpliftModel]
    value: GBMModel
    chosen: str
    selection: pd.DataFrame  # learner × action Qini on validation, plus its mean
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> UpliftModel:
        return self.learners[self.chosen]


def actions_of(ns: NbaSet, control: str) -> tuple[str, ...]:
    """Treatment actions present in the training rows, in the contract's order."""
    seen = set(ns.rows("train")["offer"])
    return tuple(a for a in OFFERS if a in seen and a != control)


def outcome_base(settings: TrainingSettings) -> GBMModel:
    cfg = settings.training
    return GBMModel(
        task="regression",
        params={},
        max_rounds=cfg.max_rounds,
        early_stopping_rounds=cfg.early_stopping_rounds,
        calibrate=False,
        num_threads=cfg.num_threads,
        seed=settings.seed,
    )


def tune_outcome(
    settings: TrainingSettings, train: Arms, valid: Arms, trials: int, progress: Progress | None = None
) -> dict[str, Any]:
    """Optuna-tuned LightGBM parameters of the outcome models: one pooled model (action as an input)
    fitted on a sample of the training campaigns, judged on the validation campaigns."""
    from training.registry import optuna_storage
    from training.train import _sample
    from training.tuning import tune, unique_study_name

    cfg = settings.training
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    base = outcome_base(settings).set_params(categorical=(ACTION,))

    def frame(d: Arms) -> pd.DataFrame:
        return d.X.assign(**{ACTION: d.action})

    sample = _sample(len(train.y), cfg.tune_rows, settings.seed)
    params, _ = tune(
        base,
        frame(train).iloc[sample],
        pd.Series(train.y[sample]),
        (frame(valid), pd.Series(valid.y)),
        trials=trials,
        timeout=cfg.timeout_seconds,
        storage=optuna_storage(settings),
        study_name=unique_study_name("cip-nba"),
        seed=settings.seed,
        progress=progress,
    )
    return params


def value_model(settings: TrainingSettings, ns: NbaSet) -> GBMModel:
    """Expected revenue per order, from the exposures with orders (training campaigns; validation stops)."""
    tr, va = ns.rows("train"), ns.rows("valid")
    tr, va = tr[tr[ORDERS] > 0], va[va[ORDERS] > 0]
    if len(tr) < 2 or len(va) < 2:
        raise CipError("nba: no orders followed the exposures of the training or validation campaigns")
    return clone(outcome_base(settings)).fit(
        tr[ns.features], tr[REVENUE] / tr[ORDERS], eval_set=(va[ns.features], va[REVENUE] / va[ORDERS])
    )


def qini_table(models: dict[str, NBAModel], arms: Arms) -> pd.DataFrame:
    """Per learner: the Qini coefficient of each action (rows of that action and the control, ranked by
    its predicted net value, against the net value they realized), their mean, and ``policy_qini``: the
    area under the doubly robust uplift curve of the learner's whole policy (rows ranked by the chosen
    action's predicted value; DR terms with one common reward model, the T-learner's, so learners are
    compared on equal terms). The learner with the best ``policy_qini`` is chosen."""
    rows = []
    ref = next((m for n, m in models.items() if n != "s"), next(iter(models.values())))
    common = NBAModel(
        UpliftModel("t", ref.uplift.control, ref.uplift.actions, ref.features, ref.uplift.outcome)
        if ref.uplift.learner != "s"
        else ref.uplift,
        ref.value,
        ref.costs,
    )
    q = net_reward_model(common, arms.X)
    index = {a: j for j, a in enumerate(common.actions)}
    known = np.array([a in index for a in arms.action])
    logged = np.array([index.get(a, 0) for a in arms.action], dtype=np.int64)
    for name, m in models.items():
        values = m.values(arms.X)
        reward = policy.realized_net(arms.y, arms.action, m.costs)
        row: dict[str, Any] = {"learner": name}
        for k, a in enumerate(m.uplift.actions):
            sel = arms.arm(a) | arms.arm(m.uplift.control)
            row[a] = ope.qini_coefficient(values[sel, 1 + k], arms.arm(a)[sel], reward[sel])
        row["mean"] = float(np.nanmean([row[a] for a in m.uplift.actions]))
        chosen = policy.choose(values, m.min_value)
        gain = ope.dr_terms(chosen, logged, arms.prob, reward, q) - ope.dr_terms(
            np.zeros_like(chosen), logged, arms.prob, reward, q
        )
        score = np.where(chosen > 0, values[np.arange(len(values)), chosen], -np.inf)
        row["policy_qini"] = ope.policy_auuc(score[known], gain[known])
        rows.append(row)
    return pd.DataFrame(rows).set_index("learner")


def fit_nba(
    settings: TrainingSettings, ns: NbaSet, *, trials: int | None = None, progress: Progress | None = None
) -> NbaFit:
    """Tune the outcome models, fit every configured learner on the orders of the response window and
    the revenue-per-order model, keep the learner with the best mean validation Qini."""
    cfg = settings.training
    control = cfg.nba.control
    actions = actions_of(ns, control)
    train, valid = ns.arms("train", ORDERS), ns.arms("valid", ORDERS)
    if len(train.y) < cfg.min_rows:
        raise CipError(
            f"nba: only {len(train.y)} training exposures (at least {cfg.min_rows} needed)",
            fix="ingest a longer campaign log, or lower training.min_rows",
        )
    n = cfg.trials if trials is None else trials
    params: dict[str, Any] = {}
    if n > 0:
        params = tune_outcome(settings, train, valid, n, progress)
    base = outcome_base(settings).set_params(params=params)
    steps = len(cfg.nba.learners) + 1

    def report(what: str) -> None:
        if progress:
            progress(f"fitting the {what}", list(cfg.nba.learners).index(what.split("-")[0]), steps)

    learners = fit_learners(cfg.nba.learners, base, train, valid, control, actions, progress=report)
    if progress:
        progress("fitting the value-per-order model", steps - 1, steps)
    value = value_model(settings, ns)
    candidates = {
        name: NBAModel(m, value, dict(cfg.nba.costs), cfg.nba.min_value) for name, m in learners.items()
    }
    selection = qini_table(candidates, ns.arms("valid"))
    chosen = str(selection["policy_qini"].idxmax())
    return NbaFit(learners, value, chosen, selection, params)


# --- evaluation -----------------------------------------------------------------------------------------
def net_reward_model(model: NBAModel, X: pd.DataFrame) -> np.ndarray:
    """``q(x, a)``: the model's expected net reward of every action (control first), for DR estimates."""
    baseline, uplift = model.revenue(X)
    values = policy.net_values(uplift, baseline, model.uplift.actions, model.uplift.control, model.costs)
    control = model.costs.get(model.uplift.control)
    c_per, c_share = (0.0, 0.0) if control is None else (control.per_send, control.share_of_revenue)
    return values + ((1.0 - c_share) * baseline - c_per)[:, None]


def reference_policies(model: NBAModel, X: pd.DataFrame, shares: np.ndarray) -> dict[str, np.ndarray]:
    """Per row, the action column (or action probabilities) of the model's policy and of the reference
    policies: every single action for everyone, random assignment with the logged ``shares``, and
    response propensity (always an offer: the one with the highest predicted response, the way
    commercial tools rank)."""
    chosen, _ = model.choose(X)
    out = {"nba": chosen}
    out |= {f"all_{a}": np.full(len(X), j) for j, a in enumerate(model.actions)}
    out[PROPENSITY] = 1 + np.argmax(model.revenue(X)[1], axis=1)
    out[RANDOM] = np.tile(shares / shares.sum(), (len(X), 1))
    return out


def evaluate(model: NBAModel, ns: NbaSet, part: str, level: float) -> dict[str, Any]:
    """Qini and uplift@k per action, and IPW / DR incremental value of each policy on ``part``."""
    arms = ns.arms(part)
    index = {a: j for j, a in enumerate(model.actions)}
    known = np.array([a in index for a in arms.action])
    arms = arms.where(known)
    logged = np.array([index[a] for a in arms.action], dtype=np.int64)
    control = model.uplift.control
    values = model.values(arms.X)
    reward = policy.realized_net(arms.y, arms.action, model.costs)
    ranking: dict[str, dict[str, float]] = {}
    for k, a in enumerate(model.uplift.actions):
        sel = arms.arm(a) | arms.arm(control)
        t, y, s = arms.arm(a)[sel], reward[sel], values[sel, 1 + k]
        ranking[a] = {"qini": ope.qini_coefficient(s, t, y)}
        ranking[a] |= {f"uplift_at_{round(f * 100)}": ope.uplift_at_k(s, t, y, f) for f in UPLIFT_AT}
    q = net_reward_model(model, arms.X)
    shares = np.array([arms.share(a) for a in model.actions])
    estimates = {}
    for name, pol in reference_policies(model, arms.X, shares).items():
        est = ope.incremental_value(pol, logged, arms.prob, reward, q, clusters=arms.group, level=level)
        estimates[name] = {k: v.as_dict() for k, v in est.items()}
    return {"ranking": ranking, "policies": estimates, "rows": len(logged)}


# --- train, log, register, gate -----------------------------------------------------------------------
def train_nba(
    settings: TrainingSettings,
    *,
    trials: int | None = None,
    progress: Progress | None = None,
    store: Any = None,
) -> TrainResult:
    """Build the campaign training set, fit and choose the uplift learner, evaluate it off-policy on the
    test campaigns, log and register it; promote it if its policy beats the champion's."""
    started = time.perf_counter()
    if progress:
        progress("building the training set", 0, 1)
    ns = nba_set(settings, store)
    fitted = fit_nba(settings, ns, trials=trials, progress=progress)
    if progress:
        progress("off-policy evaluation and logging to MLflow", 1, 1)
    result = register_nba(settings, ns, fitted)
    result.seconds = time.perf_counter() - started
    return result


def scoring_model(settings: TrainingSettings, ns: NbaSet, fitted: NbaFit) -> NBAModel:
    cfg = settings.training
    return NBAModel(
        fitted.model,
        fitted.value,
        dict(cfg.nba.costs),
        cfg.nba.min_value,
        {
            "reasons": cfg.reasons,
            "horizon_days": NBA.horizon_days,
            "campaigns": ns.plan.as_dict(),
            "training_fingerprint": ns.fingerprint(),
        },
    )


def gate_value(model: NBAModel, candidate: NBAModel, ns: NbaSet, level: float) -> float:
    """DR incremental value of ``model``'s policy on the test campaigns (the candidate's reward model as
    the DR nuisance, so champion and candidate are judged on the same rows with the same ``q``)."""
    arms = ns.arms("test")
    index = {a: j for j, a in enumerate(candidate.actions)}
    known = np.array([a in index for a in arms.action])
    arms = arms.where(known)
    logged = np.array([index[a] for a in arms.action], dtype=np.int64)
    pos = {a: j for j, a in enumerate(model.actions)}
    chosen, _ = model.choose(arms.X)
    pol = np.array([index.get(model.actions[c], 0) for c in chosen], dtype=np.int64)
    if set(pos) - set(index):
        raise ValueError("the model sends actions the candidate cannot evaluate")
    reward = policy.realized_net(arms.y, arms.action, candidate.costs)
    q = net_reward_model(candidate, arms.X)
    return ope.incremental_value(pol, logged, arms.prob, reward, q, clusters=arms.group, level=level)[
        "dr"
    ].value


def _flat_metrics(selection: pd.DataFrame, report: dict[str, Any]) -> dict[str, float]:
    flat: dict[str, float] = {}
    for learner, row in selection.iterrows():
        flat |= {f"valid_qini_{learner}_{a}": float(v) for a, v in row.items()}
    for a, m in report["ranking"].items():
        flat |= {f"test_{k}_{a}": float(v) for k, v in m.items()}
    for name, est in report["policies"].items():
        for kind, e in est.items():
            flat |= {f"policy_{name}_{kind}": e["value"], f"policy_{name}_{kind}_low": e["low"]}
            flat[f"policy_{name}_{kind}_high"] = e["high"]
    flat["test_qini"] = float(np.nanmean([m["qini"] for m in report["ranking"].values()]))
    flat["test_dr_value"] = report["policies"]["nba"]["dr"]["value"]
    flat["test_ipw_value"] = report["policies"]["nba"]["ipw"]["value"]
    return {k: v for k, v in flat.items() if np.isfinite(v)}


def register_nba(settings: TrainingSettings, ns: NbaSet, fitted: NbaFit) -> TrainResult:
    """Evaluate the chosen learner, log the run to MLflow, register a ``cip-nba`` version and gate it."""
    import json

    import mlflow
    from mlflow.models import infer_signature

    from training.metrics import better
    from training.registry import CHAMPION, champion, connect, experiment_id
    from training.train import PIP_REQUIREMENTS, TrainResult, _pyfunc, _register

    cfg = settings.training
    model = scoring_model(settings, ns, fitted)
    report = evaluate(model, ns, "test", cfg.nba.confidence)
    new_metric = report["policies"]["nba"]["dr"]["value"]
    client = connect(settings)
    exp = experiment_id(settings, client, NBA.name)
    current = champion(client, NBA.registered)
    champion_metric = None
    if current is not None:
        try:
            old = NBAModel.load(settings, str(current.version))
            champion_metric = gate_value(old, model, ns, cfg.nba.confidence)
        except (KeyError, ValueError, OSError):  # a bundle this version cannot read
            champion_metric = None
    promote = (
        current is None
        or champion_metric is None
        or better(new_metric, champion_metric, NBA.greater_is_better, cfg.champion_tolerance)
    )
    test = ns.rows("test")
    X_te = test[model.features].astype(float)
    scored = model.score(X_te.head(200), reasons=0)
    with mlflow.start_run(experiment_id=exp, run_name=f"nba-{ns.plan.test[-1]}") as run:
        mlflow.log_params(
            {
                "feature_service": NBA.service,
                "n_features": len(model.features),
                "learner": fitted.chosen,
                "learners_tried": ",".join(fitted.learners),
                "control": model.uplift.control,
                "actions": ",".join(model.uplift.actions),
                "campaigns_train": ",".join(ns.plan.train),
                "campaigns_valid": ",".join(ns.plan.valid),
                "campaigns_test": ",".join(ns.plan.test),
                "horizon_days": NBA.horizon_days,
                "training_fingerprint": ns.fingerprint(),
                "costs": json.dumps({a: c.model_dump() for a, c in model.costs.items()}),
                "min_value": model.min_value,
                **{f"lgb_{k}": v for k, v in fitted.params.items()},
            }
        )
        rows = {p: int(m.sum()) for p, m in ns.parts.items()}
        flat = _flat_metrics(fitted.selection, report)
        flat |= {f"rows_{p}": float(n) for p, n in rows.items()}
        flat |= {f"left_out_{k}": float(v) for k, v in ns.left_out.items()}
        flat["gate_new"] = new_metric
        if champion_metric is not None:
            flat["gate_champion"] = champion_metric
        mlflow.log_metrics(flat)
        mlflow.log_dict({"feature_service": NBA.service, "features": model.features}, "feature_order.json")
        mlflow.log_dict(
            {"selection": fitted.selection.reset_index().to_dict("records"), **report}, "evaluation.json"
        )
        _log_plots(model, ns, report)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = model.save(Path(tmp) / "bundle")
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=_pyfunc(),
                artifacts={"bundle": str(bundle)},
                signature=infer_signature(X_te.head(200), scored[["next_best_action", "nba_value"]]),
                input_example=X_te.head(5),
                pip_requirements=PIP_REQUIREMENTS,
            )
        version = _register(client, NBA.registered, info, run.info.run_id)
        decision = "promoted" if promote else "kept the champion"
        mlflow.set_tags({"gate_decision": decision, "registered_version": version})
    client.set_model_version_tag(NBA.registered, version, "gate_decision", decision)
    client.set_model_version_tag(NBA.registered, version, f"test_{NBA.metric}", f"{new_metric:.6f}")
    if promote:
        client.set_registered_model_alias(NBA.registered, CHAMPION, version)
    baselines = {
        name: {"dr_value": est["dr"]["value"], "ipw_value": est["ipw"]["value"]}
        for name, est in report["policies"].items()
        if name != "nba"
    }
    metrics = {
        "dr_value": new_metric,
        "dr_low": report["policies"]["nba"]["dr"]["low"],
        "dr_high": report["policies"]["nba"]["dr"]["high"],
        "ipw_value": report["policies"]["nba"]["ipw"]["value"],
        "qini": flat["test_qini"] if "test_qini" in flat else float("nan"),
        "valid_qini": float(fitted.selection.loc[fitted.chosen, "mean"]),
        "valid_policy_qini": float(fitted.selection.loc[fitted.chosen, "policy_qini"]),
    }
    return TrainResult(
        NBA.name,
        version,
        run.info.run_id,
        promote,
        metrics,
        baselines,
        champion_metric,
        ns.plan,
        rows,
        params={"learner": fitted.chosen, **fitted.params},
    )


def _log_plots(model: NBAModel, ns: NbaSet, report: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    from training import plots

    arms = ns.arms("test")
    values = model.values(arms.X)
    reward = policy.realized_net(arms.y, arms.action, model.costs)
    control = model.uplift.control
    curves = {}
    for k, a in enumerate(model.uplift.actions):
        sel = arms.arm(a) | arms.arm(control)
        curves[a] = ope.qini_curve(values[sel, 1 + k], arms.arm(a)[sel], reward[sel])
    figures = {
        "qini.png": plots.qini_curves(curves),
        "policy_values.png": plots.policy_values(report["policies"]),
    }
    sample = ns.rows("test").head(2000)
    for a in model.uplift.actions:
        contrib = model.uplift.contributions(sample, a)
        figures[f"shap_uplift_{a}.png"] = plots.shap_summary(contrib, sample, model.features)
    for fname, fig in figures.items():
        mlflow.log_figure(fig, f"plots/{fname}")
        plt.close(fig)
