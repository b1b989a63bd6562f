"""Bring your own CRM (issue 17): a company's own export — its own id format, header names (mapped
in ``ingest.column_map``), any ISO-3166 country, ISO or compact dates, no phone/e-mail/loyalty/
consent columns — goes through ingest, identity and profiles and comes out as customers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cip.errors import SourceFileError
from cip.lake import Lake
from cli.settings import Settings
from pipelines.identity.pipeline import run as identity_run
from pipelines.ingest.pipeline import run as ingest_run
from pipelines.profiles.pipeline import run as profiles_run

NOW = datetime(2026, 7, 1, tzinfo=UTC)
MAP = {
    "CustomerNo": "crm_id",
    "Vorname": "first_name",
    "Nachname": "last_name",
    "DOB": "birth_date",
    "Ort": "city",
}

EXPORT = """CustomerNo,Vorname,Nachname,DOB,street,Ort,postcode,country,created_at,updated_at
acct-001/a,Margaret,Okafor,19740312,12 Harbour Road,Lagos,101241,NG,2024-01-05T10:00:00+01:00,2024-02-01T10:00:00+01:00
ACCT 002,Margaret,Okafor,1974-03-12,12 Harbour Rd,Lagos,101241,NG,2024-03-05T10:00:00+01:00,2024-03-05T10:00:00+01:00
x9,Margret,Okafor,19740312,12 Harbour Road,Lagos,101241,NG,2024-04-05T10:00:00+01:00,2024-04-05T10:00:00+01:00
a-4,Margaret,Okafor,19740312,7 Marina Street,Lagos,101001,NG,2024-05-05T10:00:00+01:00,2024-05-05T10:00:00+01:00
55555,Margaret,Okafor-Bello,19740312,7 Marina Street,Lagos,101001,NG,2024-06-05T10:00:00+01:00,2024-06-05T10:00:00+01:00
jp-1,Haruto,Sato,19881130,1-2-3 Shibuya,Tokyo,1500002,JP,2024-01-05T10:00:00+09:00,2024-01-05T10:00:00+09:00
jp-2,Yui,Sato,19910704,1-2-3 Shibuya,Tokyo,1500002,JP,2024-01-06T10:00:00+09:00,2024-01-06T10:00:00+09:00
br-1,Ana,Souza,1990-01-02,Rua A 10,Recife,50000000,BR,2024-01-05T10:00:00-03:00,2024-01-05T10:00:00-03:00
"""
#: filler customers so that Splink has a population to learn from (one record each)
FIRST = ["Anna", "Ben", "Chidi", "Dora", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi", "Lena"]
LAST = ["Adeyemi", "Bauer", "Costa", "Dubois", "Eze", "Fischer", "Garcia", "Horvat", "Ito", "Jensen"]


def export(tmp_path: Path) -> Path:
    raw = tmp_path / "export"
    raw.mkdir()
    lines = [EXPORT.rstrip("\n")]
    for i in range(240):
        f, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        dob = f"19{50 + i % 45:02d}{1 + i % 12:02d}{1 + i % 28:02d}"
        lines.append(
            f"F{i:04d},{f},{last},{dob},{i + 1} Filler Street,Town{i % 17},{10000 + i},ZA,"
            "2024-01-01T00:00:00Z,2024-01-01T00:00:00Z"
        )
    (raw / "crm_customers.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return raw


@pytest.fixture(scope="module")
def byo(tmp_path_factory) -> tuple[Settings, Lake]:
    tmp = tmp_path_factory.mktemp("byo")
    settings = Settings(data_dir=tmp / "data", ingest={"column_map": {"crm_customers": MAP}})
    report = ingest_run(settings, export(tmp), now=NOW)
    assert sum(f.rows_quarantined for f in report.files) == 0
    identity_run(settings)
    profiles_run(settings)
    return settings, Lake(settings.lake_dir)


def test_export_is_ingested_with_its_own_ids_countries_and_dates(byo):
    _, lake = byo
    crm = lake.read("crm_customers").set_index("crm_id")
    assert {"acct-001/a", "ACCT 002", "x9", "55555", "jp-1", "br-1"} <= set(crm.index)
    assert set(crm["country"]) == {"NG", "JP", "BR", "ZA"}
    assert (
        str(crm.loc["acct-001/a", "birth_date"])[:10]
        == "1974-03-12"
        == str(crm.loc["ACCT 002", "birth_date"])[:10]
    )
    assert crm["email"].isna().all() and crm["phone_e164"].isna().all() and crm["loyalty_id"].isna().all()
    assert crm["signup_channel"].isna().all()


def test_five_records_of_one_person_come_out_as_one_customer(byo):
    _, lake = byo
    owner = lake.read("identity_map").set_index("node")["customer_id"]
    ids = ["acct-001/a", "ACCT 002", "x9", "a-4", "55555"]
    assert owner[[f"crm_id:{i}" for i in ids]].nunique() == 1
    # the household at one Tokyo address (different first names and birth dates) stays two
    assert owner["crm_id:jp-1"] != owner["crm_id:jp-2"]
    profiles = lake.read("profiles")
    assert len(profiles) == owner[owner.index.str.startswith("crm_id:")].nunique()
    margaret = profiles[profiles["customer_id"] == owner["crm_id:x9"]]
    assert len(margaret) == 1


def test_unmapped_export_names_the_missing_columns(tmp_path):
    settings = Settings(data_dir=tmp_path / "data")
    with pytest.raises(SourceFileError) as err:
        ingest_run(settings, export(tmp_path), now=NOW)
    assert "crm_id" in str(err.value) and "column_map" in str(err.value.fix)


def test_currency_with_an_fx_rate_is_accepted(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "fx_rates.csv").write_text(
        "date,currency,rate_to_base\n2024-01-05,JPY,0.0069\n2024-01-05,NGN,0.0011\n"
    )
    (raw / "pos_transactions.csv").write_text(
        "transaction_id,line_number,store_id,store_country,store_timezone,transaction_time,loyalty_id,"
        "product_id,category,quantity,unit_price,currency\n"
        "T1,1,S1,JP,Asia/Tokyo,2024-01-05 12:00:00,,P1,books,1,1000,JPY\n"
        "T2,1,S2,NG,Africa/Lagos,2024-01-05 12:00:00,,P2,books,2,500,NGN\n"
    )
    report = ingest_run(Settings(data_dir=tmp_path / "data"), raw, now=NOW)
    assert sum(f.rows_quarantined for f in report.files) == 0
    lines = Lake(tmp_path / "data" / "lake").read("pos_lines").set_index("transaction_id")
    assert lines.loc["T1", "amount_base"] == pytest.approx(6.9)
    assert lines.loc["T2", "amount_base"] == pytest.approx(1.1)
