"""Survivorship rules, table-driven, on hand-made CRM rows and identify events."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest
from pydantic import ValidationError

from pipelines.profiles.config import ProfileConfig, SurvivorshipRule
from pipelines.profiles.golden import build_profiles

T = pd.Timestamp


def crm_row(crm_id, channel, updated, **fields):
    base = {
        "crm_id": crm_id,
        "signup_channel": channel,
        "updated_at": T(updated, tz="UTC"),
        "first_name": None,
        "last_name": None,
        "email": None,
        "phone_e164": None,
        "birth_date": None,
        "street": None,
        "city": None,
        "postcode": None,
        "country": None,
        "loyalty_id": None,
        "consent_email": None,
        "consent_sms": None,
        "consent_profiling": None,
    }
    base.update(fields)
    return base


CRM = pd.DataFrame(
    [
        crm_row(
            "C1",
            "store",
            "2024-01-01",
            first_name="Jon",
            last_name="Smith",
            email="old@example.com",
            phone_e164="+12125552368",
            birth_date=date(1980, 5, 1),
            street="1 Main St",
            city="Springfield",
            postcode="11111",
            country="US",
            loyalty_id="L1",
            consent_email=True,
        ),
        crm_row(
            "C2",
            "web",
            "2024-06-01",
            first_name="John",
            last_name="Smith",
            email="new@example.com",
            birth_date=date(1980, 5, 1),
            street="9 Oak Ave",
            city="Shelbyville",
            postcode=None,
            country="US",
            consent_email=False,
            consent_sms=True,
        ),
        crm_row(
            "C3",
            "app",
            "2024-03-01",
            first_name="John",
            last_name="Smyth",
            email=None,
            phone_e164="+12125550000",
            birth_date=date(1980, 1, 5),
            loyalty_id="L9",
        ),
        crm_row("C4", "web", "2024-02-01", first_name="Ann", last_name="Lee"),
    ]
)
EVENTS = pd.DataFrame(
    [
        {
            "type": "identify",
            "user_id": "C2",
            "anonymous_id": "a1",
            "ts": T("2024-07-01", tz="UTC"),
            "first_name": "Johnny",
            "last_name": None,
            "email": "newest@example.com",
            "phone_e164": None,
        },
    ]
)
MAP = pd.DataFrame(
    {
        "node": ["crm_id:C1", "crm_id:C2", "crm_id:C3", "crm_id:C4", "anonymous_id:a1"],
        "node_type": ["crm_id", "crm_id", "crm_id", "crm_id", "anonymous_id"],
        "customer_id": ["cus_a", "cus_a", "cus_a", "cus_b", "cus_a"],
        "first_seen": [T("2024-01-01", tz="UTC")] * 5,
    }
)


def profiles(config: ProfileConfig, with_events: bool = True) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("crm_customers", CRM)
    con.register("identity_map", MAP)
    con.register("events", EVENTS)
    return build_profiles(con, config, has_events=with_events).set_index("customer_id")


@pytest.mark.parametrize(
    ("rule", "field", "expected", "source"),
    [
        (SurvivorshipRule(fields=("first_name",), strategy="most_frequent"), "first_name", "John", "crm:web"),
        (
            SurvivorshipRule(fields=("first_name",), strategy="most_recent"),
            "first_name",
            "Johnny",
            "events:identify",
        ),
        (
            SurvivorshipRule(fields=("first_name",), strategy="non_null_first"),
            "first_name",
            "Jon",
            "crm:store",
        ),
        (
            SurvivorshipRule(
                fields=("first_name",), strategy="source_priority", priority=("crm:app", "crm:store")
            ),
            "first_name",
            "John",
            "crm:app",
        ),
        (
            SurvivorshipRule(fields=("email",), strategy="most_recent"),
            "email",
            "newest@example.com",
            "events:identify",
        ),
        (
            SurvivorshipRule(fields=("email",), strategy="source_priority", priority=("crm:store",)),
            "email",
            "old@example.com",
            "crm:store",
        ),
        (
            SurvivorshipRule(fields=("phone_e164",), strategy="most_recent"),
            "phone_e164",
            "+12125550000",
            "crm:app",
        ),
        (
            SurvivorshipRule(fields=("birth_date",), strategy="most_frequent"),
            "birth_date",
            date(1980, 5, 1),
            None,
        ),
        (
            SurvivorshipRule(fields=("loyalty_id",), strategy="source_priority", priority=("crm:store",)),
            "loyalty_id",
            "L1",
            "crm:store",
        ),
        # priority list without a match falls back to most recent
        (
            SurvivorshipRule(fields=("loyalty_id",), strategy="source_priority", priority=("crm:kiosk",)),
            "loyalty_id",
            "L9",
            "crm:app",
        ),
        (
            SurvivorshipRule(fields=("consent_email",), strategy="most_recent"),
            "consent_email",
            False,
            "crm:web",
        ),
        (SurvivorshipRule(fields=("consent_sms",), strategy="most_recent"), "consent_sms", True, "crm:web"),
    ],
)
def test_single_field_rules(rule, field, expected, source):
    got = profiles(ProfileConfig(survivorship=[rule])).loc["cus_a"]
    value = got[field]
    if isinstance(expected, date):
        value = pd.Timestamp(value).date()
    assert value == expected
    if source:
        assert got[f"{field}_source"] == source


def test_address_survives_whole_from_one_record():
    rule = SurvivorshipRule(fields=("street", "city", "postcode", "country"), strategy="most_recent")
    got = profiles(ProfileConfig(survivorship=[rule])).loc["cus_a"]
    # the most recent record with a street (C2) wins, including its missing postcode:
    # never stitched from C1's postcode and C2's street
    assert (got["street"], got["city"]) == ("9 Oak Ave", "Shelbyville")
    assert pd.isna(got["postcode"]) and got["address_source"] == "crm:web"


def test_default_rules_give_one_row_per_customer_with_counts():
    got = profiles(ProfileConfig())
    assert sorted(got.index) == ["cus_a", "cus_b"]
    assert got.loc["cus_a", "n_crm_ids"] == 3 and got.loc["cus_a", "n_anonymous_ids"] == 1
    assert got.loc["cus_b", "first_name"] == "Ann" and pd.isna(got.loc["cus_b", "email"])


def test_without_events_only_crm_candidates():
    rule = SurvivorshipRule(fields=("email",), strategy="most_recent")
    got = profiles(ProfileConfig(survivorship=[rule]), with_events=False).loc["cus_a"]
    assert got["email"] == "new@example.com"


@pytest.mark.parametrize(
    "bad",
    [
        {"survivorship": [{"fields": ["shoe_size"], "strategy": "most_recent"}]},
        {"survivorship": [{"fields": ["email"], "strategy": "source_priority"}]},
        {"survivorship": [{"fields": ["email"], "strategy": "newest"}]},
        {
            "survivorship": [
                {"fields": ["email"], "strategy": "most_recent"},
                {"fields": ["email"], "strategy": "most_frequent"},
            ]
        },
    ],
)
def test_bad_rules_are_rejected_with_a_message(bad):
    with pytest.raises(ValidationError):
        ProfileConfig.model_validate(bad)
