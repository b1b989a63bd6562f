"""Segment memberships of a run and how they moved since the previous run (pure frame functions)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from cip.errors import CipError
from training.segments import SegmentBook

KEY = "customer_id"
CHANGES = ("enter", "exit", "stay")


def segment_input(
    scores: pd.DataFrame, traits: pd.DataFrame, fields: Iterable[str] | None = None
) -> pd.DataFrame:
    """What rules read, one row per scored customer: the scores, then the traits (by customer id).
    Columns both hold keep the scores'. ``fields`` (e.g. ``SegmentBook.inputs``) keeps only the
    columns rules read, besides ``customer_id``."""
    keep = None if fields is None else set(fields)
    cols = [c for c in scores.columns if c == KEY or keep is None or c in keep]
    extra = [
        c
        for c in traits.columns
        if c not in scores.columns and c not in (KEY, "as_of") and (keep is None or c in keep)
    ]
    for name, frame in (("scores", scores), ("traits", traits)):
        if not frame[KEY].is_unique:
            dup = frame.loc[frame[KEY].duplicated(), KEY].iloc[0]
            raise CipError(
                f"the {name} hold customer {dup} more than once (one row per customer_id expected)",
                fix="rebuild them: `cip profiles` for traits, `cip score` for scores",
            )
    picked = traits[[KEY, *extra]].set_index(KEY).reindex(scores[KEY].to_numpy())
    return pd.DataFrame(
        {
            **{c: scores[c].array for c in cols},
            **{c: picked[c].array for c in extra},
        }
    )


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
    # each (segment, customer) pair as one integer whose order is the pair's sort order
    ids, id_values = _sorted_codes(pd.concat([current[KEY], previous[KEY]], ignore_index=True))
    segs, seg_values = _sorted_codes(pd.concat([current["segment"], previous["segment"]], ignore_index=True))
    n_ids = max(len(id_values), 1)
    pair = segs * n_ids + ids
    now, before = _unique(pair[: len(current)]), _unique(pair[len(current) :])
    pairs = _unique(np.concatenate([now, before]))
    in_now = np.isin(pairs, now, assume_unique=True)
    in_before = np.isin(pairs, before, assume_unique=True)
    change = np.where(in_now & in_before, "stay", np.where(in_now, "enter", "exit")).astype(object)
    return pd.DataFrame(
        {
            KEY: np.asarray(id_values, dtype=object)[pairs % n_ids],
            "segment": np.asarray(seg_values, dtype=object)[pairs // n_ids],
            "change": change,
        }
    )


def _sorted_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes whose order is the values' sort order, and the sorted distinct values."""
    codes, uniques = pd.factorize(values)
    if (codes < 0).any():
        raise CipError(
            f"a segment membership has no {values.name or 'value'}",
            fix="every membership row needs a customer_id and a segment: re-run `cip score`",
        )
    uniques = np.asarray(uniques, dtype=object)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], uniques[order]


def _unique(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (by sorting: faster than a hash for millions of integers)."""
    a = np.sort(a)
    return a[np.r_[True, a[1:] != a[:-1]]] if len(a) else a


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
