"""Traits as of a date: the feature snapshot at the end of ``as_of`` (one source of truth for every
aggregate), plus RFM scores and an RFM segment label.

``cip features build`` writes the lake table ``traits`` from the as-of snapshot it has just built
(:func:`write_traits`), so the snapshot SQL runs once per build; :func:`compute_traits` computes
traits for any other date."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from cip.errors import MissingInputError
from cip.lake import Lake
from features import catalog as cat
from features.config import FeatureSettings
from features.snapshots import SnapshotBuild, compute_snapshots, snapshot_schema
from pipelines.profiles.pipeline import default_as_of

RECENCY, FREQUENCY, MONETARY = "recency_days", "frequency", "monetary"

#: (segment, rule over r/f/m scores), first match wins; customers without orders are "no_orders".
RFM_SEGMENTS: tuple[tuple[str, Callable[[pd.Series, pd.Series], pd.Series]], ...] = (
    ("champions", lambda r, f: (r >= 4) & (f >= 4)),
    ("loyal", lambda r, f: f >= 4),
    ("promising", lambda r, f: r >= 4),
    ("at_risk", lambda r, f: (r <= 2) & (f >= 3)),
    ("hibernating", lambda r, f: r <= 2),
    ("needs_attention", lambda r, f: r >= 0),
)


def score(values: pd.Series, bins: int, higher_is_better: bool = True) -> pd.Series:
    """Quantile scores 1..bins (ties share a score); NaN stays NaN."""
    ranks = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(ranks * bins).clip(1, bins).astype("Int64")


def rfm_scores(traits: pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Add r/f/m scores and ``rfm_segment`` to a traits frame (customers with orders only)."""
    out = traits.copy()
    buyers = out[FREQUENCY].fillna(0) > 0
    out["r_score"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out["f_score"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out["m_score"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    out.loc[buyers, "r_score"] = score(out.loc[buyers, RECENCY], bins, higher_is_better=False)
    out.loc[buyers, "f_score"] = score(out.loc[buyers, FREQUENCY].astype(float), bins)
    out.loc[buyers, "m_score"] = score(out.loc[buyers, MONETARY], bins)
    segment = pd.Series("no_orders", index=out.index, dtype="object")
    r, f = out["r_score"], out["f_score"]
    unassigned = buyers.copy()
    for name, rule in RFM_SEGMENTS:
        hit = unassigned & rule(r.fillna(0), f.fillna(0)).astype(bool)
        segment[hit] = name
        unassigned &= ~hit
    out["rfm_segment"] = segment
    return out


def traits_from_snapshot(
    snapshot: pd.DataFrame, as_of: date, bins: int = 5, customers: pd.Series | None = None
) -> pd.DataFrame:
    """Traits from the snapshot taken the day after ``as_of``. ``customers`` (all known customer
    ids) adds a row for customers without any activity yet: no orders, no events."""
    snapshot = snapshot.drop(columns=[cat.TIMESTAMP_FIELD], errors="ignore")
    if customers is not None:
        snapshot = pd.DataFrame({"customer_id": customers.drop_duplicates()}).merge(
            snapshot, on="customer_id", how="left"
        )
        snapshot[FREQUENCY] = snapshot[FREQUENCY].fillna(0)
    snapshot.insert(1, "as_of", pd.Timestamp(as_of))
    return rfm_scores(snapshot, bins)


def compute_traits(
    lake: Lake, as_of: date, bins: int = 5, customers: pd.Series | None = None
) -> pd.DataFrame:
    """Traits at the end of ``as_of`` (activity up to and including that day), computed on their own."""
    snapshot = compute_snapshots(lake, [as_of + timedelta(days=1)]).to_pandas()
    return traits_from_snapshot(snapshot, as_of, bins, customers)


def write_traits(settings: FeatureSettings, build: SnapshotBuild | None = None) -> tuple[date, int]:
    """Write the lake table ``traits`` as of the last day with activity, for every customer with a
    profile; read from ``build``'s snapshot of the next day when it has one (computed otherwise).
    Returns the as-of date and the row count."""
    lake = Lake(settings.lake_dir)
    if not lake.has("profiles"):
        raise MissingInputError("profiles do not exist", fix="run `cip profiles` first")
    as_of = default_as_of(lake)
    customers = lake.read("profiles", columns=["customer_id"])["customer_id"]
    bins = settings.profiles.rfm_bins
    snapshot_file = build.directory / f"{(as_of + timedelta(days=1)).isoformat()}.parquet" if build else None
    if snapshot_file is not None and snapshot_file.exists():
        table = pq.read_table(snapshot_file).cast(snapshot_schema()).sort_by([(cat.JOIN_KEY, "ascending")])
        traits = traits_from_snapshot(table.to_pandas(), as_of, bins, customers)
    else:
        traits = compute_traits(lake, as_of, bins, customers)
    lake.write_derived("traits", traits)
    return as_of, len(traits)
