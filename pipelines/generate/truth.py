"""Ground truth: churn / spend labels, offer response probabilities, record links, planted-error counts."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.generate.config import OFFERS, Calendar
from pipelines.generate.ids import prefixed_ids
from pipelines.generate.people import Persons


def _month_end(y: int, m: int) -> date:
    ny, nm = (y + 1, 1) if m == 12 else (y, m + 1)
    return date.fromordinal(date(ny, nm, 1).toordinal() - 1)


def label_cutoffs(as_of: date) -> list[date]:
    """Quarter ends from 24 to 3 months before ``as_of`` (month ends), plus ``as_of`` itself."""
    out = []
    for back in (24, 21, 18, 15, 12, 9, 6, 3):
        k = as_of.year * 12 + as_of.month - 1 - back
        y, m = divmod(k, 12)
        out.append(_month_end(y, m + 1))
    return [*out, as_of]


def labels_frame(p: Persons, cal: Calendar, cutoffs: list[date]) -> pd.DataFrame:
    """Per person and cutoff: alive, P(no purchase in the next 90 days), expected 365-day spend (USD).

    A cutoff date means the end of that day. Only persons who had signed up by then are included.
    """
    ids = p.person_ids()
    frames = []
    for c in cutoffs:
        t0 = cal.day_of(c) + 1.0
        known = p.signup < t0
        alive = p.tau > t0
        w90 = np.clip(np.minimum(p.tau, t0 + 90.0) - t0, 0.0, None)
        w365 = np.clip(np.minimum(p.tau, t0 + 365.0) - t0, 0.0, None)
        p_churn = np.where(alive, np.exp(-p.lam * w90), 1.0)
        frames.append(
            pd.DataFrame(
                {
                    "person_id": ids[known],
                    "cutoff": c,
                    "alive_at_cutoff": alive[known],
                    "p_churn_90d": p_churn[known],
                    "expected_spend_365d": (p.lam * w365 * p.spend_mean)[known],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def offer_response_frame(p: Persons, probs: np.ndarray) -> pd.DataFrame:
    """Long table person_id, offer, p_response (probability of a response purchase if alive)."""
    return pd.DataFrame(
        {
            "person_id": np.repeat(p.person_ids(), len(OFFERS)),
            "offer": np.tile(np.array(OFFERS, dtype=object), p.n),
            "p_response": probs.reshape(-1),
        }
    )


def write_record_links(
    parts: Iterable[tuple[str, pa.Array | Callable[[int, int], pa.Array], np.ndarray, np.ndarray | None]],
    path: Path,
    chunk: int = 2_000_000,
) -> int:
    """Stream ``record_links.parquet`` from (source, record keys, person numbers, resolvable) parts.

    Keys are an arrow array or a function ``(start, stop) -> keys`` so large key columns (event
    messageIds) are only materialized chunk by chunk. ``resolvable`` marks records that carry an id
    connecting them to a CRM account (False: POS sale without loyalty card, events of a device that
    never logged in); ``None`` means all. Returns the number of rows.
    """
    schema = pa.schema(
        [
            ("source", pa.string()),
            ("record_key", pa.string()),
            ("person_id", pa.string()),
            ("resolvable", pa.bool_()),
        ]
    )
    rows = 0
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for source, keys, person, resolvable in parts:
            for a in range(0, len(person), chunk):
                b = min(a + chunk, len(person))
                src = pa.DictionaryArray.from_arrays(np.zeros(b - a, dtype=np.int8), pa.array([source])).cast(
                    pa.string()
                )
                key = (keys(a, b) if callable(keys) else keys.slice(a, b - a)).cast(pa.string())
                pid = prefixed_ids("P", person[a:b] + 1, 7)
                writer.write_table(
                    pa.table(
                        {
                            "source": src,
                            "record_key": key,
                            "person_id": pid,
                            "resolvable": np.ones(b - a, bool) if resolvable is None else resolvable[a:b],
                        },
                        schema=schema,
                    )
                )
                rows += b - a
    return rows


def write_json(obj: dict, path: Path) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
