"""Ingestion of the generated world reconciles exactly with the planted errors."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cip.lake import Lake
from cli.settings import Settings
from pipelines.generate.messy import malformed_email
from pipelines.ingest import standardize as std
from pipelines.ingest.pipeline import run
from tests.conftest import INGEST_NOW


def test_quarantine_matches_planted_errors_exactly(ingested_world):
    settings, report = ingested_world
    planted = json.loads((settings.truth_dir / "planted_errors.json").read_text())
    quarantine = Lake(settings.lake_dir).read("quarantine")
    got = quarantine.groupby(["source", "reason"]).size().to_dict()
    expected = {
        (src, reason): n for src, reasons in planted["quarantine"].items() for reason, n in reasons.items()
    }
    assert got == expected
    flagged: dict[str, int] = {}
    for f in report.ingested:
        for name, n in f.flagged.items():
            flagged[f"{f.source}:{name}"] = flagged.get(f"{f.source}:{name}", 0) + n
    assert flagged["crm_customers:invalid_email"] == planted["flagged"]["crm_customers"]["invalid_email"]


def test_every_file_reconciles(ingested_world):
    settings, report = ingested_world
    assert report.files and all(f.status == "ingested" for f in report.files)
    for b in Lake(settings.lake_dir).batches():
        assert b.rows_in == b.rows_accepted + b.rows_quarantined + b.duplicates, b.file_name
        assert b.rows_accepted == max(b.tables.values()) or b.source == "events"


def test_events_table_keeps_every_accepted_event(ingested_world):
    settings, report = ingested_world
    lake = Lake(settings.lake_dir)
    accepted = sum(f.rows_accepted for f in report.files if f.source == "events")
    ids = lake.read("events", ["message_id"])["message_id"]
    assert len(ids) == accepted and ids.is_unique


def test_event_phones_are_read_in_the_device_locale_region(ingested_world):
    """Web/app sign-ups type national numbers; with the device's locale every one is read
    (before locales, GB/DE/FR numbers were read as US and came out invalid)."""
    settings, _ = ingested_world
    ev = (
        Lake(settings.lake_dir)
        .read("events", ["phone_raw", "phone_e164", "locale"])
        .dropna(subset=["phone_raw"])
    )
    with_locale = ev[ev["locale"].notna()]
    assert len(with_locale) > 500 and with_locale["phone_e164"].notna().all()
    assert set(ev["locale"].dropna()) <= {
        "en-US",
        "es-US",
        "en-CA",
        "fr-CA",
        "en-GB",
        "pl-GB",
        "de-DE",
        "en-DE",
        "fr-FR",
        "en-FR",
    }


@pytest.mark.parametrize("domain", ["gmail.com", "yahoo.co.uk", "mail.example.org", "t-online.de"])
@pytest.mark.parametrize("kind", [0, 1, 2])
def test_planted_malformed_emails_are_invalid(domain, kind):
    bad = malformed_email(f"anna.smith@{domain}", kind)
    normalized = std.normalize_email(pd.Series([bad], dtype=std.STR))
    assert not bool(std.is_valid_email(normalized).fillna(False).iloc[0]), bad


def test_one_pass_events_match_the_generic_path_on_the_world(ingested_world, tmp_path):
    """The generated world's event files, ingested by the generic path, give the same tables."""
    from tests.test_ingest_stream import assert_same_tables

    settings, _ = ingested_world
    raw = tmp_path / "raw"
    (raw / "events").mkdir(parents=True)
    (raw / "fx_rates.csv").symlink_to(settings.raw_dir / "fx_rates.csv")
    for path in sorted((settings.raw_dir / "events").glob("*.jsonl")):
        (raw / "events" / path.name).symlink_to(path)
    generic = Settings(data_dir=tmp_path / "generic", ingest={"one_pass": False})
    run(generic, raw, now=INGEST_NOW)
    one, other = Lake(settings.lake_dir), Lake(generic.lake_dir)
    assert_same_tables(one, other, ["events", "order_lines"])
    quarantined = [
        q[q["source"] == "events"].sort_values(["source_file", "_row"]).reset_index(drop=True)
        for q in (one.read("quarantine"), other.read("quarantine"))
    ]
    pd.testing.assert_frame_equal(
        quarantined[0].drop(columns="ingested_at"), quarantined[1].drop(columns="ingested_at")
    )
    assert len(quarantined[0]) > 0
