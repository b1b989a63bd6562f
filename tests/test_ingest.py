"""Ingestion on small hand-written files: quarantine reasons, reconciliation, idempotency,
incremental loads, whole-file errors and atomic publishing."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from cip import lake as lake_module
from cip.errors import SourceFileError
from cip.lake import Lake
from cli.settings import Settings
from pipelines.ingest.pipeline import run

NOW = datetime(2026, 7, 1, tzinfo=UTC)

FX = """date,currency,rate_to_base
2024-01-01,EUR,1.10
2024-01-01,GBP,1.25
2024-01-02,EUR,1.20
"""

CRM = """crm_id,first_name,last_name,email,phone,birth_date,street,city,postcode,country,loyalty_id,signup_channel,created_at,updated_at,consent_email,consent_sms,consent_profiling
C1,josé,GARCÍA, Jose.Garcia@Example.com ,(212) 555-2368,03/12/1985,1 Main St,New York,10001,US,l001,store,2024-01-01T10:00:00-05:00,2024-01-02T10:00:00-05:00,yes,no,
C2,Anna,Müller,anna@@mail.com,030 12345678,12.03.1990,Hauptstr. 5,Berlin,10115,DE,,web,2024-01-01T10:00:00+01:00,2024-01-01T10:00:00+01:00,1,0,1
,Ghost,Row,ghost@example.com,,,,,,US,,web,2024-01-01T10:00:00Z,2024-01-01T10:00:00Z,,,
C4,Future,Person,f@example.com,,,,,,GB,,web,2099-01-01T00:00:00Z,2099-01-01T00:00:00Z,,,
C1,dup,licate,d@example.com,,,,,,US,,web,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,,,
"""

POS = """transaction_id,line_number,store_id,store_country,store_timezone,transaction_time,loyalty_id,product_id,category,quantity,unit_price,currency
T1,1,S1,DE,Europe/Berlin,2024-01-02 12:00:00,L001,p1,Home & Garden,2,10.00,EUR
T1,2,S1,DE,Europe/Berlin,2024-01-02 12:00:00,L001,p2,tech,1,5.00,EUR
T2,1,S2,US,America/New_York,2024-01-02 12:00:00,,p3,Books,1,-3.00,USD
,1,S2,US,America/New_York,2024-01-02 12:00:00,,p3,Books,1,3.00,USD
T4,1,S2,US,America/New_York,2024-01-02 12:00:00,,p3,Books,1,n/a,USD
T5,1,S2,US,America/New_York,2024-01-02 12:00:00,,p3,Books,1,3.00,XYZ
T6,1,S2,US,America/New_York,2099-01-02 12:00:00,,p3,Books,1,3.00,USD
"""

EVENTS = [
    {
        "type": "identify",
        "messageId": "m1",
        "timestamp": "2024-01-02T10:00:00+01:00",
        "anonymousId": "a1",
        "userId": "C2",
        "traits": {"email": "ANNA@example.com", "phone": "+49 30 12345678"},
        "context": {"device": {"id": "d1", "type": "mobile"}, "channel": "app"},
    },
    {
        "type": "alias",
        "messageId": "m2",
        "timestamp": "2024-01-02T10:00:00Z",
        "previousId": "a1",
        "userId": "C2",
    },
    {
        "type": "track",
        "event": "Order Completed",
        "messageId": "m3",
        "timestamp": "2024-01-02T12:00:00Z",
        "userId": "C2",
        "properties": {
            "order_id": "o1",
            "revenue": 30.0,
            "currency": "EUR",
            "products": [
                {"product_id": "p1", "category": "FOOD", "price": 10.0, "quantity": 2},
                {"product_id": "p2", "category": "Books", "price": 10.0, "quantity": 1},
            ],
        },
    },
    "{this is not json",
    {"type": "page", "messageId": "m5", "timestamp": "2024-01-02T12:00:00Z", "name": "Home"},  # no ids
    {
        "type": "track",
        "event": "Order Completed",
        "messageId": "m6",
        "timestamp": "2024-01-02T12:00:00Z",
        "userId": "C2",
        "properties": {"order_id": "o2", "revenue": "abc", "currency": "EUR", "products": []},
    },
    {
        "type": "track",
        "event": "Order Completed",
        "messageId": "m7",
        "timestamp": "2024-01-02T12:00:00Z",
        "userId": "C2",
        "properties": {"order_id": "o3", "revenue": 5, "currency": "XYZ", "products": []},
    },
    {
        "type": "page",
        "messageId": "m8",
        "timestamp": "2099-01-02T12:00:00Z",
        "anonymousId": "a9",
        "name": "Home",
    },
    {
        "type": "track",
        "event": "Product Viewed",
        "messageId": "m9",
        "timestamp": "2024-01-02T12:00:00Z",
        "anonymousId": "a1",
        "properties": {"product_id": "p9", "category": "Sporting Goods", "price": 12.5},
    },
]

EMAIL = """email,event_type,campaign_id,timestamp
Anna@Example.com,send,K1,2024-01-01T00:00:00Z
bad-email,open,K1,2024-01-01T00:00:00Z
anna@example.com,open,,2024-01-01T00:00:00Z
"""

EXPOSURES = """exposure_id,campaign_id,crm_id,offer,assignment_probability,exposed_at,channel
X1,K1,C1,discount_10,0.175,2024-01-01T00:00:00Z,email
X2,K1,,no_offer,0.3,2024-01-01T00:00:00Z,email
X3,K1,C2,free_shipping,0,2024-01-01T00:00:00Z,email
X4,K1,C3,double_points,1.5,2024-01-01T00:00:00Z,email
X5,K1,C4,no_offer,1,2024-01-01T00:00:00Z,email
"""


def write_world(folder: Path) -> Path:
    (folder / "events").mkdir(parents=True, exist_ok=True)
    (folder / "fx_rates.csv").write_text(FX)
    (folder / "crm_customers.csv").write_text(CRM)
    (folder / "pos_transactions.csv").write_text(POS)
    (folder / "email_events.csv").write_text(EMAIL)
    (folder / "campaign_exposures.csv").write_text(EXPOSURES)
    lines = [e if isinstance(e, str) else json.dumps(e) for e in EVENTS]
    (folder / "events" / "2024-01.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture()
def world(tmp_path: Path) -> tuple[Settings, Path]:
    settings = Settings(data_dir=tmp_path / "data")
    return settings, write_world(tmp_path / "raw")


def quarantine(settings: Settings) -> pd.DataFrame:
    return Lake(settings.lake_dir).read("quarantine")


def test_every_row_reconciles_and_reasons_are_exact(world):
    settings, raw = world
    report = run(settings, raw, now=NOW)
    for f in report.files:
        assert f.rows_in == f.rows_accepted + f.rows_quarantined + f.duplicates, f.file
    q = quarantine(settings)
    got = q.groupby(["source", "reason"]).size().to_dict()
    assert got == {
        ("crm_customers", "missing_required"): 1,
        ("crm_customers", "future_timestamp"): 1,
        ("crm_customers", "duplicate_key"): 1,
        ("pos_transactions", "invalid_amount"): 2,
        ("pos_transactions", "missing_required"): 1,
        ("pos_transactions", "unknown_currency"): 1,
        ("pos_transactions", "future_timestamp"): 1,
        ("events", "malformed_json"): 1,
        ("events", "missing_required"): 1,
        ("events", "invalid_amount"): 1,
        ("events", "unknown_currency"): 1,
        ("events", "future_timestamp"): 1,
        ("email_events", "invalid_email"): 1,
        ("email_events", "missing_required"): 1,
        ("campaign_exposures", "missing_required"): 1,
        ("campaign_exposures", "invalid_probability"): 2,  # 0 and 1.5; 1 is a valid probability
    }
    # quarantine names file, row and field, and keeps the raw record
    bad_json = q[q.reason == "malformed_json"].iloc[0]
    assert (
        bad_json["source_file"] == "2024-01.jsonl"
        and bad_json["_row"] == 4
        and bad_json["record"] == "{this is not json"
    )
    neg = q[(q.source == "pos_transactions") & (q.value == "-3.00")].iloc[0]
    assert (
        neg["field"] == "unit_price"
        and neg["_row"] == 3
        and json.loads(neg["record"])["transaction_id"] == "T2"
    )


def test_standardized_values_and_lineage(world):
    settings, raw = world
    run(settings, raw, now=NOW)
    lake = Lake(settings.lake_dir)
    crm = lake.read("crm_customers").set_index("crm_id")
    assert crm.loc["C1", "email"] == "jose.garcia@example.com"
    assert crm.loc["C1", "first_name"] == "José" and crm.loc["C1", "last_name"] == "García"
    assert crm.loc["C1", "phone_e164"] == "+12125552368"
    assert pd.Timestamp(crm.loc["C1", "birth_date"]).date().isoformat() == "1985-03-12"
    assert crm.loc["C1", "loyalty_id"] == "L001"
    assert crm.loc["C1", "created_at"] == pd.Timestamp("2024-01-01T15:00:00Z")
    assert bool(crm.loc["C1", "consent_email"]) and not bool(crm.loc["C1", "consent_sms"])
    assert pd.isna(crm.loc["C1", "consent_profiling"])
    # invalid e-mail is flagged, raw kept, row not lost
    assert (
        pd.isna(crm.loc["C2", "email"])
        and crm.loc["C2", "email_raw"] == "anna@@mail.com"
        and crm.loc["C2", "email_invalid"]
    )
    assert (
        crm.loc["C2", "phone_e164"] == "+493012345678"
        and pd.Timestamp(crm.loc["C2", "birth_date"]).date().isoformat() == "1990-03-12"
    )
    pos = lake.read("pos_lines").sort_values("line_number")
    t1 = pos[pos.transaction_id == "T1"]
    assert t1["ts"].iloc[0] == pd.Timestamp("2024-01-02T11:00:00Z")
    assert t1["amount_base"].round(6).tolist() == [24.0, 6.0]  # EUR rate of 2024-01-02 = 1.20
    assert t1["category"].tolist() == ["home", "electronics"]
    ev = lake.read("events").set_index("message_id")
    assert ev.loc["m1", "email"] == "anna@example.com" and ev.loc["m1", "ts"] == pd.Timestamp(
        "2024-01-02T09:00:00Z"
    )
    assert ev.loc["m3", "revenue_base"] == pytest.approx(36.0)
    assert ev.loc["m9", "category"] == "sports"
    lines = lake.read("order_lines")
    assert sorted(lines["category"]) == ["books", "grocery"] and lines["amount_base"].sum() == pytest.approx(
        36.0
    )
    for table in (
        "crm_customers",
        "pos_lines",
        "events",
        "order_lines",
        "email_events",
        "campaign_exposures",
        "fx_rates",
    ):
        frame = lake.read(table)
        assert {"_source", "_source_file", "_batch_id", "_ingested_at", "_row"} <= set(frame.columns), table
        assert frame["_batch_id"].notna().all()


def test_reingest_is_idempotent_and_new_files_are_incremental(world):
    settings, raw = world
    run(settings, raw, now=NOW)
    lake = Lake(settings.lake_dir)
    before = {t: len(lake.read(t)) for t in lake.table_names()}
    again = run(settings, raw, now=NOW)
    assert all(f.status == "skipped" for f in again.files)
    assert {t: len(lake.read(t)) for t in lake.table_names()} == before
    extra = {
        "type": "page",
        "messageId": "m100",
        "timestamp": "2024-02-01T00:00:00Z",
        "anonymousId": "a5",
        "name": "Home",
    }
    (raw / "events" / "2024-02.jsonl").write_text(json.dumps(extra) + "\n")
    third = run(settings, raw, now=NOW)
    assert [f.file for f in third.ingested] == [str(raw / "events" / "2024-02.jsonl")]
    assert len(lake.read("events")) == before["events"] + 1
    # raw copies are immutable byte-for-byte copies
    copies = list((settings.lake_dir / "raw" / "events").rglob("*.jsonl"))
    assert len(copies) == 2 and not os.access(copies[0], os.W_OK) or os.geteuid() == 0


def test_missing_required_column_stops_with_clear_message(world):
    settings, raw = world
    (raw / "pos_transactions.csv").write_text(POS.replace("unit_price", "price"))
    with pytest.raises(SourceFileError) as err:
        run(settings, raw, now=NOW)
    assert "pos_transactions.csv" in str(err.value) and "unit_price" in str(err.value)
    assert err.value.fix and "were published" in err.value.message
    # every other file of the run is published (each one batch), nothing of the broken file is
    report = err.value.report
    assert [(Path(f.file).name, f.status) for f in report.files if f.status != "ingested"] == [
        ("pos_transactions.csv", "failed")
    ]
    lake = Lake(settings.lake_dir)
    assert {b.source for b in lake.batches()} == {f.source for f in report.ingested} - {"pos_transactions"}
    assert {"fx_rates", "crm_customers", "events"} <= {b.source for b in lake.batches()}
    assert not lake.has("pos_lines")
    # once fixed, a rerun ingests only that file
    (raw / "pos_transactions.csv").write_text(POS)
    again = run(settings, raw, now=NOW)
    assert [Path(f.file).name for f in again.ingested] == ["pos_transactions.csv"]


def test_crash_mid_publish_leaves_previous_lake_intact(world, monkeypatch):
    settings, raw = world
    run(settings, raw, now=NOW)
    lake = Lake(settings.lake_dir)
    before_manifest = lake.manifest_path.read_bytes()
    before_events = lake.read("events")
    extra = {
        "type": "page",
        "messageId": "m200",
        "timestamp": "2024-02-01T00:00:00Z",
        "anonymousId": "a5",
        "name": "Home",
    }
    (raw / "events" / "2024-03.jsonl").write_text(json.dumps(extra) + "\n")

    real_replace = os.replace
    calls = {"n": 0}

    def crashing_replace(src, dst):
        calls["n"] += 1
        if str(dst).endswith("_manifest.json"):
            raise OSError("disk died while committing")
        return real_replace(src, dst)

    monkeypatch.setattr(lake_module.os, "replace", crashing_replace)
    with pytest.raises(OSError):
        run(settings, raw, now=NOW)
    monkeypatch.undo()
    assert calls["n"] > 1  # the batch's files were moved before the crash
    assert lake.manifest_path.read_bytes() == before_manifest
    pd.testing.assert_frame_equal(lake.read("events"), before_events)
    # the next run completes the batch exactly once
    run(settings, raw, now=NOW)
    assert len(lake.read("events")) == len(before_events) + 1
