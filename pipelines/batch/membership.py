"""Segment memberships of a run and how they moved since the previous run (pure frame functions)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from training.segments import SegmentBook

KEY = "customer_id"
CHANGES = ("enter", "exit", "stay")


def segment_input(scores: pd.DataFrame, traits: pd.DataFrame) -> pd.DataFrame:
    """What rules read, one row per scored customer: the scores, then the traits (by customer id).
    Columns both hold keep the scores'."""
    extra = [c for c in traits.columns if c not in scores.columns and c != "as_of"]
    return scores.merge(traits[[KEY, *extra]], on=KEY, how="left", validate="one_to_one")


def assign(book: SegmentBook, frame: pd.DataFrame, thresholds: Mapping[str, float]) -> pd.DataFrame:
    """Memberships, long (``customer_id, segment``), sorted by segment (declaration order) then
    customer, so that equal inputs give equal tables."""
    members = book.assign(frame, thresholds)
    order = {name: i for i, name in enumerate(book.names)}
    members["_o"] = members["segment"].map(order)
    return members.sort_values(["_o", KEY], kind="stable").drop(columns="_o").reset_index(drop=True)


def diff(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """``customer_id, segment, change``: ``enter`` (in current only), ``exit`` (in previous only)
    or ``stay`` (in both). With no previous run every member enters."""
    prev = previous[[KEY, "segment"]].drop_duplicates()
    cur = current[[KEY, "segment"]].drop_duplicates()
    both = cur.merge(prev, on=[KEY, "segment"], how="outer", indicator=True)
    change = np.select(
        [both["_merge"] == "left_only", both["_merge"] == "right_only"], ["enter", "exit"], default="stay"
    )
    out = both[[KEY, "segment"]].assign(change=change)
    return out.sort_values(["segment", KEY], kind="stable").reset_index(drop=True)


def summary(changes: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Per segment (declared ones first, in order, then segments only the previous run had):
    members now, entered, exited, stayed, and members in the previous run."""
    counts = (pd.crosstab(changes["segment"], changes["change"]) if len(changes) else pd.DataFrame()).reindex(
        columns=list(CHANGES), fill_value=0
    )
    order = [*names, *sorted(set(counts.index) - set(names))]
    counts = counts.reindex(order, fill_value=0)
    out = pd.DataFrame(
        {
            "segment": counts.index,
            "members": (counts["enter"] + counts["stay"]).to_numpy(),
            "entered": counts["enter"].to_numpy(),
            "exited": counts["exit"].to_numpy(),
            "stayed": counts["stay"].to_numpy(),
            "previous": (counts["exit"] + counts["stay"]).to_numpy(),
        }
    )
    return out.astype({c: "int64" for c in out.columns if c != "segment"})
