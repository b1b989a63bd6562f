"""Training sets: cutoffs chosen from the feature store's snapshots, labels joined to features through
the model's FeatureService, split by time (train on earlier cutoffs, validate and test on later)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cip.categories import CATEGORIES
from cip.errors import CipError, MissingInputError
from cip.sql import quote_ident
from features import catalog as cat
from training import labels as lb
from training.specs import ACTIVE_DAYS, ModelSpec

if TYPE_CHECKING:
    from training.config import TrainingSettings

#: Extra model input of the propensity model (the category being scored).
CATEGORY = "category"


@dataclass
class Activity:
    """The resolved activity a label needs (read from the lake by :func:`read_activity`)."""

    orders: pd.DataFrame  # customer_id, ts, amount_base
    lines: pd.DataFrame  # customer_id, ts, category
    first_seen: pd.DataFrame  # customer_id, first_ts
    last_day: date  # last UTC day with any activity


@dataclass
class CutoffPlan:
    train: list[date]
    valid: date
    test: date

    @property
    def all(self) -> list[date]:
        return [*self.train, self.valid, self.test]


@dataclass
class TrainingSet:
    """Rows of one model: features of its FeatureService + label, with the part each row is in."""

    spec: ModelSpec
    plan: CutoffPlan
    frame: pd.DataFrame  # customer_id, event_timestamp, [category], label, features…
    features: list[str]  # model inputs, in order
    parts: dict[str, np.ndarray] = field(default_factory=dict)

    def part(self, name: str) -> tuple[pd.DataFrame, pd.Series]:
        rows = self.frame[self.parts[name]]
        return rows[self.features], rows["label"]

    def rows(self, name: str) -> pd.DataFrame:
        return self.frame[self.parts[name]]

    def fingerprint(self) -> str:
        """A hash of every training value (features, labels, keys), stable across runs."""
        import hashlib

        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()[:32]


def read_activity(settings: TrainingSettings) -> Activity:
    """Orders, order lines and first activity per customer from the lake's resolved tables."""
    from cip.lake import Lake

    lake = Lake(settings.lake_dir)
    if not lake.has("customer_orders"):
        raise MissingInputError(
            "the lake has no resolved orders (customer_orders)",
            fix="run `cip profiles` (after `cip ingest` and `cip identity run`) before training",
        )
    tables = [t for t in ("customer_orders", "customer_events", "customer_email_events") if lake.has(t)]
    con = lake.connect([*tables, *(["customer_order_lines"] if lake.has("customer_order_lines") else [])])
    try:
        con.execute("SET TimeZone = 'UTC'")
        orders = con.sql("SELECT customer_id, ts, amount_base FROM customer_orders").df()
        lines = (
            con.sql("SELECT customer_id, ts, category FROM customer_order_lines").df()
            if lake.has("customer_order_lines")
            else pd.DataFrame({"customer_id": [], "ts": [], "category": []})
        )
        union = " UNION ALL ".join(
            f"SELECT customer_id, min(ts) AS lo, max(ts) AS hi FROM {quote_ident(t)} GROUP BY 1"
            for t in tables
        )
        spans = con.sql(
            f"SELECT customer_id, min(lo) AS first_ts, max(hi) AS last_ts FROM ({union}) GROUP BY 1"
        ).df()
    finally:
        con.close()
    first_seen = spans[["customer_id", "first_ts"]]
    last = spans["last_ts"].max() if len(spans) else None
    for frame, col in ((orders, "ts"), (lines, "ts"), (first_seen, "first_ts")):
        if not isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        elif str(frame[col].dt.tz) != "UTC":
            frame[col] = frame[col].dt.tz_convert("UTC")
    if last is None or pd.isna(last):
        raise MissingInputError("the lake has no activity", fix="ingest data first (`cip ingest`)")
    last = pd.Timestamp(last)
    last = last.tz_convert("UTC") if last.tzinfo else last.tz_localize("UTC")
    return Activity(orders, lines, first_seen, last.date())


def snapshot_cutoffs(settings: TrainingSettings, last_day: date) -> list[date]:
    """Snapshot dates usable as cutoffs: the long-history grid of the feature config, as built."""
    from features.snapshots import snapshot_dates_on_disk

    on_disk = set(snapshot_dates_on_disk(settings))
    if not on_disk:
        raise MissingInputError(
            "no feature snapshots exist yet", fix="run `cip features build` (and apply) before training"
        )
    grid = set(settings.features.month_dates(last_day + timedelta(days=1)))
    return sorted(on_disk & grid)


def plan_cutoffs(candidates: list[date], spec: ModelSpec, last_day: date, n_train: int) -> CutoffPlan:
    """Latest complete cutoff tests, the one before validates, up to ``n_train`` before that train."""
    complete = [d for d in candidates if lb.window_complete(d, spec.horizon_days, last_day)]
    if len(complete) < 3:
        have = ", ".join(d.isoformat() for d in candidates) or "none"
        raise lb.LabelWindowError(
            f"{spec.name} needs 3 cutoffs whose {spec.horizon_days}-day label window is complete "
            f"(data ends {last_day.isoformat()}); snapshot cutoffs: {have}",
            fix="ingest more history, or raise features.label_history_months and rebuild features",
        )
    return CutoffPlan(train=complete[-2 - n_train : -2], valid=complete[-2], test=complete[-1])


def make_labels(spec: ModelSpec, activity: Activity, cutoffs: list[date]) -> pd.DataFrame:
    """The spec's labels at ``cutoffs``, refusing any whose window is incomplete."""
    lb.require_complete(cutoffs, spec.horizon_days, activity.last_day)
    if spec.name == "churn":
        return lb.churn_labels(activity.orders, cutoffs, spec.horizon_days, ACTIVE_DAYS)
    if spec.name == "clv":
        return lb.clv_labels(activity.orders, activity.first_seen, cutoffs, spec.horizon_days)
    if spec.name == "propensity":
        return lb.propensity_labels(
            activity.orders, activity.lines, cutoffs, spec.horizon_days, ACTIVE_DAYS, CATEGORIES
        )
    raise CipError(f"no labels are defined for model '{spec.name}'")


def model_inputs(spec: ModelSpec) -> list[str]:
    """Model inputs: the service's numeric features (absolute timestamps are left to the request-time
    recency features), plus the category for the propensity model."""
    names = [n for n in cat.service_features(spec.service) if cat.FEATURES[n].kind in ("float", "int")]
    return [*names, CATEGORY] if spec.name == "propensity" else names


def categorical_inputs(spec: ModelSpec) -> tuple[str, ...]:
    return (CATEGORY,) if spec.name == "propensity" else ()


def training_set(store: Any, spec: ModelSpec, activity: Activity, plan: CutoffPlan) -> TrainingSet:
    """Labels at the plan's cutoffs joined point-in-time to the spec's FeatureService."""
    labels = make_labels(spec, activity, plan.all)
    if labels.empty:
        raise CipError(f"{spec.name}: no customers to label at cutoffs {[d.isoformat() for d in plan.all]}")
    frame = store.training_frame(spec.service, labels)
    ts = frame[lb.TS].dt.date
    parts = {
        "train": ts.isin(plan.train).to_numpy(),
        "valid": (ts == plan.valid).to_numpy(),
        "test": (ts == plan.test).to_numpy(),
    }
    return TrainingSet(spec, plan, frame, model_inputs(spec), parts)
