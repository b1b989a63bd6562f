"""The next-best-action training set: randomized campaign exposures, each with its outcome in the
response window (a purchase, and its revenue, from the resolved orders) and the ``nba_v1`` features of
the customer as of the exposure (point in time), split by campaign.

Rows left out, and counted: exposures whose response window has not ended in the data (immature),
exposures with no feature snapshot within the views' TTL before them (uncovered), and customers
exposed more than once in one campaign (their outcome answers several offers).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cip.errors import CipError, MissingInputError
from training.datasets import model_inputs, read_activity
from training.labels import KEY, TS
from training.specs import NBA
from training.uplift import Arms

if TYPE_CHECKING:
    from training.config import TrainingSettings

#: Outcome columns of a row.
REVENUE = "revenue"
ORDERS = "orders"
PURCHASED = "purchased"
EXPOSURE_COLUMNS = (
    "customer_id",
    "exposure_id",
    "campaign_id",
    "offer",
    "assignment_probability",
    "exposed_at",
)


@dataclass
class CampaignPlan:
    """Campaigns by role: older ones train, the next validate (learner choice), the latest test."""

    train: list[str]
    valid: list[str]
    test: list[str]

    def as_dict(self) -> dict[str, list[str]]:
        return {"train": self.train, "valid": self.valid, "test": self.test}


@dataclass
class NbaSet:
    """Exposure rows: keys, action, logged probability, outcomes and the model inputs."""

    frame: pd.DataFrame
    features: list[str]
    plan: CampaignPlan
    parts: dict[str, np.ndarray]
    left_out: dict[str, int] = field(default_factory=dict)

    def rows(self, part: str) -> pd.DataFrame:
        return self.frame[self.parts[part]]

    def arms(self, part: str, outcome: str = REVENUE) -> Arms:
        """The part's rows as logged arms, with ``outcome`` (revenue or orders) as ``y``."""
        rows = self.rows(part)
        return Arms(
            rows[self.features],
            rows["offer"].to_numpy(object),
            rows[outcome].to_numpy(float),
            rows["assignment_probability"].to_numpy(float),
            rows[KEY].to_numpy(object),
        )

    def fingerprint(self) -> str:
        hashed = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        return hashlib.sha256(hashed.tobytes()).hexdigest()[:32]


def read_exposures(settings: TrainingSettings) -> pd.DataFrame:
    """The resolved campaign log (``customer_exposures``)."""
    from cip.lake import Lake

    lake = Lake(settings.lake_dir)
    if not lake.has("customer_exposures"):
        raise MissingInputError(
            "the lake has no resolved campaign exposures (customer_exposures)",
            fix="ingest a campaign_exposures.csv, then run `cip identity run` and `cip profiles`",
        )
    con = lake.connect(["customer_exposures"])
    try:
        con.execute("SET TimeZone = 'UTC'")
        cols = ", ".join(EXPOSURE_COLUMNS)
        frame = con.sql(f"SELECT {cols} FROM customer_exposures ORDER BY exposed_at, exposure_id").df()
    finally:
        con.close()
    frame["exposed_at"] = pd.to_datetime(frame["exposed_at"], utc=True)
    return frame


def window_outcomes(exposures: pd.DataFrame, orders: pd.DataFrame, days: int) -> pd.DataFrame:
    """``purchased`` (0/1) and ``revenue`` of each exposure: orders in ``[exposed_at, exposed_at + days)``."""
    ex = exposures[[KEY, "exposed_at"]].reset_index(drop=True).assign(_row=lambda f: np.arange(len(f)))
    od = orders.loc[orders[KEY].isin(ex[KEY].unique()), [KEY, "ts", "amount_base"]]
    if len(ex):
        od = od[od["ts"] >= ex["exposed_at"].min()]
    j = ex.merge(od, on=KEY, how="inner")
    j = j[(j["ts"] >= j["exposed_at"]) & (j["ts"] < j["exposed_at"] + pd.Timedelta(days=days))]
    agg = j.groupby("_row").agg(orders=("ts", "size"), revenue=("amount_base", "sum"))
    orders_n = agg["orders"].reindex(ex["_row"]).fillna(0).to_numpy(np.int64)
    revenue = agg["revenue"].reindex(ex["_row"]).fillna(0.0).to_numpy(float)
    return pd.DataFrame(
        {PURCHASED: (orders_n > 0).astype(np.int8), ORDERS: orders_n, REVENUE: np.round(revenue, 2)},
        index=exposures.index,
    )


def matured(exposed_at: pd.Series, last_day: date, days: int) -> np.ndarray:
    """Exposures whose response window ends by the end of ``last_day`` (the data's last day)."""
    end = pd.Timestamp(last_day, tz="UTC") + pd.Timedelta(days=1)
    return (exposed_at + pd.Timedelta(days=days) <= end).to_numpy()


def covered(exposed_at: pd.Series, snapshots: list[date], ttl_days: int) -> np.ndarray:
    """Exposures with a feature snapshot at most ``ttl_days`` before them (what the point-in-time join
    can fill)."""
    if not snapshots:
        return np.zeros(len(exposed_at), dtype=bool)
    snap = np.array([pd.Timestamp(d, tz="UTC").value for d in sorted(snapshots)], dtype=np.int64)
    t = exposed_at.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    pos = np.searchsorted(snap, t, side="right") - 1
    ok = pos >= 0
    age = t - snap[np.maximum(pos, 0)]
    return ok & (age <= pd.Timedelta(days=ttl_days).value)


def single_exposures(exposures: pd.DataFrame) -> np.ndarray:
    """Rows of customers exposed exactly once in their campaign."""
    n = exposures.groupby([KEY, "campaign_id"])["exposure_id"].transform("size")
    return (n == 1).to_numpy()


def plan_campaigns(exposures: pd.DataFrame, n_valid: int, n_test: int) -> CampaignPlan:
    """Campaigns in time order (first exposure): the last ``n_test`` test, the ``n_valid`` before
    validate, the rest train."""
    first = exposures.groupby("campaign_id")["exposed_at"].min().sort_values(kind="stable")
    order = list(first.index)
    if len(order) < n_valid + n_test + 1:
        raise CipError(
            f"next-best-action needs at least {n_valid + n_test + 1} campaigns with matured, feature-covered "
            f"exposures ({n_valid} to validate, {n_test} to test, 1+ to train); found {len(order)}",
            fix="ingest a longer campaign log, raise features.history_days and rebuild features, or lower "
            "training.nba.valid_campaigns / test_campaigns",
        )
    return CampaignPlan(
        train=order[: len(order) - n_valid - n_test],
        valid=order[len(order) - n_valid - n_test : len(order) - n_test],
        test=order[len(order) - n_test :],
    )


def nba_set(settings: TrainingSettings, store: Any = None) -> NbaSet:
    """The exposure rows of every matured, feature-covered campaign, with outcomes and ``nba_v1``."""
    from features.snapshots import snapshot_dates_on_disk
    from features.store import open_store

    cfg = settings.training.nba
    days = NBA.horizon_days
    exposures = read_exposures(settings)
    activity = read_activity(settings)
    snapshots = snapshot_dates_on_disk(settings)
    if not snapshots:
        raise MissingInputError(
            "no feature snapshots exist yet", fix="run `cip features build` (and apply) before training"
        )
    ok_mature = matured(exposures["exposed_at"], activity.last_day, days)
    ok_cover = covered(exposures["exposed_at"], snapshots, settings.features.ttl_days)
    ok_single = single_exposures(exposures)
    left_out = {
        "immature": int((~ok_mature).sum()),
        "no_snapshot": int((ok_mature & ~ok_cover).sum()),
        "several_in_campaign": int((ok_mature & ok_cover & ~ok_single).sum()),
    }
    keep = exposures[ok_mature & ok_cover & ok_single].reset_index(drop=True)
    plan = plan_campaigns(keep, cfg.valid_campaigns, cfg.test_campaigns)
    keep = pd.concat([keep, window_outcomes(keep, activity.orders, days)], axis=1)
    entity = keep.rename(columns={"exposed_at": TS})
    frame = (store or open_store(settings)).training_frame(NBA.service, entity)
    campaign = frame["campaign_id"]
    parts = {role: campaign.isin(ids).to_numpy() for role, ids in plan.as_dict().items()}
    actions = set(frame["offer"])
    if cfg.control not in actions:
        raise CipError(
            f"no exposure got the control action '{cfg.control}'; uplift needs a randomized control group",
            fix="log a no-offer arm in the campaigns, or set training.nba.control to an action that was sent",
        )
    return NbaSet(frame, model_inputs(NBA), plan, parts, left_out)
