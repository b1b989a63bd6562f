"""Point-in-time labels from resolved activity (pure: DataFrames in, DataFrames out).

A cutoff is a snapshot date ``d`` (00:00 UTC). Features of a row at ``d`` see activity before ``d``;
its label looks at ``[d, d + horizon)``. So no label window overlaps the features of its row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd

from cip.errors import CipError

KEY = "customer_id"
TS = "event_timestamp"


class LabelWindowError(CipError):
    """A cutoff's label window reaches past the data."""


def cutoff_ts(d: date) -> pd.Timestamp:
    return pd.Timestamp(d, tz="UTC")


def window_complete(d: date, horizon_days: int, last_activity: date) -> bool:
    """True when ``[d, d + horizon)`` ends by the end of ``last_activity`` (the data's last day)."""
    return d + timedelta(days=horizon_days) <= last_activity + timedelta(days=1)


def require_complete(cutoffs: Iterable[date], horizon_days: int, last_activity: date) -> None:
    """Refuse cutoffs whose label window is not complete in the data."""
    bad = [d for d in cutoffs if not window_complete(d, horizon_days, last_activity)]
    if bad:
        latest = last_activity + timedelta(days=1) - timedelta(days=horizon_days)
        raise LabelWindowError(
            f"cutoff {bad[0].isoformat()} needs {horizon_days} days of outcomes after it, but the data "
            f"ends on {last_activity.isoformat()}",
            fix=f"use cutoffs on or before {latest.isoformat()}, or ingest newer data",
        )


def _in_window(ts: pd.Series, d: date, start_days: int, end_days: int) -> np.ndarray:
    t0 = cutoff_ts(d)
    return ((ts >= t0 + pd.Timedelta(days=start_days)) & (ts < t0 + pd.Timedelta(days=end_days))).to_numpy()


def active_customers(orders: pd.DataFrame, d: date, active_days: int) -> np.ndarray:
    """Customers with an order in ``[d - active_days, d)``."""
    mask = _in_window(orders["ts"], d, -active_days, 0)
    return np.sort(orders.loc[mask, KEY].unique())


def churn_labels(
    orders: pd.DataFrame, cutoffs: Sequence[date], horizon_days: int, active_days: int
) -> pd.DataFrame:
    """``label = 1`` when a customer active before the cutoff orders nothing in the horizon."""
    frames = []
    for d in cutoffs:
        active = active_customers(orders, d, active_days)
        bought = orders.loc[_in_window(orders["ts"], d, 0, horizon_days), KEY].unique()
        frames.append(
            pd.DataFrame(
                {KEY: active, TS: cutoff_ts(d), "label": (~pd.Series(active).isin(bought)).to_numpy(np.int8)}
            )
        )
    return _concat(frames, {"label": np.int8})


def clv_labels(
    orders: pd.DataFrame, first_seen: pd.DataFrame, cutoffs: Sequence[date], horizon_days: int
) -> pd.DataFrame:
    """Spend (base currency) in the horizon, for every customer seen before the cutoff."""
    frames = []
    for d in cutoffs:
        known = np.sort(first_seen.loc[first_seen["first_ts"] < cutoff_ts(d), KEY].unique())
        window = orders.loc[_in_window(orders["ts"], d, 0, horizon_days)]
        spend = window.groupby(KEY)["amount_base"].sum()
        value = spend.reindex(known).fillna(0.0).to_numpy(dtype=float)
        frames.append(pd.DataFrame({KEY: known, TS: cutoff_ts(d), "label": np.round(value, 2)}))
    return _concat(frames, {"label": float})


def propensity_labels(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    cutoffs: Sequence[date],
    horizon_days: int,
    active_days: int,
    categories: Sequence[str],
) -> pd.DataFrame:
    """One row per active customer and category: ``label = 1`` after a purchase in that category."""
    frames = []
    cats = np.array(list(categories), dtype=object)
    for d in cutoffs:
        active = active_customers(orders, d, active_days)
        window = lines.loc[_in_window(lines["ts"], d, 0, horizon_days), [KEY, "category"]].drop_duplicates()
        bought = set(zip(window[KEY], window["category"], strict=True))
        cust = np.repeat(active, len(cats))
        cat = np.tile(cats, len(active))
        label = np.fromiter(((c, k) in bought for c, k in zip(cust, cat, strict=True)), bool, len(cust))
        frames.append(
            pd.DataFrame({KEY: cust, TS: cutoff_ts(d), "category": cat, "label": label.astype(np.int8)})
        )
    return _concat(frames, {"label": np.int8})


def _concat(frames: list[pd.DataFrame], dtypes: dict) -> pd.DataFrame:
    if not frames:
        return pd.DataFrame({KEY: pd.Series(dtype=object), TS: pd.Series(dtype="datetime64[ns, UTC]")})
    return pd.concat(frames, ignore_index=True).astype(dtypes)
