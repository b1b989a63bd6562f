"""Trigger rules (declared in ``settings.serving.triggers``) evaluated on live events into the outbox.

Every firing is one ``outbox`` row whose key is rule + customer + window; rows are inserted with
``INSERT OR IGNORE`` inside the transaction that decides the firing, so a firing is recorded once
however often (or by however many workers) it is decided.

- ``cart_abandonment``: a ``start_event`` opens a timer (one per rule and customer: the cart's
  first add) due ``minutes`` later in event time; a ``cancel_event`` between the two closes it;
  :meth:`Triggers.sweep` fires timers that are due by the wall clock. Key: the cart's opening time.
- ``score_threshold``: after an event, the customer's live score reaching ``threshold`` when the
  last live score of that rule was below it (or there was none) fires; key: the ``window_minutes``
  window of the event time.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cip.errors import CipError
from serving.config import CartAbandonment, ScoreThreshold
from serving.events import LiveEvent
from serving.state import iso

Rule = CartAbandonment | ScoreThreshold


@dataclass(frozen=True)
class Fired:
    rule: str
    customer_id: str
    key: str
    fired_at: datetime


class Triggers:
    """The declared rules, evaluated inside the caller's state transaction."""

    def __init__(self, rules: list[Rule]) -> None:
        self.carts = [r for r in rules if isinstance(r, CartAbandonment)]
        self.thresholds = [r for r in rules if isinstance(r, ScoreThreshold)]

    def check_scores(self, score_columns: list[str]) -> None:
        """Every threshold rule names a score the loaded models produce."""
        for r in self.thresholds:
            if r.score not in score_columns:
                raise CipError(
                    f"trigger '{r.name}': no loaded model gives the score '{r.score}'",
                    fix=f"set serving.triggers[].score to one of {', '.join(score_columns)}",
                )

    def wants_scores(self, ev: LiveEvent) -> bool:
        return any(not r.events or ev.event in r.events for r in self.thresholds)

    # --- on each event ------------------------------------------------------------------------------
    def on_event(self, con: sqlite3.Connection, ev: LiveEvent, customer_id: str) -> None:
        """Open or close cart timers."""
        for r in self.carts:
            if ev.event == r.start_event:
                due = ev.ts + timedelta(minutes=r.minutes)
                con.execute(
                    "INSERT INTO trigger_pending (rule, customer_id, opened_at, due_at, message_id) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (rule, customer_id) DO NOTHING",
                    (r.name, customer_id, iso(ev.ts), iso(due), ev.message_id),
                )
            elif ev.event == r.cancel_event:
                con.execute(
                    "DELETE FROM trigger_pending WHERE rule = ? AND customer_id = ? AND opened_at <= ? AND due_at >= ?",
                    (r.name, customer_id, iso(ev.ts), iso(ev.ts)),
                )

    def on_scores(
        self,
        con: sqlite3.Connection,
        ev: LiveEvent,
        customer_id: str,
        scores: Mapping[str, float],
        now: datetime,
    ) -> list[Fired]:
        """Threshold rules after the event's customer was scored."""
        fired = []
        for r in self.thresholds:
            if r.events and ev.event not in r.events:
                continue
            value = scores.get(r.score)
            if value is None or value != value:  # NaN
                continue
            row = con.execute(
                "SELECT value FROM trigger_last WHERE rule = ? AND customer_id = ?", (r.name, customer_id)
            ).fetchone()
            con.execute(
                "INSERT OR REPLACE INTO trigger_last (rule, customer_id, value, updated_at) VALUES (?, ?, ?, ?)",
                (r.name, customer_id, float(value), iso(now)),
            )
            before = None if row is None else row[0]
            if value >= r.threshold and (before is None or before < r.threshold):
                window = timedelta(minutes=r.window_minutes)
                start = datetime.fromtimestamp(
                    (ev.ts.timestamp() // window.total_seconds()) * window.total_seconds(), tz=UTC
                )
                payload = {
                    "score": r.score,
                    "value": float(value),
                    "threshold": r.threshold,
                    "message_id": ev.message_id,
                }
                hit = _fire(con, r.name, customer_id, start, now, payload)
                if hit:
                    fired.append(hit)
        return fired

    # --- timers -------------------------------------------------------------------------------------
    def sweep(self, con: sqlite3.Connection, now: datetime) -> list[Fired]:
        """Fire every cart timer due at ``now``."""
        if not self.carts:
            return []
        names = {r.name: r for r in self.carts}
        marks = ", ".join("?" * len(names))
        due = con.execute(
            f"SELECT rule, customer_id, opened_at, due_at, message_id FROM trigger_pending "
            f"WHERE due_at <= ? AND rule IN ({marks})",
            (iso(now), *names),
        ).fetchall()
        fired = []
        for rule, customer_id, opened_at, due_at, message_id in due:
            start = datetime.fromisoformat(opened_at.replace("Z", "+00:00"))
            r = names[rule]
            payload = {
                "start_event": r.start_event,
                "cancel_event": r.cancel_event,
                "minutes": r.minutes,
                "opened_at": opened_at,
                "due_at": due_at,
                "message_id": message_id,
            }
            hit = _fire(con, rule, customer_id, start, now, payload)
            con.execute("DELETE FROM trigger_pending WHERE rule = ? AND customer_id = ?", (rule, customer_id))
            if hit:
                fired.append(hit)
        return fired


def _fire(
    con: sqlite3.Connection, rule: str, customer_id: str, window_start: datetime, now: datetime, payload: dict
) -> Fired | None:
    key = f"{rule}|{customer_id}|{iso(window_start)}"
    cur = con.execute(
        "INSERT OR IGNORE INTO outbox (key, rule, customer_id, window_start, fired_at, payload) VALUES (?, ?, ?, ?, ?, ?)",
        (key, rule, customer_id, iso(window_start), iso(now), json.dumps(payload)),
    )
    return Fired(rule, customer_id, key, now) if cur.rowcount == 1 else None
