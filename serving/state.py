"""The service's durable state, shared by its worker processes: one SQLite database (WAL).

Tables: ``identity_links`` (see ``cip.live``: what the next identity run reads), ``events_seen``
(messageIds already processed: a retried event is not applied twice), ``trigger_pending``
(open cart-abandonment timers), ``trigger_last`` (last live score per threshold rule and
customer) and ``outbox`` (fired triggers; its primary key is rule + customer + window, so each
firing is recorded once however many workers see it).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cip.live import LINK_COLUMNS, LINKS_DDL

DDL = [
    LINKS_DDL,
    """CREATE TABLE IF NOT EXISTS events_seen (
        message_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, ts TEXT NOT NULL, seen_at TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS trigger_pending (
        rule TEXT NOT NULL, customer_id TEXT NOT NULL, opened_at TEXT NOT NULL, due_at TEXT NOT NULL,
        message_id TEXT, PRIMARY KEY (rule, customer_id))""",
    """CREATE TABLE IF NOT EXISTS trigger_last (
        rule TEXT NOT NULL, customer_id TEXT NOT NULL, value REAL, updated_at TEXT NOT NULL,
        PRIMARY KEY (rule, customer_id))""",
    """CREATE TABLE IF NOT EXISTS outbox (
        key TEXT PRIMARY KEY, rule TEXT NOT NULL, customer_id TEXT NOT NULL, window_start TEXT NOT NULL,
        fired_at TEXT NOT NULL, payload TEXT NOT NULL, delivered_at TEXT)""",
    "CREATE INDEX IF NOT EXISTS trigger_pending_due ON trigger_pending (due_at)",
]


@dataclass(frozen=True)
class OutboxRow:
    key: str
    rule: str
    customer_id: str
    window_start: str
    fired_at: str
    payload: dict[str, Any]


def iso(ts: datetime) -> str:
    """Fixed-width ISO-8601 UTC text (sorts as time)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class State:
    """One connection per process (serialized by a lock); every write is one transaction."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("PRAGMA synchronous = FULL")
        with self.transaction() as con:
            for statement in DDL:
                con.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT`` (rolled back on error), one at a time in this process."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    def query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._con.execute(sql, tuple(params)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    # --- identity links -----------------------------------------------------------------------------
    def links(self) -> dict[str, str]:
        """node -> customer_id of every live link."""
        return dict(self.query("SELECT node, customer_id FROM identity_links"))

    def links_of(self, customer_id: str) -> list[dict[str, Any]]:
        rows = self.query(
            f"SELECT {', '.join(LINK_COLUMNS)} FROM identity_links WHERE customer_id = ? ORDER BY node",
            [customer_id],
        )
        return [dict(zip(LINK_COLUMNS, r, strict=True)) for r in rows]

    def provisional_ids(self) -> set[str]:
        return {
            r[0]
            for r in self.query("SELECT DISTINCT customer_id FROM identity_links WHERE kind = 'provisional'")
        }

    # --- outbox -------------------------------------------------------------------------------------
    def outbox(self, rule: str | None = None, customer_id: str | None = None) -> list[OutboxRow]:
        sql = "SELECT key, rule, customer_id, window_start, fired_at, payload FROM outbox WHERE 1 = 1"
        params: list[Any] = []
        if rule is not None:
            sql += " AND rule = ?"
            params.append(rule)
        if customer_id is not None:
            sql += " AND customer_id = ?"
            params.append(customer_id)
        rows = self.query(sql + " ORDER BY fired_at, key", params)
        return [OutboxRow(*r[:5], json.loads(r[5])) for r in rows]
