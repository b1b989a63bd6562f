"""Live events: the service's contract checks agree with `cip ingest` line by line; the event log
survives a writer that dies mid-write; the ingest reads closed segments only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cip.live import OPEN_SUFFIX
from serving.event_log import EventLog, recover
from serving.events import EventRejected, check

NOW = datetime(2026, 7, 1, tzinfo=UTC)


def _payloads() -> list[dict]:
    ts = "2026-06-30T10:00:00Z"
    order = {
        "order_id": "o1",
        "revenue": 25.5,
        "currency": "USD",
        "products": [{"product_id": "p", "category": "books", "price": 25.5, "quantity": 1}],
    }
    base = {"type": "track", "event": "Product Viewed", "timestamp": ts, "anonymousId": "a1"}
    cases = [
        base,
        {**base, "type": "page", "name": "Home", "event": None},
        {**base, "type": "identify", "userId": "C1", "traits": {"email": "Some.One@Example.com "}},
        {**base, "type": "identify", "userId": "C2", "traits": {"email": "not-an-email"}},  # flagged, kept
        {**base, "type": "alias", "previousId": "a1", "userId": "C1"},
        {**base, "event": "Order Completed", "properties": order},
        {**base, "event": "Order Completed", "properties": {**order, "currency": "eur"}},
        {**base, "timestamp": "2026-06-30 10:00:00"},  # naive: UTC
        {**base, "timestamp": "2026-06-30T12:00:00+02:00"},
        {**base, "anonymousId": None},
        {**base, "anonymousId": "  "},
        {**base, "type": "screen"},
        {**base, "type": None},
        {**base, "timestamp": "yesterday"},
        {**base, "timestamp": (NOW + timedelta(days=2)).isoformat()},
        {**base, "event": "Order Completed", "properties": {**order, "order_id": ""}},
        {
            **base,
            "event": "Order Completed",
            "properties": {k: v for k, v in order.items() if k != "revenue"},
        },
        {**base, "event": "Order Completed", "properties": {**order, "revenue": -3}},
        {**base, "event": "Order Completed", "properties": {**order, "revenue": "lots"}},
        {**base, "event": "Order Completed", "properties": {**order, "currency": "XYZ"}},
        {**base, "properties": {"price": -1}},
        {**base, "properties": {"price": "12.5"}},
    ]
    out = []
    for i, c in enumerate(cases):
        payload = {k: v for k, v in c.items() if v is not None}
        out.append({"messageId": f"parity-{i}", **payload})
    out.append({k: v for k, v in base.items()})  # no messageId
    return out


def test_checks_agree_with_the_ingest(resolved_world, tmp_path):
    """Each payload is accepted by the service exactly when `cip ingest` accepts its line, with the
    same reason and field when rejected."""
    from cli.settings import Settings
    from pipelines.ingest.pipeline import run

    world, _ = resolved_world
    src = tmp_path / "raw"
    (src / "events").mkdir(parents=True)
    (src / "fx_rates.csv").write_bytes((world.raw_dir / "fx_rates.csv").read_bytes())
    payloads = _payloads()
    (src / "events" / "parity.jsonl").write_text("".join(json.dumps(p) + "\n" for p in payloads))
    settings = Settings(data_dir=tmp_path / "data")
    run(settings, src, now=NOW)
    from cip.lake import Lake

    lake = Lake(settings.lake_dir)
    quarantine = lake.read("quarantine")
    quarantine = quarantine[quarantine.source == "events"].set_index("_row")
    accepted = set(lake.read("events", ["message_id"])["message_id"])
    fx = set(lake.read("fx_rates", ["currency"])["currency"].str.upper()) | {"USD"}
    assert len(quarantine) == 13 and len(accepted) == len(payloads) - 13  # both kinds are exercised
    for row, payload in enumerate(payloads, start=1):
        try:
            check(
                payload, currencies=fx, now=NOW, future_tolerance_hours=settings.ingest.future_tolerance_hours
            )
            verdict = None
        except EventRejected as exc:
            verdict = exc.reason
        if row in quarantine.index:
            assert verdict == quarantine.at[row, "reason"], (payload, quarantine.loc[row].to_dict())
        else:
            assert verdict is None, (payload, verdict)
            assert payload["messageId"] in accepted


def test_a_writer_killed_mid_write_loses_no_acknowledged_event(tmp_path):
    """A child process appends (fsync) then dies inside a write; recovery keeps every acknowledged
    line and drops the torn one; the segment becomes readable for `cip ingest`."""
    folder = tmp_path / "events"
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from serving.event_log import EventLog
        log = EventLog(Path({str(folder)!r}))
        for i in range(50):
            log.append([{{"messageId": f"m{{i}}", "n": i}}])
            print(i, flush=True)   # acknowledged
        fd = os.open(log.current, os.O_WRONLY | os.O_APPEND)
        os.write(fd, b'{{"messageId": "torn", "n"')   # the next write, cut short
        os._exit(1)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=Path(__file__).parents[1]
    )
    acked = [int(x) for x in out.stdout.split()]
    assert acked == list(range(50))
    assert len(list(folder.glob(f"*{OPEN_SUFFIX}"))) == 1
    closed = recover(folder)
    assert len(closed) == 1 and not list(folder.glob(f"*{OPEN_SUFFIX}"))
    lines = closed[0].read_text().splitlines()
    assert [json.loads(x)["messageId"] for x in lines] == [f"m{i}" for i in range(50)]


def test_segments_rotate_and_a_live_writer_is_left_alone(tmp_path):
    folder = tmp_path / "events"
    log = EventLog(folder, max_events=3)
    for i in range(7):
        log.append([{"messageId": f"m{i}"}])
    assert len(list(folder.glob("*.jsonl"))) == 2  # 3 + 3 closed, 1 still open
    assert recover(folder) == []  # the open one belongs to a live writer (its lock is held)
    log.close()
    segments = sorted(folder.glob("*.jsonl"))
    assert sum(len(p.read_text().splitlines()) for p in segments) == 7
    assert not list(folder.glob(f"*{OPEN_SUFFIX}"))


def test_ingest_reads_closed_segments_only(resolved_world, tmp_path):
    from cip.live import event_log_dir
    from cli.settings import Settings
    from pipelines.ingest.pipeline import discover

    world, _ = resolved_world
    settings = Settings(data_dir=tmp_path / "data")
    log = EventLog(event_log_dir(settings), max_events=1)
    log.append([{"messageId": "a"}])
    log.append([{"messageId": "b"}])  # closes the first
    found = [
        p
        for c, p in discover(world.raw_dir, sorted(event_log_dir(settings).glob("*.jsonl")))
        if c.source == "events"
    ]
    assert sum(p.parent == event_log_dir(settings) for p in found) == 1
    assert all(not p.name.endswith(OPEN_SUFFIX) for p in found)
    log.close()
    assert os.path.isdir(event_log_dir(settings))


@pytest.mark.parametrize(
    "text", ["2026-06-30T10:00:00Z", "2026-06-30T10:00:00.123+00:00", "2026-06-30 10:00:00"]
)
def test_timestamps_parse_to_utc(text):
    from serving.events import parse_timestamp

    assert parse_timestamp(text).replace(microsecond=0) == datetime(2026, 6, 30, 10, tzinfo=UTC)
