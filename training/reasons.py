"""Reason codes: the top feature contributions behind each score, in words from the feature catalogue.

:func:`top_reasons` gives them as records (``{feature, value, contribution, description}`` per
reason, for the API and code); :func:`top_reasons_json` as the compact JSON text of those records,
one string per row that ``json.loads`` turns back into those records (for the scores table and
exports, built column-wise without a dict or a string per reason).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cip.text import number_text
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
    """:func:`top_reasons` as compact JSON text per row (no spaces, UTF-8 kept), assembled column
    by column in Arrow instead of one Python string per reason: ``json.loads`` of each text equals
    the row's records. Numbers are written in their shortest round-trip form (``3`` for ``3.0``,
    ``0.00001`` for ``1e-05``); a missing or non-finite value is ``null``."""
    n = len(contributions)
    if k <= 0 or n == 0:
        return ["[]"] * n
    top, contrib = rank(contributions, len(features), k)
    head = pa.array([f'{{"feature":{_ENCODE(f)},"value":' for f in features])
    tail = pa.array([f',"description":{_ENCODE(describe(f))}}}' for f in features])
    tokens = _value_tokens(values, features, top)
    parts: list[Any] = ["["]
    for c in range(top.shape[1]):
        idx = pa.array(top[:, c])
        if c:
            parts.append(",")
        parts += [
            pc.take(head, idx),
            tokens[c],
            ',"contribution":',
            number_text(contrib[:, c], "null"),
            pc.take(tail, idx),
        ]
    parts.append("]")
    return pc.binary_join_element_wise(*parts, "").to_pylist()


def _value_tokens(values: pd.DataFrame, features: list[str], top: np.ndarray) -> list[pa.Array]:
    """Per reason slot, the JSON text of each row's value of the feature chosen there."""
    numbers = np.full(top.shape, np.nan)
    other = np.full(top.shape, None, dtype=object)  # JSON text of values that are not numbers
    for j in np.unique(top):
        rows, cols = np.nonzero(top == j)
        column = values[features[j]]
        if column.dtype.kind in "fiu":
            numbers[rows, cols] = column.to_numpy(dtype=float, na_value=np.nan)[rows]
        else:  # categories, text, flags: each distinct value encoded once
            codes, uniques = pd.factorize(column.to_numpy(dtype=object)[rows], use_na_sentinel=True)
            text = np.array([_ENCODE(_plain(v)) for v in uniques] + ["null"], dtype=object)
            other[rows, cols] = text[codes]  # code -1 (missing) takes the trailing "null"
    out = []
    for c in range(top.shape[1]):
        tokens = number_text(numbers[:, c], "null")
        mask = other[:, c] != None  # noqa: E711 (element-wise)
        if mask.any():
            tokens = pc.if_else(pa.array(mask), pa.array(other[:, c], type=pa.string()), tokens)
        out.append(tokens)
    return out


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


def _plain(v: Any) -> Any:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        v = v.item()
        return None if isinstance(v, float) and np.isnan(v) else v
    return v
