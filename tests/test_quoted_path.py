"""A data folder whose path holds a quote and a space runs the whole 2k chain: every path and name
reaches SQL through ``cip.sql`` (one quoting helper for identifiers and literals)."""

from __future__ import annotations

import pytest

from cip.lake import Lake
from cip.sql import literal_list, quote_ident, quote_literal
from tests.conftest import INGEST_NOW, WORLD_AS_OF, WORLD_CUSTOMERS, WORLD_SEED


def test_quoting_helpers():
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"
    assert literal_list(["a", "b'c"]) == "'a', 'b''c'"


@pytest.mark.slow
def test_the_chain_runs_in_a_folder_named_with_a_quote_and_a_space(tmp_path):
    from cli.settings import Settings
    from features import store
    from features.traits import write_traits
    from pipelines.generate.pipeline import generate_world
    from pipelines.identity.pipeline import run as identity_run
    from pipelines.ingest.pipeline import run as ingest_run
    from pipelines.profiles.pipeline import run as profiles_run

    root = tmp_path / 'it\'s a "data" dir'
    settings = Settings(data_dir=root)
    generate_world(root, n_customers=WORLD_CUSTOMERS, seed=WORLD_SEED, as_of=WORLD_AS_OF)
    report = ingest_run(settings, now=INGEST_NOW)
    assert report.ingested
    identity_run(settings)
    profiles = profiles_run(settings)
    build = store.build(settings)
    assert build.rows > 0
    _, traits = write_traits(settings, build)
    assert traits == profiles.customers
    store.apply(settings)
    store.materialize(settings)
    lake = Lake(settings.lake_dir)
    customer = lake.read("profiles", columns=["customer_id"])["customer_id"].iloc[0]
    online = store.online_features(settings, "churn_v1", [customer])
    assert online["customer_id"] == [customer]
