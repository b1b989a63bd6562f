"""The real-time service over real HTTP: `cip serve` (which runs `bentoml serve serving.service:CIP`)
as a subprocess on a copy of the trained test world (it writes events, links, pushes and a model
promotion there)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from serving.schemas import CustomerProfile, EventsResponse, ScoreResponse

KEYS = {"k-admin": "admin", "k-scorer": "scorer", "k-events": "events"}
AS_OF = datetime(2026, 7, 1, tzinfo=UTC)  # end of the world's last day


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def call(self, method: str, path: str, body=None, key: str | None = "k-admin", raw: bytes | None = None):
        data = (
            raw if raw is not None else (json.dumps(body, default=str).encode() if body is not None else None)
        )
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if key:
            req.add_header("X-API-Key", key)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            text = err.read()
            try:
                return err.code, json.loads(text)
            except ValueError:
                return err.code, text.decode(errors="replace")

    def get_text(self, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(self.base + path, timeout=30) as resp:
            return resp.status, resp.read().decode()


@pytest.fixture(scope="module")
def world(trained_world, tmp_path_factory):
    """A private copy of the trained world (lake, features, models, MLflow store) and its settings."""
    from cli.settings import Settings

    settings, _ = trained_world
    root = tmp_path_factory.mktemp("serving_world")
    data = root / "data"
    for name in ("lake", "features", "models"):
        if (settings.data_dir / name).exists():
            shutil.copytree(settings.data_dir / name, data / name)
    shutil.copytree(settings.mlflow_dir, root / "mlruns")
    config = {
        "data_dir": str(data),
        "mlruns_dir": str(root / "mlruns"),
        "training": {"reasons": 3},
        "serving": {
            "api_keys": KEYS,
            "reload_interval_seconds": 0.5,
            "trigger_sweep_seconds": 0.2,
            "segment_max_seconds": 1.0,
            "triggers": [
                {"kind": "cart_abandonment", "name": "cart_abandonment", "minutes": 30},
                {
                    "kind": "score_threshold",
                    "name": "churn_risk",
                    "score": "churn_probability",
                    "threshold": 0.0,
                    "events": ["Checkout Started"],
                },
            ],
        },
    }
    path = root / "cip.yaml"
    path.write_text(yaml.safe_dump(config))
    return Settings(data_dir=data, mlruns_dir=root / "mlruns"), path


@pytest.fixture(scope="module")
def server(world):
    settings, config = world
    port = _free_port()
    env = {**os.environ, "CIP_CONFIG": str(config), "OMP_NUM_THREADS": "1", "BENTOML_DO_NOT_TRACK": "true"}
    log = open(config.parent / "serve.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli", "serve", "--port", str(port), "--host", "127.0.0.1", "--workers", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[1],
    )
    client = Client(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"service exited: {(config.parent / 'serve.log').read_text()[-3000:]}")
        try:
            if client.get_text("/readyz")[0] == 200:
                break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"service not ready: {(config.parent / 'serve.log').read_text()[-3000:]}")
        time.sleep(0.5)
    yield client
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def people(world):
    """Customers of the identity map with a CRM id and an anonymous id (the same person)."""
    settings, _ = world
    idmap = pq.read_table(settings.lake_dir / "derived" / "identity_map.parquet").to_pandas()
    crm = idmap[idmap.node_type == "crm_id"].groupby("customer_id").node.first()
    anon = idmap[idmap.node_type == "anonymous_id"].groupby("customer_id").node.first()
    both = pd.concat([crm.rename("crm"), anon.rename("anon")], axis=1).dropna().sort_index()
    both["crm"] = both["crm"].str.removeprefix("crm_id:")
    both["anon"] = both["anon"].str.removeprefix("anonymous_id:")
    return both


def _event(kind: str = "track", **fields) -> dict:
    ev = {"type": kind, "messageId": f"test-{uuid.uuid4()}", "timestamp": datetime.now(UTC).isoformat()}
    ev.update(fields)
    return ev


# --- scores -----------------------------------------------------------------------------------------
def test_score_equals_the_scoring_runtime_offline(server, world, people):
    """Scores and reasons over HTTP equal `Scorer.score` on Feast's own read of the same features."""
    from features import catalog as cat
    from features.store import open_store
    from training.scoring import Scorer

    settings, _ = world
    ids = list(people.index[:4])
    status, body = server.call(
        "POST",
        "/score",
        {"customer_ids": ids, "as_of": AS_OF.isoformat(), "include_features": True},
        key="k-scorer",
    )
    assert status == 200, body
    resp = ScoreResponse.model_validate(body)
    assert [c.customer_id for c in resp.customers] == ids

    scorer = Scorer.load(settings)
    store = open_store(settings)
    frame = pd.DataFrame({cat.JOIN_KEY: ids})
    for service in scorer.services:  # Feast's own online read, service by service
        got = store.online_features(service, ids, AS_OF)
        for c in scorer.feature_columns:
            if c in got and c not in frame.columns:
                frame[c] = pd.to_numeric(pd.Series(got[c], dtype=object), errors="coerce")
    served = pd.DataFrame([c.features for c in resp.customers])[scorer.feature_columns].astype(float)
    pd.testing.assert_frame_equal(served, frame[scorer.feature_columns].astype(float), check_exact=True)

    offline = scorer.score(frame, reasons=3)
    assert resp.model_versions == offline.versions
    for i, c in enumerate(resp.customers):
        row = offline.wide.iloc[i]
        assert c.churn_probability == pytest.approx(row["churn_probability"], abs=1e-12)
        assert c.clv_365d == pytest.approx(row["clv_365d"], rel=1e-12)
        for category, p in c.propensity.items():
            assert p == pytest.approx(row[f"propensity_{category}"], abs=1e-12)
        assert set(offline.reasons) == {"churn", "clv", "propensity", "nba"}
        for model, reasons in offline.reasons.items():
            assert [r.model_dump() for r in c.reasons[model]] == reasons[i]
        # next best action (cip-nba is a champion of the trained world): action, value, alternatives
        assert c.next_best_action is not None and c.next_best_action.action == row["next_best_action"]
        assert c.next_best_action.expected_value == pytest.approx(row["nba_value"], abs=1e-12)
        assert [(a.action, a.value) for a in c.next_best_action.alternatives] == [
            (a["action"], pytest.approx(a["value"], abs=1e-12)) for a in offline.alternatives[i]
        ]
        assert c.freshness.request_ts == AS_OF and c.freshness.snapshot_ts is not None
    # without thresholds from a batch run, quantile segments are skipped and said so
    assert resp.segments_run is None and "value_top_1" in resp.segments_skipped


def test_segments_follow_the_saved_thresholds(server, world, people):
    """Segments come from the same file batch scoring reads, with the latest saved thresholds."""
    from training.scoring import Scorer
    from training.segments import load_segments, save_thresholds

    settings, _ = world
    ids = list(people.index[:6])
    _, body = server.call("POST", "/score", {"customer_ids": ids, "as_of": AS_OF.isoformat()})
    book = load_segments(settings)
    population = pd.DataFrame(
        {"clv_365d": [c["clv_365d"] for c in body["customers"]]}
        | {
            f"propensity_{k}": [c["propensity"][k] for c in body["customers"]]
            for k in ("electronics", "fashion")
        }
    )
    thresholds = book.thresholds(population)
    save_thresholds(settings, "test-run", thresholds)
    deadline = time.monotonic() + 20
    while True:
        _, body = server.call("POST", "/score", {"customer_ids": ids, "as_of": AS_OF.isoformat()})
        if body["segments_run"] == "test-run" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert body["segments_run"] == "test-run" and body["segments_skipped"] == []
    scorer = Scorer.load(settings)
    traits = (
        pq.read_table(settings.lake_dir / "derived" / "traits.parquet").to_pandas().set_index("customer_id")
    )
    records = []
    for c in body["customers"]:
        record = {"customer_id": c["customer_id"], "churn_probability": c["churn_probability"]}
        record |= {"clv_365d": c["clv_365d"]} | {f"propensity_{k}": v for k, v in c["propensity"].items()}
        if c.get("next_best_action"):
            nba = c["next_best_action"]
            record |= {"next_best_action": nba["action"], "nba_value": nba["expected_value"]}
        for f in book.fields - set(record):
            if f in traits.columns and c["customer_id"] in traits.index:
                v = traits.at[c["customer_id"], f]
                record[f] = None if pd.isna(v) else v
        records.append(record)
        assert c["segments"] == book.segments_for(record, thresholds)
    # batch scoring's path (a frame through SegmentBook.assign) gives the same memberships
    frame = pd.DataFrame(records)
    for f in book.fields - set(frame.columns):
        frame[f] = None
    batch = book.assign(frame, thresholds).groupby("customer_id")["segment"].apply(list).to_dict()
    for c in body["customers"]:
        assert sorted(c["segments"]) == sorted(batch.get(c["customer_id"], []))
    assert any(c["segments"] for c in body["customers"])
    assert scorer.versions  # models loaded offline too


# --- events -----------------------------------------------------------------------------------------
def test_event_is_reflected_in_the_next_score(server, people):
    cid, anon = people.index[10], people["anon"].iloc[10]
    _, before = server.call("POST", "/score", {"customer_ids": [cid], "include_features": True})
    adds = before["customers"][0]["features"].get("cart_adds_1h") or 0
    ts = datetime.now(UTC).replace(microsecond=0)
    ev = _event(
        event="Product Added", anonymousId=anon, timestamp=ts.isoformat(), properties={"category": "books"}
    )
    status, body = server.call("POST", "/events", ev, key="k-events")
    assert status == 200, body
    result = EventsResponse.model_validate(body).results[0]
    assert result.customer_id == cid and not result.provisional and not result.duplicate
    _, after = server.call("POST", "/score", {"customer_ids": [cid], "include_features": True})
    got = after["customers"][0]
    assert got["features"]["cart_adds_1h"] == adds + 1
    assert datetime.fromisoformat(got["freshness"]["last_event_ts"]) == ts
    # the same messageId again is a duplicate: nothing is applied twice
    status, body = server.call("POST", "/events", ev, key="k-events")
    assert status == 200 and body["accepted"] == 0 and body["results"][0]["duplicate"]
    _, again = server.call("POST", "/score", {"customer_ids": [cid], "include_features": True})
    assert again["customers"][0]["features"]["cart_adds_1h"] == adds + 1


def test_identify_links_an_anonymous_id(server, world, people):
    """An unknown anonymous id gets a provisional customer; `identify` links it to the user's
    customer; the link is in the state the next `cip identity run` reads, and that run maps it."""
    from cip.live import link_edges, read_links

    settings, _ = world
    anon = f"anon-{uuid.uuid4()}"
    status, body = server.call(
        "POST", "/events", _event("page", anonymousId=anon, name="Home"), key="k-events"
    )
    assert status == 200, body
    first = body["results"][0]
    assert first["provisional"]
    provisional = first["customer_id"]
    status, prof = server.call("GET", f"/customers/{provisional}", key="k-admin")
    assert status == 200 and CustomerProfile.model_validate(prof).provisional

    cid, crm = people.index[20], people["crm"].iloc[20]
    ev = _event("identify", anonymousId=anon, userId=crm, traits={"email": "someone@example.com"})
    status, body = server.call("POST", "/events", ev, key="k-events")
    assert status == 200, body
    linked = body["results"][0]
    assert linked["customer_id"] == cid and linked["linked"] == [f"anonymous_id:{anon}"]
    _, body = server.call("POST", "/events", _event(event="Product Viewed", anonymousId=anon), key="k-events")
    assert body["results"][0]["customer_id"] == cid and not body["results"][0]["provisional"]

    links = read_links(settings).set_index("node")
    assert links.at[f"anonymous_id:{anon}", "customer_id"] == cid
    assert links.at[f"anonymous_id:{anon}", "kind"] == "identify"
    edges = link_edges(settings)
    assert ((edges.src == f"anonymous_id:{anon}") & (edges.dst == f"crm_id:{crm}")).any()

    from pipelines.identity.pipeline import run as identity_run

    identity_run(settings)
    idmap = (
        pq.read_table(settings.lake_dir / "derived" / "identity_map.parquet").to_pandas().set_index("node")
    )
    assert idmap.at[f"anonymous_id:{anon}", "customer_id"] == cid


def test_triggers_fire_exactly_once(server, world):
    from cip.live import state_path
    from serving.state import State

    settings, _ = world
    state = State(state_path(settings))
    # cart abandoned two hours ago: fires once, however often the sweep runs or the event is resent
    anon = f"anon-{uuid.uuid4()}"
    added = _event(
        event="Product Added",
        anonymousId=anon,
        timestamp=(datetime.now(UTC) - timedelta(hours=2)).isoformat(),
    )
    _, body = server.call("POST", "/events", added, key="k-events")
    cid = body["results"][0]["customer_id"]
    # a cart closed by an order within the window does not fire
    anon2 = f"anon-{uuid.uuid4()}"
    t0 = datetime.now(UTC) - timedelta(hours=3)
    _, body2 = server.call(
        "POST",
        "/events",
        {
            "batch": [
                _event(event="Product Added", anonymousId=anon2, timestamp=t0.isoformat()),
                _event(
                    event="Order Completed",
                    anonymousId=anon2,
                    timestamp=(t0 + timedelta(minutes=5)).isoformat(),
                    properties={"order_id": f"o-{uuid.uuid4()}", "revenue": 20, "currency": "USD"},
                ),
            ]
        },
        key="k-events",
    )
    closed = body2["results"][0]["customer_id"]
    deadline = time.monotonic() + 15
    while not state.outbox("cart_abandonment", cid) and time.monotonic() < deadline:
        time.sleep(0.2)
    server.call("POST", "/events", added, key="k-events")  # a retry of the same event
    time.sleep(1.0)  # several more sweeps
    fired = state.outbox("cart_abandonment", cid)
    assert len(fired) == 1 and fired[0].payload["message_id"] == added["messageId"]
    assert state.outbox("cart_abandonment", closed) == []

    # churn risk (threshold 0 on Checkout Started, for the test): the first event fires, the next does not
    anon3 = f"anon-{uuid.uuid4()}"
    _, a = server.call("POST", "/events", _event(event="Checkout Started", anonymousId=anon3), key="k-events")
    _, b = server.call("POST", "/events", _event(event="Checkout Started", anonymousId=anon3), key="k-events")
    who = a["results"][0]["customer_id"]
    assert [t["rule"] for t in a["results"][0]["triggers"]] == ["churn_risk"]
    assert b["results"][0]["triggers"] == []
    assert len(state.outbox("churn_risk", who)) == 1
    state.close()


def test_event_log_is_durable_and_read_by_ingest(server, world):
    """Accepted events are in fsynced log segments; closed segments are an events source of `cip ingest`."""
    from cip.lake import Lake
    from cip.live import closed_segments
    from pipelines.ingest.pipeline import run as ingest_run

    settings, _ = world
    ev = _event(event="Product Viewed", anonymousId=f"anon-{uuid.uuid4()}", properties={"product_id": "p-9"})
    status, _ = server.call("POST", "/events", ev, key="k-events")
    assert status == 200
    deadline = time.monotonic() + 15  # the segment closes after segment_max_seconds
    while time.monotonic() < deadline:
        lines = [json.loads(x) for p in closed_segments(settings) for x in p.read_text().splitlines()]
        if any(x["messageId"] == ev["messageId"] for x in lines):
            break
        time.sleep(0.3)
    else:
        raise AssertionError("the event never reached a closed segment")
    report = ingest_run(settings)
    assert sum(f.rows_quarantined for f in report.files) == 0
    events = Lake(settings.lake_dir).read("events", ["message_id", "event"])
    assert ev["messageId"] in set(events["message_id"])


# --- customers --------------------------------------------------------------------------------------
def test_customer_360_hides_pii_from_roles_without_it(server, world):
    settings, _ = world
    profiles = pq.read_table(settings.lake_dir / "derived" / "profiles.parquet").to_pandas()
    row = profiles[profiles.email.notna()].iloc[0]
    status, admin = server.call("GET", f"/customers/{row.customer_id}", key="k-admin")
    assert status == 200, admin
    admin = CustomerProfile.model_validate(admin)
    assert admin.pii_visible and admin.golden_record["email"] == row.email
    assert any(i.type == "email" and i.value == row.email for i in admin.identities)
    assert admin.traits is not None and admin.consent is not None and admin.live_score is not None
    status, scorer = server.call("GET", f"/customers/{row.customer_id}", key="k-scorer")
    scorer = CustomerProfile.model_validate(scorer)
    assert not scorer.pii_visible and "email" not in scorer.golden_record
    assert all(i.value is None for i in scorer.identities)
    assert row.email not in json.dumps(scorer.model_dump(mode="json"))
    assert scorer.consent == admin.consent


# --- auth and errors --------------------------------------------------------------------------------
def test_auth_and_error_codes(server, people):
    cid = people.index[0]
    body = {"customer_ids": [cid]}
    assert server.call("POST", "/score", body, key=None)[0] == 401
    assert server.call("POST", "/score", body, key="wrong")[0] == 401
    assert server.call("POST", "/score", body, key="k-events")[0] == 403
    assert server.call("POST", "/events", _event(anonymousId="a"), key="k-scorer")[0] == 403
    assert server.call("GET", f"/customers/{cid}", key="k-events")[0] == 403
    status, err = server.call("POST", "/score", {"customer_ids": [cid, "cus_doesnotexist"]})
    assert status == 404 and "cus_doesnotexist" in err["error"]
    status, err = server.call("GET", "/customers/cus_doesnotexist")
    assert status == 404 and "unknown customer" in err["error"]
    for bad, field in [
        ({"customer_ids": []}, "customer_ids"),
        ({"customer_ids": "x"}, "customer_ids"),
        ({"customer_ids": [cid], "reasons": 99}, "reasons"),
        ({"customer_ids": [cid], "models": ["nope"]}, "models"),
        ({"customer_ids": [cid], "as_of": "yesterday"}, "as_of"),
        ({"ids": [cid]}, "customer_ids"),
    ]:
        status, err = server.call("POST", "/score", bad)
        assert status == 422 and err["field"] == field, (bad, err)
    status, err = server.call("POST", "/score", raw=b"{not json")
    assert status == 422 and "json" in err["error"].lower()
    for bad, field in [
        (_event(anonymousId=None, event="Product Viewed"), "anonymousId|userId"),
        (_event(anonymousId="a", type="shout"), "type"),
        (_event(anonymousId="a", timestamp="not a time"), "timestamp"),
        (_event(anonymousId="a", timestamp=(datetime.now(UTC) + timedelta(days=3)).isoformat()), "timestamp"),
        (
            _event(anonymousId="a", event="Order Completed", properties={"order_id": "o"}),
            "properties.revenue",
        ),
        (
            _event(
                anonymousId="a",
                event="Order Completed",
                properties={"order_id": "o", "revenue": -1, "currency": "USD"},
            ),
            "properties.revenue",
        ),
        (
            _event(
                anonymousId="a",
                event="Order Completed",
                properties={"order_id": "o", "revenue": 5, "currency": "XXX"},
            ),
            "properties.currency",
        ),
        ({"type": "track", "anonymousId": "a", "timestamp": "2026-06-30T00:00:00Z"}, "messageId"),
        (_event(anonymousId="a", properties="not an object"), "properties"),
        ({"batch": [_event(anonymousId="a"), _event(anonymousId="b", type="nope")]}, "type"),
    ]:
        status, err = server.call("POST", "/events", bad, key="k-events")
        assert status == 422 and err["field"] == field, (bad, err)
    # nothing a client sends crashes it
    for raw in [
        b"",
        b"[]",
        b"null",
        b'{"batch": "x"}',
        b'{"batch": []}',
        b"\xff\xfe",
        b'{"customer_ids": [' + b"1," * 5000 + b"1]}",
    ]:
        assert server.call("POST", "/score", raw=raw)[0] in (401, 422)
        assert server.call("POST", "/events", raw=raw, key="k-events")[0] == 422
    assert server.get_text("/healthz")[0] == 200 and server.get_text("/readyz")[0] == 200
    _, metrics = server.get_text("/metrics")
    assert 'cip_request_duration_seconds_bucket{endpoint="/score"' in metrics


# --- hot reload -------------------------------------------------------------------------------------
def test_a_promotion_is_picked_up_while_requests_keep_succeeding(server, world, people):
    from training.registry import champion, connect, promote
    from training.specs import spec

    settings, _ = world
    client = connect(settings)
    registered = spec("churn").registered
    current = champion(client, registered)
    new = client.create_model_version(registered, source=current.source, run_id=current.run_id)
    ids = list(people.index[:2])
    statuses: list[int] = []
    versions: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            status, body = server.call("POST", "/score", {"customer_ids": ids}, key="k-scorer")
            statuses.append(status)
            if status == 200:
                versions.append(body["model_versions"]["churn"])

    worker = threading.Thread(target=hammer)
    worker.start()
    time.sleep(0.5)
    promote(settings, "churn", int(new.version))
    deadline = time.monotonic() + 30
    while str(new.version) not in versions and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(0.5)
    stop.set()
    worker.join()
    assert statuses and set(statuses) == {200}
    assert versions[0] == str(current.version) and versions[-1] == str(new.version)
    assert np.all(np.diff([int(v) for v in versions]) >= 0)  # never back to the old one
