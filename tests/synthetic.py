"""Synthetic resolved activity tables (same columns and types as docs/tables.md) for tests and benchmarks.

Vectorized and written in customer chunks, so 1M customers fit in modest memory. Rates are
roughly those of a mid-size retailer: ~3 orders/year for active customers, ~2 lines/order,
~30 web/app events/year, an e-mail every two weeks, an offer most months; some customers churn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cip.categories import CATEGORIES

_US_DAY = 86_400_000_000
_TS = pa.timestamp("us", tz="UTC")
_EVENTS = np.array(["page", "Product Viewed", "Product Added", "Checkout Started", "identify"])
_EVENT_P = np.array([0.5, 0.3, 0.12, 0.05, 0.03])
_CHANNELS = np.array(["web", "app", "store"])
_CATS = np.array([*CATEGORIES, "unknown"])
_OFFERS = np.array(["no_offer", "discount_10", "free_shipping", "double_points", "new_arrivals"])

SCHEMAS: dict[str, pa.Schema] = {
    "customer_orders": pa.schema(
        [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("ts", _TS),
            ("channel", pa.string()),
            ("amount_base", pa.float64()),
            ("n_items", pa.int64()),
            ("source", pa.string()),
        ]
    ),
    "customer_order_lines": pa.schema(
        [
            ("order_id", pa.string()),
            ("customer_id", pa.string()),
            ("ts", _TS),
            ("channel", pa.string()),
            ("category", pa.string()),
            ("quantity", pa.int64()),
            ("amount_base", pa.float64()),
        ]
    ),
    "customer_events": pa.schema(
        [
            ("customer_id", pa.string()),
            ("ts", _TS),
            ("event", pa.string()),
            ("channel", pa.string()),
            ("category", pa.string()),
        ]
    ),
    "customer_email_events": pa.schema(
        [("customer_id", pa.string()), ("ts", _TS), ("event_type", pa.string()), ("campaign_id", pa.string())]
    ),
    "customer_exposures": pa.schema(
        [
            ("customer_id", pa.string()),
            ("exposure_id", pa.string()),
            ("campaign_id", pa.string()),
            ("offer", pa.string()),
            ("assignment_probability", pa.float64()),
            ("exposed_at", _TS),
            ("channel", pa.string()),
        ]
    ),
}


@dataclass
class WorldStats:
    customers: int
    rows: dict[str, int]


def customer_ids(start: int, stop: int) -> pa.Array:
    return pa.array([f"C{i:08d}" for i in range(start, stop)], pa.string())


def _strings(values: np.ndarray, idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(values, pa.string()), pa.array(idx, pa.int32()))


def _chunk(rng: np.random.Generator, lo: int, hi: int, start_us: int, end_us: int) -> dict[str, pa.Table]:
    n = hi - lo
    ids = customer_ids(lo, hi)
    span = end_us - start_us
    old = rng.random(n) < 0.4
    signup = np.where(old, start_us, start_us + (rng.random(n) * span).astype(np.int64))
    churned = rng.random(n) < 0.35
    stop = np.where(churned, signup + (rng.random(n) * (end_us - signup)).astype(np.int64), end_us)
    life_years = np.maximum(stop - signup, 0) / (365 * _US_DAY)
    level = rng.lognormal(0.0, 0.8, n)

    def spread(counts: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        who = np.repeat(np.arange(n), counts)
        t = a[who] + (rng.random(who.size) * np.maximum(b[who] - a[who], 1)).astype(np.int64)
        return who, t

    # orders and lines
    n_orders = rng.poisson(2.5 * level * life_years)
    who, ts = spread(n_orders, signup, stop)
    m = who.size
    order_no = np.arange(m) + lo * 1000
    order_ids = pa.array(np.char.add("O", order_no.astype(str)), pa.string())
    pref = rng.integers(0, len(CATEGORIES), n)
    ch = np.minimum(np.searchsorted(np.cumsum([0.45, 0.25, 0.30]), rng.random(m)), 2)
    n_lines = 1 + rng.poisson(1.2, m)
    lw = np.repeat(np.arange(m), n_lines)
    cat = np.where(rng.random(lw.size) < 0.5, pref[who[lw]], rng.integers(0, len(CATEGORIES), lw.size))
    cat = np.where(rng.random(lw.size) < 0.02, len(CATEGORIES), cat)
    qty = 1 + rng.poisson(0.3, lw.size)
    amount = np.round(rng.lognormal(3.2, 0.7, lw.size) * qty, 2)
    order_amount = np.round(np.bincount(lw, amount, minlength=m), 2)
    order_items = np.bincount(lw, qty, minlength=m).astype(np.int64)
    orders = pa.table(
        {
            "order_id": order_ids,
            "customer_id": pc.take(ids, pa.array(who)),
            "ts": pa.array(ts, _TS),
            "channel": _strings(_CHANNELS, ch),
            "amount_base": order_amount,
            "n_items": order_items,
            "source": _strings(np.array(["events", "pos"]), (ch == 2).astype(np.int32)),
        },
        schema=SCHEMAS["customer_orders"],
    )
    lines = pa.table(
        {
            "order_id": pc.take(order_ids, pa.array(lw)),
            "customer_id": pc.take(ids, pa.array(who[lw])),
            "ts": pa.array(ts[lw], _TS),
            "channel": _strings(_CHANNELS, ch[lw]),
            "category": _strings(_CATS, cat),
            "quantity": qty.astype(np.int64),
            "amount_base": amount,
        },
        schema=SCHEMAS["customer_order_lines"],
    )

    # web/app events, in sessions of a few events within half an hour
    n_sess = rng.poisson(8 * level * life_years)
    sw_, sts_ = spread(n_sess, signup, stop)
    per = 1 + rng.poisson(3, sw_.size)
    ew = np.repeat(sw_, per)
    ets = np.repeat(sts_, per) + (rng.random(ew.size) * 1_800_000_000).astype(np.int64)
    ets = np.minimum(ets, end_us - 1)
    kind = np.minimum(np.searchsorted(np.cumsum(_EVENT_P), rng.random(ew.size)), len(_EVENTS) - 1)
    ecat = np.where(kind == 0, -1, rng.integers(0, len(CATEGORIES), ew.size))
    events = pa.table(
        {
            "customer_id": pc.take(ids, pa.array(ew)),
            "ts": pa.array(ets, _TS),
            "event": _strings(_EVENTS, kind),
            "channel": _strings(_CHANNELS[:2], (rng.random(ew.size) < 0.4).astype(np.int32)),
            "category": pa.array(np.where(ecat < 0, None, _CATS[np.maximum(ecat, 0)]), pa.string()),
        },
        schema=SCHEMAS["customer_events"],
    )

    # e-mail: a send every ~14 days from signup; opens/clicks; some unsubscribe (sends stop)
    unsub = rng.random(n) < 0.08
    mail_end = np.where(unsub, signup + (rng.random(n) * (end_us - signup)).astype(np.int64), end_us)
    n_send = ((mail_end - signup) // (14 * _US_DAY)).astype(np.int64)
    sw, sts = spread(n_send, signup, mail_end)
    engaged = np.clip(0.25 * level, 0, 0.9)
    opened = rng.random(sw.size) < engaged[sw]
    clicked = opened & (rng.random(sw.size) < 0.2)
    uw = np.flatnonzero(unsub)
    mw = np.concatenate([sw, sw[opened], sw[clicked], uw])
    mts = np.concatenate([sts, sts[opened] + 3_600_000_000, sts[clicked] + 3_700_000_000, mail_end[uw]])
    mtype = np.concatenate(
        [
            np.zeros(sw.size, np.int32),
            np.ones(opened.sum(), np.int32),
            np.full(clicked.sum(), 2, np.int32),
            np.full(uw.size, 3, np.int32),
        ]
    )
    keep = mts < end_us
    camp = (mts // (14 * _US_DAY)) % 1000
    email = pa.table(
        {
            "customer_id": pc.take(ids, pa.array(mw[keep])),
            "ts": pa.array(mts[keep], _TS),
            "event_type": _strings(np.array(["send", "open", "click", "unsubscribe"]), mtype[keep]),
            "campaign_id": pa.array(np.char.add("K", camp[keep].astype(str)), pa.string()),
        },
        schema=SCHEMAS["customer_email_events"],
    )

    # exposures: a campaign every 30 days, 30% of customers alive then are exposed
    n_x = rng.poisson(0.3 * np.maximum(end_us - signup, 0) / (30 * _US_DAY))
    xw, xts = spread(n_x, signup, np.full(n, end_us))
    offer = np.minimum(np.searchsorted(np.cumsum([0.3, 0.175, 0.175, 0.175, 0.175]), rng.random(xw.size)), 4)
    xno = np.arange(xw.size) + lo * 1000
    exposures = pa.table(
        {
            "customer_id": pc.take(ids, pa.array(xw)),
            "exposure_id": pa.array(np.char.add("X", xno.astype(str))),
            "campaign_id": pa.array(np.char.add("K", ((xts // (30 * _US_DAY)) % 1000).astype(str))),
            "offer": _strings(_OFFERS, offer),
            "assignment_probability": np.full(xw.size, 0.7),
            "exposed_at": pa.array(xts, _TS),
            "channel": _strings(np.array(["email", "app"]), (offer % 2).astype(np.int32)),
        },
        schema=SCHEMAS["customer_exposures"],
    )
    return {
        "customer_orders": orders,
        "customer_order_lines": lines,
        "customer_events": events,
        "customer_email_events": email,
        "customer_exposures": exposures,
    }


def write_world(
    lake_dir: Path,
    n_customers: int,
    *,
    end: date = date(2026, 6, 30),
    days: int = 730,
    seed: int = 7,
    chunk: int = 50_000,
) -> WorldStats:
    """Write the five resolved tables as lake derived tables (``<lake>/derived/<table>.parquet``)."""
    rng = np.random.default_rng(seed)
    end_us = int(datetime(end.year, end.month, end.day, tzinfo=UTC).timestamp() * 1_000_000)
    start_us = end_us - days * _US_DAY
    derived = Path(lake_dir) / "derived"
    derived.mkdir(parents=True, exist_ok=True)
    writers = {
        t: pq.ParquetWriter(derived / f".{t}.parquet.tmp", s, compression="zstd") for t, s in SCHEMAS.items()
    }
    rows = dict.fromkeys(SCHEMAS, 0)
    try:
        for lo in range(0, n_customers, chunk):
            for t, tab in _chunk(rng, lo, min(lo + chunk, n_customers), start_us, end_us).items():
                writers[t].write_table(tab, row_group_size=1_000_000)
                rows[t] += tab.num_rows
    finally:
        for w in writers.values():
            w.close()
    for t in SCHEMAS:
        os.replace(derived / f".{t}.parquet.tmp", derived / f"{t}.parquet")
    return WorldStats(n_customers, rows)
