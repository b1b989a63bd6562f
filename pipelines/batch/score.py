"""Batch scoring: every customer's features through the champions (``training.scoring.Scorer``),
in chunks, into one frame of scores and reasons (pure: frames in, a frame out)."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from cip.errors import CipError
from training.scoring import Scorer

KEY = "customer_id"
Progress = Callable[[str, int, int], None]


def reasons_column(model: str) -> str:
    """The scores table's column of a model's top reasons (a JSON list per customer)."""
    return f"reasons_{model}"


def version_column(model: str) -> str:
    return f"version_{model}"


def score_frame(
    scorer: Scorer,
    features: pd.DataFrame,
    *,
    reasons: int = 3,
    chunk_rows: int = 50_000,
    workers: int = 1,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """``customer_id``, every score column and ``reasons_<model>`` (JSON) per row of ``features``,
    in input order. Chunks bound memory; ``workers`` chunks are scored at once (on threads). A
    customer's values depend neither on the chunking nor on the workers."""
    n = len(features)
    if progress:
        progress("scoring", 0, n)

    def one(start: int) -> pd.DataFrame:
        chunk = features.iloc[start : start + chunk_rows]
        result = scorer.score(chunk, reasons=reasons, reasons_as="json", alternatives=False)
        part = result.wide.copy()
        for model, per_row in result.reasons.items():
            part[reasons_column(model)] = np.array(per_row, dtype=object)
        return part

    starts = range(0, n, chunk_rows)
    parts: list[pd.DataFrame] = []
    with ThreadPoolExecutor(max(1, min(workers, len(starts) or 1))) as pool:
        for start, part in zip(starts, pool.map(one, starts), strict=True):  # in input order
            parts.append(part)
            if progress:
                progress("scoring", min(start + chunk_rows, n), n)
    if not parts:
        raise CipError("no customer to score", fix="build features first: `cip features build`")
    out = pd.concat(parts, ignore_index=True)
    for model in scorer.versions:
        if reasons_column(model) not in out.columns:  # reasons=0
            out[reasons_column(model)] = "[]"
    return out


def score_columns(scores: pd.DataFrame, declared: list[str]) -> list[str]:
    """The score columns of a scored frame: the scorer's declared ones first (in order), then any
    other column its result carries (e.g. ``next_best_action``, ``nba_value`` once the NBA model
    is registered), without ``customer_id`` and the reasons."""
    extra = [c for c in scores.columns if c != KEY and not c.startswith("reasons_") and c not in declared]
    return [*(c for c in declared if c in scores.columns), *extra]


def encode_reasons(per_row: list[list[dict]]) -> np.ndarray:
    """Reasons as compact JSON text, one per customer."""
    dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
    return np.array([dumps(r) for r in per_row], dtype=object)


def decode_reasons(text: str | None) -> list[dict]:
    return json.loads(text) if text else []


def scores_table(scores: pd.DataFrame, run_id: str, as_of: str, versions: dict[str, str]) -> pd.DataFrame:
    """The lake table ``scores``: run id, as-of date, model versions, then the scores and reasons."""
    head = pd.DataFrame(
        {
            "run_id": run_id,
            KEY: scores[KEY].to_numpy(),
            "as_of": pd.Timestamp(as_of).date(),
            **{version_column(m): v for m, v in versions.items()},
        },
        index=scores.index,
    )
    return pd.concat([head, scores.drop(columns=[KEY])], axis=1)
