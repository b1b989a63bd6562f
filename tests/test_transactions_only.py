"""A lake with store sales only (no CRM export, no web events) still becomes customers, activity
and features: the shape of a retailer's POS export, or of the CDNOW data set."""

from __future__ import annotations

import shutil

import pandas as pd

from cip.lake import Lake
from cli.settings import Settings
from tests.conftest import INGEST_NOW


def test_store_sales_alone_go_from_ingest_to_features(world_settings, tmp_path):
    from features import store
    from pipelines.identity.pipeline import run as identity_run
    from pipelines.ingest.pipeline import run as ingest_run
    from pipelines.profiles.pipeline import run as profiles_run

    source = tmp_path / "export"
    source.mkdir()
    for name in ("pos_transactions.csv", "fx_rates.csv"):
        shutil.copy(world_settings.raw_dir / name, source / name)
    settings = Settings(data_dir=tmp_path / "data")
    ingest_run(settings, source, now=INGEST_NOW)
    identity_run(settings)
    result = profiles_run(settings)

    lake = Lake(settings.lake_dir)
    lines = lake.read("pos_lines")
    cards = lines["loyalty_id"].dropna().nunique()
    assert result.customers == cards > 0  # one customer per loyalty card, no CRM needed
    orders = lake.read("customer_orders")
    assert list(orders.columns[:5]) == ["order_id", "customer_id", "ts", "channel", "amount_base"]
    assert set(orders["source"]) == {"pos"} and (orders["channel"] == "store").all()
    carded = lines.dropna(subset=["loyalty_id"])
    assert orders["order_id"].nunique() == carded["transaction_id"].nunique()
    assert abs(orders["amount_base"].sum() - carded["amount_base"].sum()) < 0.01

    build = store.build(settings)
    assert build.rows > 0
    store.apply(settings)
    entity = pd.DataFrame({"customer_id": orders["customer_id"].unique()[:20]})
    entity["event_timestamp"] = pd.Timestamp(build.dates[-1], tz="UTC")
    frame = store.training_frame(settings, "clv_v1", entity)
    assert (frame["frequency"] > 0).all()
