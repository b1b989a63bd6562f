"""Reason codes: the top feature contributions behind each score, in words from the feature catalogue."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features import catalog as cat

#: Descriptions of model inputs that are not catalogue features.
EXTRA_DESCRIPTIONS = {"category": "The product category being scored."}


def describe(feature: str) -> str:
    f = cat.FEATURES.get(feature)
    return f.description if f is not None else EXTRA_DESCRIPTIONS.get(feature, feature)


def top_reasons(
    contributions: np.ndarray, features: list[str], values: pd.DataFrame, k: int
) -> list[list[dict[str, Any]]]:
    """Per row, the ``k`` features with the largest absolute contribution to the raw score.

    ``contributions`` is LightGBM's ``pred_contrib`` output (last column = base value). Each reason
    has the feature, its value, its signed contribution (raw-score units: log-odds for probabilities)
    and the catalogue's description.
    """
    if k <= 0 or len(contributions) == 0:
        return [[] for _ in range(len(contributions))]
    contrib = contributions[:, : len(features)]
    top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
    vals = values[features].to_numpy(dtype=object)
    out = []
    for i, idx in enumerate(top):
        out.append(
            [
                {
                    "feature": features[j],
                    "value": _plain(vals[i, j]),
                    "contribution": round(float(contrib[i, j]), 6),
                    "description": describe(features[j]),
                }
                for j in idx
            ]
        )
    return out


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        return v.item()
    return v
