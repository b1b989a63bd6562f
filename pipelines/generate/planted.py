"""Planted bad rows: extra rows with exactly one problem each, so ingestion quarantine can be tested.

Every function returns the planted rows already formatted as strings plus the number of each kind.
Planted rows are always *extra* rows (copies with one field broken, or synthetic records): no clean
record is ever replaced.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from pipelines.generate.messy import malformed_email


def _uuid(tag: str) -> str:
    h = hashlib.md5(tag.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _ts(ms: int, future: bool = False) -> str:
    s = pd.Timestamp(int(ms), unit="ms").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return "2099" + s[4:] if future else s


def planted_events(
    rng: np.random.Generator, seed: int, k: int, months: list[str], month_ms: list[int], currencies: list[str]
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Bad Segment lines per month label: malformed JSON, missing ids, 2099 timestamps, bad amounts/currency."""
    out: dict[str, list[str]] = {m: [] for m in months}
    counts = {
        "malformed_json": 0,
        "missing_required": 0,
        "future_timestamp": 0,
        "invalid_amount": 0,
        "unknown_currency": 0,
    }
    serial = 0

    def base(kind: str, mi: int) -> dict:
        nonlocal serial
        serial += 1
        ms = month_ms[mi] + int(rng.integers(0, 27 * 86_400_000))
        dev = _uuid(f"planted-dev{seed}:{serial}")
        ev: dict = {
            "type": "track" if kind != "page" else "page",
            "messageId": _uuid(f"planted{seed}:{serial}"),
            "timestamp": _ts(ms),
            "anonymousId": _uuid(f"planted-anon{seed}:{serial}"),
            "userId": None,
            "context": {"channel": "web", "device": {"id": dev, "type": "desktop"}},
        }
        if kind == "page":
            ev["name"] = "Home"
            ev["properties"] = {"path": "/"}
        elif kind == "order":
            price = float(np.round(rng.uniform(5, 200), 2))
            ev["event"] = "Order Completed"
            ev["properties"] = {
                "order_id": f"O9{serial:09d}",
                "revenue": price,
                "currency": currencies[int(rng.integers(0, len(currencies)))],
                "products": [
                    {"product_id": "SKU00001", "category": "Electronics", "price": price, "quantity": 1}
                ],
            }
        else:
            ev["event"] = "Product Viewed"
            ev["properties"] = {"product_id": "SKU00042", "category": "Fashion", "price": 19.99}
        return ev

    def put(mi: int, obj: dict | str, reason: str) -> None:
        line = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
        out[months[mi]].append(line)
        counts[reason] += 1

    for i in range(k):
        mi = int(rng.integers(0, len(months)))
        full = json.dumps(base("view", mi), separators=(",", ":"))
        cut = int(rng.integers(10, len(full) - 1))
        put(mi, full[:cut] if i % 2 == 0 else full[:cut] + "}}garbage", "malformed_json")
        ev = base(["view", "page", "order"][i % 3], mi)
        if i % 2 == 0:
            del ev["messageId"]
        else:
            del ev["anonymousId"], ev["userId"]
        put(mi, ev, "missing_required")
        ev = base(["view", "page"][i % 2], mi)
        ev["timestamp"] = "2099" + ev["timestamp"][4:]
        put(mi, ev, "future_timestamp")
        ev = base("order", mi)
        ev["properties"]["revenue"] = -abs(ev["properties"]["revenue"]) if i % 2 == 0 else "n/a"
        put(mi, ev, "invalid_amount")
        ev = base("order", mi)
        ev["properties"]["currency"] = "XYZ"
        put(mi, ev, "unknown_currency")
    return out, counts


def _copies(rng: np.random.Generator, clean: pd.DataFrame, k: int) -> pd.DataFrame:
    idx = rng.choice(len(clean), size=k, replace=len(clean) < k)
    return clean.iloc[np.sort(idx)].reset_index(drop=True).copy()


def planted_table(
    rng: np.random.Generator,
    clean: pd.DataFrame,
    k: int,
    breakers: dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]],
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``k`` copies of random clean rows per reason, each broken by its ``breaker`` (one problem)."""
    parts = []
    counts = {}
    for j, (reason, fn) in enumerate(breakers.items()):
        rows = fn(_copies(rng, clean, k), j)
        rows["_reason"] = reason
        parts.append(rows)
        counts[reason] = len(rows)
    return pd.concat(parts, ignore_index=True), counts


def future(ts: pd.Series) -> pd.Series:
    """Same timestamp string in the year 2099."""
    return "2099" + ts.str.slice(4)


def pos_breakers() -> dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]]:
    def fresh(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df["transaction_id"] = [f"T9{j}{i:08d}" for i in range(len(df))]
        df["line_number"] = "1"
        df["loyalty_id"] = None
        return df

    def missing(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df = fresh(df, j)
        df["transaction_id"] = None
        return df

    def amount(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df = fresh(df, j)
        df["unit_price"] = ["n/a" if i % 2 else f"-{v}" for i, v in enumerate(df["unit_price"])]
        return df

    def currency(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df = fresh(df, j)
        df["currency"] = "XYZ"
        return df

    def fut(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df = fresh(df, j)
        df["transaction_time"] = future(df["transaction_time"])
        return df

    return {
        "missing_required": missing,
        "invalid_amount": amount,
        "unknown_currency": currency,
        "future_timestamp": fut,
    }


def crm_breakers() -> dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]]:
    def missing(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df["crm_id"] = None
        return df

    def fut(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df["crm_id"] = [f"C9{j}{i:07d}" for i in range(len(df))]
        df["created_at"] = future(df["created_at"])
        df["updated_at"] = df["created_at"]
        return df

    return {"missing_required": missing, "future_timestamp": fut}


def email_breakers() -> dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]]:
    def bad_email(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df["email"] = [malformed_email(e.strip(), i % 3) for i, e in enumerate(df["email"])]
        return df

    def missing(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df["campaign_id"] = None
        return df

    return {"invalid_email": bad_email, "missing_required": missing}


def exposure_breakers() -> dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]]:
    def missing(df: pd.DataFrame, j: int) -> pd.DataFrame:
        df["exposure_id"] = [f"E9{j}{i:08d}" for i in range(len(df))]
        df["crm_id"] = None
        return df

    return {"missing_required": missing}
