"""Reason codes: the top feature contributions behind each score, in words from the feature catalogue.

:func:`top_reasons` gives them as records (``{feature, value, contribution, description}`` per
reason, for the API and code); :func:`top_reasons_json` as the compact JSON text of those records,
one string per row, byte for byte what ``json`` would write for them (for the scores table and
exports, without building a dict per reason).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd

from features import catalog as cat

#: Descriptions of model inputs that are not catalogue features.
EXTRA_DESCRIPTIONS = {"category": "The product category being scored."}

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def describe(feature: str) -> str:
    f = cat.FEATURES.get(feature)
    return f.description if f is not None else EXTRA_DESCRIPTIONS.get(feature, feature)


def rank(contributions: np.ndarray, n_features: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the columns of the ``k`` largest absolute contributions (ties: the earlier feature
    first) and those contributions rounded to 6 decimals; the base value column is left out."""
    contrib = np.asarray(contributions)[:, :n_features]
    top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
    return top, np.round(np.take_along_axis(contrib, top, axis=1), 6)


def top_reasons(
    contributions: np.ndarray, features: list[str], values: pd.DataFrame, k: int
) -> list[list[dict[str, Any]]]:
    """Per row, the ``k`` features with the largest absolute contribution to the raw score.

    ``contributions`` is the output of ``GBMModel.contributions`` (last column = base value). Each
    reason has the feature, its value, its signed contribution (raw-score units: log-odds for
    probabilities) and the catalogue's description.
    """
    if k <= 0 or len(contributions) == 0:
        return [[] for _ in range(len(contributions))]
    top, contrib = rank(contributions, len(features), k)
    vals = _values(values, features, top)
    descriptions = [describe(f) for f in features]
    return [
        [
            {"feature": features[j], "value": v, "contribution": c, "description": descriptions[j]}
            for j, v, c in zip(idx, row_vals, row_c, strict=True)
        ]
        for idx, row_vals, row_c in zip(top.tolist(), vals.tolist(), contrib.tolist(), strict=True)
    ]


def top_reasons_json(
    contributions: np.ndarray, features: list[str], values: pd.DataFrame, k: int
) -> list[str]:
    """:func:`top_reasons` as compact JSON text per row (``json`` with ``separators=(",", ":")``,
    ``ensure_ascii=False``), built from pre-encoded pieces."""
    if k <= 0 or len(contributions) == 0:
        return ["[]"] * len(contributions)
    top, contrib = rank(contributions, len(features), k)
    vals = _values(values, features, top)
    head = [f'{{"feature":{_ENCODE(f)},"value":' for f in features]
    tail = [f',"description":{_ENCODE(describe(f))}}}' for f in features]
    value = _json_value
    return [
        "["
        + ",".join(
            [
                f'{head[j]}{value(v)},"contribution":{value(c)}{tail[j]}'
                for j, v, c in zip(idx, row_vals, row_c, strict=True)
            ]
        )
        + "]"
        for idx, row_vals, row_c in zip(top.tolist(), vals.tolist(), contrib.tolist(), strict=True)
    ]


def _values(values: pd.DataFrame, features: list[str], top: np.ndarray) -> np.ndarray:
    """The frame's value of each chosen feature, as plain Python values (missing: ``None``)."""
    out = np.empty(top.shape, dtype=object)
    for j in np.unique(top):
        rows, cols = np.nonzero(top == j)
        column = values[features[j]]
        if column.dtype.kind == "f":  # the common case, without a Python call per value
            picked = column.to_numpy()[rows]
            plain = picked.astype(object)
            plain[np.isnan(picked)] = None
            out[rows, cols] = plain
        else:
            out[rows, cols] = [_plain(v) for v in column.to_numpy(dtype=object)[rows]]
    return out


def _json_value(v: Any) -> str:
    if v is None:
        return "null"
    if type(v) is float:
        if not math.isfinite(v):
            return _ENCODE(v)  # raises, as json does
        return float.__repr__(v)
    return _ENCODE(v)


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
        return None if isinstance(v, float) and np.isnan(v) else v
    return v
