"""Online features of a batch of customers for every loaded model, in one SQLite statement.

The models read several FeatureServices (churn_v1, clv_v1, propensity_v1…) that share most
views. With the SQLite online store, this reads the union of their features straight from the
store's tables (``features.quick`` decodes the values and computes the request-time features by
the on-demand view's formula): one statement per request batch, over a connection kept per thread.
With any other online store it asks Feast (``CipFeatureStore.online_features``) per service.
``tests/test_serving_features.py`` holds both paths to Feast's own read.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from cip.errors import CipError, MissingInputError
from features import catalog as cat
from features.online import entity_keys
from features.quick import UnsupportedValue, days_between, decode_value, event_time, online_config

#: Served feature that tells when the customer's last live event was pushed.
LAST_EVENT = "last_event_ts"


@dataclass
class FeatureRows:
    """Features of a batch of customers, in request order."""

    customer_ids: list[str]
    columns: list[str]
    matrix: np.ndarray  # one row per customer, one float column per feature (missing: NaN)
    found: list[bool]  # the online store holds any row of the customer
    snapshot_ts: list[datetime | None]  # batch snapshot of each customer's batch features
    last_event_ts: list[datetime | None]  # latest pushed live event
    request_ts: datetime

    @property
    def frame(self) -> pd.DataFrame:
        """customer_id + the feature columns."""
        frame = pd.DataFrame(self.matrix, columns=self.columns)
        frame.insert(0, cat.JOIN_KEY, np.array(self.customer_ids, dtype=object))
        return frame


def _view_of(feature: str) -> str:
    src = cat.ON_DEMAND_DAYS.get(feature)
    return cat.FEATURES[src[0] if src else feature].view


class OnlineFeatureReader:
    """Reads ``columns`` (catalogue feature names) for many customers at once; open once, share
    across threads."""

    def __init__(self, settings: Any, columns: list[str], services: list[str]) -> None:
        unknown = [c for c in columns if c not in cat.FEATURES]
        if unknown:
            raise CipError(
                f"features not in the catalogue: {', '.join(unknown)}", fix="see features/catalog.py"
            )
        self.settings = settings
        self.columns = list(columns)
        self.services = list(services)
        config = online_config(settings)
        self._store: Any = None
        self.fast = config.path is not None and not config.versioned
        self._local = threading.local()
        if not self.fast:  # another online store: Feast's own read, store opened once
            from features.store import open_store

            self._store = open_store(settings)
            return
        if not config.path.exists():
            raise MissingInputError(
                f"no online store at {config.path}", fix="run `cip features materialize` first"
            )
        self.path = config.path
        stored = list(
            dict.fromkeys(
                [*(cat.ON_DEMAND_DAYS[c][0] if c in cat.ON_DEMAND_DAYS else c for c in columns), LAST_EVENT]
            )
        )
        views = list(dict.fromkeys(_view_of(c) for c in stored))
        self._views = views
        self._batch = {i for i, v in enumerate(views) if cat.VIEWS[v].kind == "batch"}
        names = ", ".join(f"'{n}'" for n in stored)
        self._tables = [f"{config.project}_{v}" for v in views]
        self._sql_for: dict[int, str] = {}
        self._names = names
        self._position = {c: j for j, c in enumerate(self.columns)}

    def _sql(self, n: int) -> str:
        sql = self._sql_for.get(n)
        if sql is None:
            marks = ", ".join("?" * n)
            sql = " UNION ALL ".join(
                f'SELECT {i}, entity_key, feature_name, value, event_ts FROM "{t}" '
                f"WHERE entity_key IN ({marks}) AND feature_name IN ({self._names})"
                for i, t in enumerate(self._tables)
            )
            self._sql_for[n] = sql
        return sql

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(
                f"{self.path.as_uri()}?mode=ro", uri=True, timeout=30, check_same_thread=False
            )
            self._local.con = con
        return con

    def read(self, customer_ids: list[str], request_ts: datetime) -> FeatureRows:
        if not self.fast:
            return self._read_feast(customer_ids, request_ts)
        keys = entity_keys(customer_ids)
        at = {k: i for i, k in enumerate(keys)}
        con = self._connection()
        try:
            rows = con.execute(self._sql(len(keys)), keys * len(self._tables)).fetchall()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                raise MissingInputError(
                    f"the online store {self.path} lacks a table ({exc})",
                    fix="run `cip features materialize`",
                ) from None
            raise
        n = len(customer_ids)
        found: list[dict[str, Any]] = [{} for _ in range(n)]
        snap: list[datetime | None] = [None] * n
        for view, key, name, value, ts in rows:
            i = at[bytes(key)]
            try:
                found[i][name] = decode_value(value)
            except UnsupportedValue:
                continue
            if view in self._batch:
                t = event_time(ts)
                if snap[i] is None or t > snap[i]:
                    snap[i] = t
        matrix = np.full((n, len(self.columns)), np.nan)
        for i, values in enumerate(found):
            for c, j in self._position.items():
                spec = cat.ON_DEMAND_DAYS.get(c)
                v = days_between(request_ts, values.get(spec[0])) if spec else values.get(c)
                if v is not None:
                    matrix[i, j] = v
        return FeatureRows(
            customer_ids=list(customer_ids),
            columns=self.columns,
            matrix=matrix,
            found=[bool(v) for v in found],
            snapshot_ts=snap,
            last_event_ts=[v.get(LAST_EVENT) for v in found],
            request_ts=request_ts,
        )

    def _read_feast(self, customer_ids: list[str], request_ts: datetime) -> FeatureRows:
        n = len(customer_ids)
        frame = pd.DataFrame({cat.JOIN_KEY: np.array(customer_ids, dtype=object)})
        found = [False] * n
        last: list[datetime | None] = [None] * n
        for service in self.services:
            got = self._store.online_features(service, customer_ids, request_ts)
            for c in self.columns:
                if c in got and c not in frame.columns:
                    frame[c] = pd.to_numeric(pd.Series(got[c], dtype=object), errors="coerce").to_numpy(float)
            if LAST_EVENT in got:
                last = [v if v is not None else last[i] for i, v in enumerate(got[LAST_EVENT])]
            found = [
                f or any(got[c][i] is not None for c in got if c != cat.JOIN_KEY) for i, f in enumerate(found)
            ]
        for c in self.columns:
            if c not in frame.columns:
                frame[c] = np.nan
        matrix = frame[self.columns].to_numpy(dtype=float)
        return FeatureRows(list(customer_ids), self.columns, matrix, found, [None] * n, last, request_ts)
