"""A CRM export with a national id (tax number, SSN, DNI, ...): an agreeing id keeps a person whole
whose first name and birth date were re-keyed on one record (the household guards would otherwise
read that record as a relative), relatives with their own ids stay apart, and a placeholder id on
many accounts joins nobody. The export goes through ingest and identity with the default settings;
where ids are reliable, ``national_id`` as a veto role also keeps twins at one address apart."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cip.lake import Lake
from cli.settings import Settings
from pipelines.identity.edges import crm_match_records, probabilistic_edges
from pipelines.identity.pipeline import run as identity_run
from pipelines.ingest.pipeline import run as ingest_run

NOW = datetime(2026, 7, 1, tzinfo=UTC)
MAP = {"AcctNo": "crm_id", "TaxID": "national_id"}
HEADER = "AcctNo,first_name,last_name,birth_date,street,city,postcode,country,TaxID,created_at,updated_at"
TS = "2024-01-05T10:00:00+00:00,2024-01-05T10:00:00+00:00"
PEOPLE = [
    # one person, four records: the id in three layouts, once with two digits transposed
    "m-1,Chloe,Martin,1985-06-01,14 Elm Street,Springfield,62701,US,123-45-6789",
    "m-2,Clara,Martin,1958-01-06,14 Elm Street,Springfield,62701,US,123 45 6789",  # name + date re-keyed
    "m-3,Chloe,Martin,,9 Oak Avenue,Springfield,62704,US,123-45-6798",  # moved; id typo
    "m-4,Martin,Chloe,1985-06-01,14 Elm St,Springfield,62701,US,123456789",  # names swapped
    # her household: a husband, and twins born the same day, each with their own id
    "h-1,Paul,Martin,1983-02-14,14 Elm Street,Springfield,62701,US,987-65-4321",
    "h-2,Lucas,Martin,2010-05-05,14 Elm Street,Springfield,62701,US,111-22-3333",
    "h-3,Louis,Martin,2010-05-05,14 Elm Street,Springfield,62701,US,111-22-4444",
]
FIRST = ["Anna", "Ben", "Carla", "Dev", "Emil", "Fay", "Gus", "Hana", "Ivo", "Jade", "Kai", "Lea"]
LAST = ["Adams", "Baker", "Cole", "Diaz", "Evans", "Ford", "Grant", "Hughes", "Irwin", "Jones"]


def export(tmp_path: Path) -> Path:
    rows = [HEADER, *(f"{p},{TS}" for p in PEOPLE)]
    for i in range(240):  # a population for Splink to learn from; 12 of them typed 000-00-0000
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        dob = f"19{50 + i % 45:02d}-{1 + i % 12:02d}-{1 + i % 28:02d}"
        tax = "000-00-0000" if i % 20 == 0 else f"{500 + i:03d}-{i % 89 + 10:02d}-{1000 + 7 * i:04d}"
        rows.append(f"f-{i},{first},{last},{dob},{i + 1} Filler Road,Town{i % 17},{10000 + i},US,{tax},{TS}")
    raw = tmp_path / "export"
    raw.mkdir()
    (raw / "crm_customers.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return raw


def resolve(tmp: Path, **matching: object) -> tuple[Lake, pd.Series]:
    settings = Settings(
        data_dir=tmp / "data", ingest={"column_map": {"crm_customers": MAP}}, matching=matching
    )
    report = ingest_run(settings, export(tmp), now=NOW)
    assert sum(f.rows_quarantined for f in report.files) == 0
    identity_run(settings)
    lake = Lake(settings.lake_dir)
    return lake, lake.read("identity_map").set_index("node")["customer_id"]


@pytest.fixture(scope="module")
def owner(tmp_path_factory):
    return resolve(tmp_path_factory.mktemp("national_id"))


def test_national_id_is_standardized_in_the_lake(owner):
    lake, _ = owner
    crm = lake.read("crm_customers").set_index("crm_id")["national_id"]
    assert crm["m-1"] == crm["m-2"] == crm["m-4"] == "123456789"
    assert crm["m-3"] == "123456798"


def test_an_agreeing_national_id_keeps_a_re_keyed_record_with_its_person(owner):
    _, customer = owner
    assert customer[[f"crm_id:m-{i}" for i in range(1, 5)]].nunique() == 1


def test_relatives_with_their_own_national_ids_stay_apart(owner):
    _, customer = owner
    assert len({customer[f"crm_id:{i}"] for i in ("m-1", "h-1", "h-2")}) == 3  # wife, husband, a son


def test_a_national_id_veto_keeps_twins_at_one_address_apart(tmp_path):
    """Twins share surname, address and birth date, and their names are alike: by default the
    differing id only weighs against them; as a veto role (reliable ids) it keeps them apart while
    an agreeing id still joins the re-keyed record."""
    _, customer = resolve(tmp_path, veto_roles=["birth_date", "phone", "national_id"])
    assert customer["crm_id:h-2"] != customer["crm_id:h-3"]
    assert customer[[f"crm_id:m-{i}" for i in range(1, 5)]].nunique() == 1


def test_a_placeholder_national_id_joins_nobody(owner):
    _, customer = owner
    placeholder = [f"crm_id:f-{i}" for i in range(0, 240, 20)]
    assert customer[placeholder].nunique() == len(placeholder)


def test_a_lake_written_before_the_field_matches_without_it():
    con = duckdb.connect()
    con.sql(
        "CREATE TABLE crm_customers AS SELECT 'c1' AS crm_id, 'ann' AS first_name_key, 'lee' AS last_name_key,"
        " DATE '1990-01-02' AS birth_date, '1 main st' AS street, 'york' AS city, 'Y1' AS postcode,"
        " NULL::VARCHAR AS phone_e164, NULL::VARCHAR AS email"
    )
    records = crm_match_records(con)
    assert records["national_id"].isna().all() and records.loc[0, "record_id"] == "c1"


def test_an_agreeing_id_outweighs_a_contradicting_name_for_strong_evidence():
    """A strong pair whose first name differs is 'contradicted' (not strong evidence for the limits)
    unless a personal key such as the national id agrees."""
    pairs = pd.DataFrame(
        {
            "record_id_l": ["a", "c"],
            "record_id_r": ["b", "d"],
            "match_probability": [0.999, 0.999],
            "mw_first_name": [-6.5, -6.5],
            "key_agrees": [True, False],
        }
    )
    edges = probabilistic_edges(pairs, pd.Timestamp("2024-01-01", tz="UTC"), ["first_name"])
    assert edges["contradicted"].tolist() == [False, True]


def test_the_matching_model_is_retrained_when_its_settings_change_not_its_guards(tmp_path):
    from pipelines.identity.pipeline import model_path
    from pipelines.identity.probabilistic import META_KEY, load_model

    resolve(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", ingest={"column_map": {"crm_customers": MAP}})
    path = model_path(settings)
    trained = path.stat().st_mtime_ns
    identity_run(Settings(data_dir=tmp_path / "data", matching={"veto_roles": [], "guard_max_m": None}))
    assert path.stat().st_mtime_ns == trained  # guards act when pairs are scored: same model
    changed = Settings(data_dir=tmp_path / "data", matching={"max_pairs": 50_000})
    identity_run(changed)
    assert load_model(path)[META_KEY]["config_fingerprint"] == changed.matching.fingerprint()
