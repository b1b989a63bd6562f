"""Live Segment events checked by the events contract (``cip.contracts.EVENTS``), as ``cip ingest`` does.

The contract's declarations drive every check, in the ingest's order (``pipelines.ingest.validate``):
one of ``anonymousId``/``userId``, then each field in contract order — required (also when
another field has a value, e.g. ``revenue`` of an ``Order Completed``), timestamps that parse and
are not beyond the future tolerance, amounts ``>= 0``, currencies with an FX rate, enumerations.
A value is read at the field's JSON path as the ingest's JSON reader reads it (numbers as their
JSON text, blank as missing). The first broken rule is the event's reason, with the field's path.
``tests/test_serving_events.py`` holds these verdicts to the ingest's quarantine on the same lines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cip.contracts import EVENTS, REASONS, Contract, Field
from cip.errors import CipError

#: The event name the resolved activity tables use per Segment type (``customer_events.event``).
TYPE_EVENTS = {"page": "page", "identify": "identify", "alias": "alias"}


class EventRejected(CipError):
    """An event the events contract rejects; names the field (JSON path) and the reason code."""

    def __init__(self, reason: str, field: str, index: int | None = None) -> None:
        self.reason, self.field, self.index = reason, field, index
        where = f"event {index}: " if index is not None else ""
        super().__init__(
            f"{where}{field}: {reason} ({REASONS.get(reason, reason)})",
            fix=f"send a Segment {', '.join(('track', 'identify', 'page', 'alias'))} call with a valid {field}",
        )


@dataclass(frozen=True)
class LiveEvent:
    """An accepted event: what serving needs of it, and the payload as it goes to the event log."""

    message_id: str
    type: str
    ts: datetime
    event: str  # Segment track name, or page/identify/alias
    anonymous_id: str | None
    user_id: str | None
    previous_id: str | None
    payload: dict[str, Any]


def path_of(f: Field) -> str:
    """The field's JSON path without ``$.`` (``properties.revenue``)."""
    return (f.path or f"$.{f.name}").removeprefix("$.")


def read_path(payload: Mapping[str, Any], path: str) -> str | None:
    """The value at ``path`` as text, as the ingest's reader gives it: strings as they are, other
    JSON values as their JSON text; trimmed, blank as missing."""
    node: Any = payload
    for key in path.split("."):
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    if node is None:
        return None
    text = node if isinstance(node, str) else json.dumps(node)
    text = text.strip()
    return text or None


def parse_timestamp(text: str) -> datetime | None:
    """An ISO-8601 instant (a naive one is UTC, as the ingest's session clock); None if it does not parse."""
    try:
        ts = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _amount(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def check(
    payload: Mapping[str, Any],
    *,
    currencies: set[str],
    now: datetime,
    future_tolerance_hours: float,
    contract: Contract = EVENTS,
) -> dict[str, str | None]:
    """The contract's field values of an event; :class:`EventRejected` at the first broken rule."""
    values = {f.name: read_path(payload, path_of(f)) for f in contract.fields}
    by_name = {f.name: f for f in contract.fields}
    for group in contract.require_any:
        if all(values[c] is None for c in group):
            raise EventRejected("missing_required", "|".join(path_of(by_name[c]) for c in group))
    limit = now + timedelta(hours=future_tolerance_hours)
    for f in contract.fields:
        value = values[f.name]
        applies = f.when is None or values[f.when[0]] == f.when[1]
        if not applies:
            continue
        if value is None:
            if f.required:
                raise EventRejected("missing_required", path_of(f))
            continue
        if f.kind == "timestamp":
            ts = parse_timestamp(value)
            if ts is None:
                raise EventRejected("invalid_timestamp", path_of(f))
            if ts > limit:
                raise EventRejected("future_timestamp", path_of(f))
        elif f.kind == "amount":
            amount = _amount(value)
            if amount is None or amount < 0:
                raise EventRejected("invalid_amount", path_of(f))
        elif f.kind == "currency":
            if value.upper() not in currencies:
                raise EventRejected("unknown_currency", path_of(f))
        elif f.kind == "enum" and value not in (f.values or ()):
            raise EventRejected("invalid_value", path_of(f))
    return values


def accept(
    payload: Mapping[str, Any], *, currencies: set[str], now: datetime, future_tolerance_hours: float
) -> LiveEvent:
    """A checked event, ready for the log (``receivedAt`` added, as Segment's API does)."""
    values = check(payload, currencies=currencies, now=now, future_tolerance_hours=future_tolerance_hours)
    ts = parse_timestamp(values["timestamp"] or "")
    assert ts is not None and values["message_id"] and values["type"]
    kind = values["type"]
    name = values["event"] if kind == "track" else TYPE_EVENTS.get(kind, kind)
    return LiveEvent(
        message_id=values["message_id"],
        type=kind,
        ts=ts,
        event=name or kind,
        anonymous_id=values["anonymous_id"],
        user_id=values["user_id"],
        previous_id=values["previous_id"],
        payload={**payload, "receivedAt": now.isoformat().replace("+00:00", "Z")},
    )
