"""CIP's SQLite online store answers every read exactly as Feast's own SQLite store does.

The same store (same file, same registry) is read twice per request: through
``CipSqliteOnlineStore.get_online_features`` (the fast path) and through the inherited
``SqliteOnlineStore.get_online_features`` (Feast's generic path). Dicts, event timestamps and
the response protos must be identical.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from feast.infra.online_stores.sqlite import SqliteOnlineStore

from features import catalog as cat

NOW = datetime(2026, 7, 1, 12, 34, 56, 789000, tzinfo=UTC)


@pytest.fixture(scope="module")
def store(synthetic_store):
    return synthetic_store


@pytest.fixture(scope="module")
def ids(store) -> list[str]:
    from features.materialize import latest_snapshot

    _, path = latest_snapshot(store.data_dir)
    return pd.read_parquet(path, columns=[cat.JOIN_KEY])[cat.JOIN_KEY].tolist()


def _both(store, features, rows, full=False, **kw):
    feast = store.feast
    online = feast._get_provider().online_store
    args = (feast.config, features, rows, feast.registry, feast.project, full)
    return online.get_online_features(*args, **kw), SqliteOnlineStore.get_online_features(online, *args, **kw)


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        for x, y in zip(a[key], b[key], strict=True):
            both_nan = isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y)
            assert x == y or both_nan, (key, x, y)
            assert type(x) is type(y), (key, x, y)


def _check(store, features, rows, full=False):
    fast, stock = _both(store, features, rows, full)
    _same(fast.to_dict(), stock.to_dict())
    _same(fast.to_dict(include_event_timestamps=True), stock.to_dict(include_event_timestamps=True))
    assert fast.proto == stock.proto
    return fast


def test_the_yaml_selects_the_cip_store(store):
    from features.online_store import CipSqliteOnlineStore

    assert isinstance(store.feast._get_provider().online_store, CipSqliteOnlineStore)


@pytest.mark.parametrize("service", sorted(cat.SERVICES))
@pytest.mark.parametrize("full", [False, True])
def test_every_service_reads_as_feast_does(store, ids, service, full):
    svc = store.service(service)
    singles = [_check(store, svc, [{cat.JOIN_KEY: c, cat.REQUEST_TS: NOW}], full).to_dict() for c in ids[:12]]
    # several rows: repeated customers, an unknown one, naive and aware request times
    batch = [ids[0], "nobody", ids[1], ids[0], ids[2]]
    times = [NOW, NOW - timedelta(days=3), datetime(2026, 7, 2, 8), NOW, NOW]
    rows = [{cat.JOIN_KEY: c, cat.REQUEST_TS: t} for c, t in zip(batch, times, strict=True)]
    out = _check(store, svc, rows, full).to_dict()
    assert out[cat.JOIN_KEY] == batch
    name = cat.RECENCY.features[0].name
    if full:  # Feast 0.67 drops python on-demand outputs under full names; the fast path matches it
        assert f"{cat.RECENCY.name}__{name}" not in out
    else:
        assert out[name][1] is None  # the unknown customer has no history
        assert any(o[name][0] is not None for o in singles)


def test_feature_lists_and_columnar_rows(store, ids):
    refs = [
        f"{cat.BATCH_VIEWS[0].name}:{cat.BATCH_VIEWS[0].features[1].name}",
        f"{cat.RECENCY.name}:{cat.RECENCY.features[0].name}",
    ]
    _check(store, refs, {cat.JOIN_KEY: ids[:4], cat.REQUEST_TS: [NOW] * 4})
    plain = [f"{v.name}:{f.name}" for v in cat.BATCH_VIEWS for f in v.features]
    _check(store, plain, [{cat.JOIN_KEY: c} for c in ids[:6]])


def test_pushed_fresh_events_read_the_same(store, ids):
    cid = ids[3]
    t0 = datetime(2026, 7, 1, 10, tzinfo=UTC)
    store.push_events(
        pd.DataFrame(
            {
                cat.JOIN_KEY: [cid, cid],
                "ts": [t0, t0 + timedelta(minutes=5)],
                "event": ["Product Viewed", "Product Added"],
            }
        )
    )
    state = [f"{cat.FRESH.name}:{f.name}" for f in cat.FRESH.features]  # incl. timestamp lists
    out = _check(store, state, [{cat.JOIN_KEY: cid}, {cat.JOIN_KEY: ids[4]}]).to_dict()
    assert out["product_views_1h"] == [1, None]
    _check(store, store.service("nba_v1"), [{cat.JOIN_KEY: cid, cat.REQUEST_TS: NOW}])


def test_what_the_fast_path_leaves_to_feast(store, ids):
    """Version metadata is answered by Feast's own path, with the same result."""
    rows = [{cat.JOIN_KEY: ids[0], cat.REQUEST_TS: NOW}]
    fast, stock = _both(store, store.service("churn_v1"), rows, include_feature_view_version_metadata=True)
    assert fast.proto == stock.proto
    assert type(fast).__name__ == "OnlineResponse"


def test_bad_requests_fail_as_in_feast(store, ids):
    from feast.errors import RequestDataNotFoundInEntityRowsException

    with pytest.raises(RequestDataNotFoundInEntityRowsException):
        store.feast.get_online_features(
            features=store.service("churn_v1"), entity_rows=[{cat.JOIN_KEY: ids[0]}]
        )
    with pytest.raises(ValueError, match="same keys"):
        store.feast.get_online_features(
            features=store.service("churn_v1"),
            entity_rows=[
                {cat.JOIN_KEY: ids[0], cat.REQUEST_TS: NOW},
                {"customer": ids[1], cat.REQUEST_TS: NOW},
            ],
        )


def test_a_new_registry_is_picked_up(store, ids):
    """After apply (a new registry), the fast path re-plans instead of serving a stale plan."""
    rows = [{cat.JOIN_KEY: ids[0], cat.REQUEST_TS: NOW}]
    before = store.feast.get_online_features(features=store.service("clv_v1"), entity_rows=rows).to_dict()
    store.apply()
    store.feast.refresh_registry()
    after = _check(store, store.service("clv_v1"), rows).to_dict()
    assert after == before


def test_concurrent_reads_agree(store, ids):
    """A serving process reads from several threads at once: answers stay per-request exact."""
    from concurrent.futures import ThreadPoolExecutor

    svc = store.service("churn_v1")
    want = {c: _check(store, svc, [{cat.JOIN_KEY: c, cat.REQUEST_TS: NOW}]).to_dict() for c in ids[:20]}

    def read(i: int) -> bool:
        c = ids[i % 20]
        got = store.feast.get_online_features(
            features=svc, entity_rows=[{cat.JOIN_KEY: c, cat.REQUEST_TS: NOW}]
        )
        return got.to_dict() == want[c]

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert all(pool.map(read, range(800)))


def test_no_redundant_entity_key_index(store):
    """Feast's extra ``entity_key`` index is dropped; reads use the primary key."""
    import sqlite3

    with sqlite3.connect(store.data_dir / "online.db") as con:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'index'")]
        plan = con.execute(
            f'EXPLAIN QUERY PLAN SELECT value FROM "{cat.PROJECT}_{cat.BATCH_VIEWS[0].name}" WHERE entity_key = ?',
            (b"x",),
        ).fetchall()
    assert names and not [n for n in names if n.endswith("_ek")]
    assert "USING INDEX sqlite_autoindex" in str(plan)


def test_the_quick_read_gives_feasts_values_in_the_services_order(store, ids):
    """``cip features show`` reads without Feast; values and order are Feast's (fresh pushes included)."""
    from features.quick import read_online

    for service in cat.SERVICES:
        order = [cat.JOIN_KEY, *cat.service_features(service)]
        for c in ids[:6]:  # ids[3] has pushed fresh events (test_pushed_fresh_events_read_the_same)
            row = read_online(store.settings, service, c, NOW)
            want = store.online_features(service, [c], NOW)
            assert list(row.values) == list(want) == order
            _same({k: [v] for k, v in row.values.items()}, want)
            assert row.found and row.snapshot_ts is not None and row.request_ts == NOW
        nobody = read_online(store.settings, service, "nobody", NOW)
        assert not nobody.found and list(nobody.values) == order
        assert all(v is None for k, v in nobody.values.items() if k != cat.JOIN_KEY)


def test_cip_features_show_is_ordered_quick_and_clear_about_mistakes(store, ids, tmp_path):
    from tests.test_cli import cip

    env = {"CIP_DATA_DIR": str(store.settings.data_dir)}
    shown = cip("features", "show", ids[0], "--service", "clv_v1", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    names = [line.split("│")[1].strip() for line in shown.stdout.splitlines() if line.startswith("│")]
    assert names == [cat.JOIN_KEY, *cat.service_features("clv_v1")]
    # quick because Feast is not imported at all (it alone takes seconds)
    timed = cip("features", "show", ids[0], cwd=tmp_path, env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert timed.returncode == 0 and "cli.main" in timed.stderr and "feast" not in timed.stderr
    unknown = cip("features", "show", "cus_doesnotexist", cwd=tmp_path, env=env)
    assert unknown.returncode == 2 and "unknown customer 'cus_doesnotexist'" in unknown.stdout
    service = cip("features", "show", ids[0], "--service", "churn", cwd=tmp_path, env=env)
    assert service.returncode == 2 and "unknown feature service 'churn'" in service.stdout
    assert all(name in service.stdout for name in cat.SERVICES)
    for out in (unknown, service):
        assert "Traceback" not in out.stdout + out.stderr and "KeyError" not in out.stdout
