"""Profiles and traits on the generated world: traits as of a past date never see later data."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from cip.lake import Lake
from features.traits import compute_traits, write_traits
from pipelines.profiles.pipeline import run as profiles_run

PAST = date(2025, 3, 31)


@pytest.fixture(scope="module")
def profiled(resolved_world):
    settings, _ = resolved_world
    result = profiles_run(settings)
    write_traits(settings)
    return settings, result, Lake(settings.lake_dir)


def test_profiles_tables_exist_and_hold_no_pii_in_activity(profiled):
    _, result, lake = profiled
    assert result.customers == len(lake.read("profiles"))
    for table in (
        "customer_orders",
        "customer_order_lines",
        "customer_events",
        "customer_email_events",
        "customer_exposures",
    ):
        columns = set(lake.read(table).columns)
        assert "customer_id" in columns
        assert not columns & {"email", "phone_e164", "first_name", "last_name", "street", "birth_date"}, table
    profiles = lake.read("profiles")
    assert profiles["customer_id"].is_unique
    # every customer has a traits row, with or without activity
    traits = lake.read("traits")
    assert sorted(traits["customer_id"]) == sorted(profiles["customer_id"])


def test_traits_as_of_a_past_date_never_see_later_data(profiled):
    _, _, lake = profiled
    orders = lake.read("customer_orders")
    end = pd.Timestamp(PAST + timedelta(days=1), tz="UTC")
    seen = (
        orders[orders["ts"] < end]
        .groupby("customer_id")
        .agg(n=("order_id", "size"), spend=("amount_base", "sum"), last=("ts", "max"))
    )
    traits = compute_traits(lake, PAST).set_index("customer_id")
    assert (traits["as_of"] == pd.Timestamp(PAST)).all()
    joined = traits.join(seen, how="left")
    buyers = joined["n"].notna()
    assert buyers.sum() > 100
    assert (joined.loc[buyers, "frequency"] == joined.loc[buyers, "n"]).all()
    assert (joined.loc[buyers, "monetary"] - joined.loc[buyers, "spend"]).abs().max() < 0.05  # cents rounding
    recency = (end - joined.loc[buyers, "last"]).dt.total_seconds() / 86400
    assert (joined.loc[buyers, "recency_days"] - recency).abs().max() < 1.01
    # customers whose first order is after PAST have no orders in their traits
    later_only = set(orders["customer_id"]) - set(seen.index)
    present = traits.index.intersection(list(later_only))
    assert (traits.loc[present, "frequency"].fillna(0) == 0).all()


def test_rfm_scores_and_segments(profiled):
    _, _, lake = profiled
    traits = lake.read("traits")
    buyers = traits[traits["frequency"] > 0]
    assert buyers["r_score"].between(1, 5).all() and buyers["f_score"].between(1, 5).all()
    assert set(traits.loc[traits["frequency"] == 0, "rfm_segment"]) <= {"no_orders"}
    assert {"champions", "hibernating"} <= set(buyers["rfm_segment"])
    # more recent buyers get higher recency scores
    assert buyers.groupby("r_score")["recency_days"].median().is_monotonic_decreasing
