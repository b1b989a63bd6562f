"""Feature store: snapshots, point-in-time correctness, online/offline parity, push, declarations.

A small synthetic world (tests.synthetic) plus a few planted customers, in a real Feast store
(SQLite online, file offline, local registry) under a temp dir; built once per module.
"""

from __future__ import annotations

import ast
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from features import catalog as cat

REPO = Path(__file__).resolve().parents[1]
END = date(2026, 6, 30)  # synthetic activity ends before this day (the as-of date)
CUTOFF = datetime(2026, 6, 18, 9, 0, tzinfo=UTC)  # a label cutoff between two snapshots
LEAK = "ZZLEAK01"  # planted customer for the leakage test


def _ts(*args: int) -> pd.Timestamp:
    return pd.Timestamp(datetime(*args, tzinfo=UTC))


def _planted_tables() -> dict[str, pd.DataFrame]:
    """One customer: an order before the cutoff, one an hour after it, an offer answered in time."""
    orders = pd.DataFrame(
        {
            "order_id": ["L1", "L2", "L3"],
            "customer_id": [LEAK] * 3,
            "ts": [_ts(2026, 6, 1, 10), _ts(2026, 6, 18, 10), _ts(2026, 6, 10, 12)],
            "channel": ["web", "store", "app"],
            "amount_base": [10.0, 1000.0, 20.0],
            "n_items": [1, 1, 1],
            "source": ["events", "pos", "events"],
        }
    )
    lines = orders[["order_id", "customer_id", "ts", "channel"]].assign(
        category=["books", "toys", "books"], quantity=1, amount_base=orders["amount_base"]
    )
    events = pd.DataFrame(
        {
            "customer_id": [LEAK, LEAK],
            "ts": [_ts(2026, 6, 1, 9, 50), _ts(2026, 6, 18, 9, 30)],
            "event": ["Product Viewed", "Product Added"],
            "channel": ["web", "web"],
            "category": ["books", "toys"],
        }
    )
    email = pd.DataFrame(
        {
            "customer_id": [LEAK] * 3,
            "ts": [_ts(2026, 6, 2, 8), _ts(2026, 6, 2, 9), _ts(2026, 6, 18, 10)],
            "event_type": ["send", "open", "unsubscribe"],
            "campaign_id": ["K1"] * 3,
        }
    )
    # exposed 2026-06-05, answered by the 06-10 order: matures 06-19, after the 06-15 snapshot
    exposures = pd.DataFrame(
        {
            "customer_id": [LEAK],
            "exposure_id": ["XL1"],
            "campaign_id": ["K1"],
            "offer": ["discount_10"],
            "assignment_probability": [0.5],
            "exposed_at": [_ts(2026, 6, 5, 12)],
            "channel": ["email"],
        }
    )
    return {
        "customer_orders": orders,
        "customer_order_lines": lines,
        "customer_events": events,
        "customer_email_events": email,
        "customer_exposures": exposures,
    }


@pytest.fixture(scope="module")
def fstore(tmp_path_factory):
    """A built, applied and materialized feature store over ~400 synthetic customers + planted ones."""
    import pyarrow as pa

    from cli.settings import Settings
    from features.config import FeatureConfig
    from features.store import CipFeatureStore
    from tests.synthetic import SCHEMAS, write_world

    root = tmp_path_factory.mktemp("features")
    write_world(root / "lake", 400, end=END, days=500, seed=3, chunk=200)
    derived = root / "lake" / "derived"
    for name, extra in _planted_tables().items():
        base = pq.read_table(derived / f"{name}.parquet")
        add = pa.Table.from_pandas(extra, schema=SCHEMAS[name], preserve_index=False)
        pq.write_table(pa.concat_tables([base, add]), derived / f"{name}.parquet")
    store = CipFeatureStore(
        Settings(data_dir=root), FeatureConfig(history_days=35, chunk_customers=150, label_history_months=0)
    )
    build = store.build_snapshots()
    store.apply()
    result = store.materialize()
    return store, build, result


def _latest(store) -> pd.DataFrame:
    from features.materialize import latest_snapshot

    return pd.read_parquet(latest_snapshot(store.data_dir)[1])


# --- snapshots ------------------------------------------------------------------------------------
def test_snapshot_grid_adds_first_of_month_cutoffs_for_long_label_windows():
    from features.config import FeatureConfig

    cfg = FeatureConfig(history_days=14, label_cadence_months=3, label_history_months=12)
    dates = cfg.snapshot_dates(date(2026, 6, 30), date(2025, 8, 2))
    months = [d for d in dates if d.day == 1]
    # every third month back from the as-of month; the one before the first activity is dropped
    assert months == [date(2025, 10, 1), date(2026, 1, 1), date(2026, 4, 1), date(2026, 7, 1)]
    assert dates[-1] == date(2026, 7, 1) and dates == sorted(set(dates))
    assert FeatureConfig(label_history_months=0).month_dates(date(2026, 7, 1)) == []


def test_snapshot_grid_and_schema(fstore):
    from features.snapshots import snapshot_schema

    store, build, _ = fstore
    assert build.dates[-1] == END  # as-of = the day after the last activity
    assert all(d.weekday() == 0 for d in build.dates[:-1]) and len(build.dates) == 6
    files = sorted(build.directory.glob("*.parquet"))
    assert [date.fromisoformat(f.stem) for f in files] == build.dates
    schema = pq.read_schema(files[-1])
    assert schema.names == snapshot_schema().names
    assert {schema.field(f.name).type for f in cat.SNAPSHOT_FEATURES if f.kind == "timestamp"} == {
        snapshot_schema().field(cat.TIMESTAMP_FIELD).type
    }
    again = store.build_snapshots()  # unchanged lake: nothing recomputed
    assert again.computed == []


def test_no_pii_in_features():
    from features.snapshots import snapshot_schema

    pii = ("name", "phone", "address", "street", "city", "postcode", "birth", "loyalty", "country")
    for f in cat.ALL_FEATURES:
        assert not any(p in f.name for p in pii), f.name
        assert "email" not in f.name or f.name.startswith("email_"), f.name  # e-mail engagement counts only

    strings = [f.name for f in snapshot_schema() if str(f.type) == "string"]
    assert strings == [cat.JOIN_KEY]


def _reference(lake_dir: Path, d: date) -> dict[str, tuple[pd.Series, bool]]:
    """A few features recomputed naively in pandas (name -> (values, missing means zero))."""
    from cip.lake import Lake

    lake = Lake(lake_dir)
    s = pd.Timestamp(datetime(d.year, d.month, d.day, tzinfo=UTC))
    day = pd.Timedelta(days=1)
    o = lake.read("customer_orders")
    o = o[o.ts < s]
    lines = lake.read("customer_order_lines")
    lines = lines[(lines.ts < s) & (lines.ts >= s - 365 * day) & (lines.category != "unknown")]
    ev = lake.read("customer_events")
    ev = ev[(ev.ts < s) & (ev.ts >= s - 90 * day) & ~ev.event.isin(["identify", "alias"])]
    em = lake.read("customer_email_events")
    em = em[(em.ts < s) & (em.ts >= s - 30 * day)]
    sends = em[em.event_type == "send"].groupby("customer_id").size()
    opens = em[em.event_type == "open"].groupby("customer_id").size().reindex(sends.index, fill_value=0)
    # offers answered within 14 days, counted once matured
    x = lake.read("customer_exposures")
    x = x[(x.offer != "no_offer") & (x.exposed_at >= s - 365 * day) & (x.exposed_at + 14 * day <= s)]
    m = x.merge(lake.read("customer_orders")[["customer_id", "ts"]], on="customer_id", how="left")
    m["hit"] = (m.ts >= m.exposed_at) & (m.ts < m.exposed_at + 14 * day)
    by = "customer_id"
    out = {}
    out["frequency"] = (o.groupby(by).size(), True)
    out["orders_30d"] = (o[o.ts >= s - 30 * day].groupby(by).size(), True)
    out["spend_90d"] = (o[o.ts >= s - 90 * day].groupby(by).amount_base.sum().round(2), True)
    out["recency_days"] = (
        ((s - o.groupby(by).ts.max().dt.floor("s")).dt.total_seconds() / 86400).round(4),
        False,
    )
    out["categories_365d"] = (lines.groupby(by).category.nunique(), True)
    out["active_days_90d"] = (ev.assign(day=ev.ts.dt.floor("D")).groupby(by)["day"].nunique(), True)
    out["email_open_rate_30d"] = ((opens / sends).round(4), False)
    out["offers_responded_365d"] = (m.groupby([by, "exposure_id"]).hit.any().groupby(by).sum(), True)
    return out


def test_snapshot_values_match_naive_reference(fstore):
    from features.snapshots import compute_snapshots

    store, build, _ = fstore
    d = build.dates[-2]
    got = compute_snapshots(_lake(store), [d]).to_pandas().set_index(cat.JOIN_KEY)
    for col, (values, zero) in _reference(store.settings.lake_dir, d).items():
        expect = values.reindex(got.index)
        if zero:
            expect = expect.fillna(0)
        a, b = got[col].astype(float).to_numpy(), expect.astype(float).to_numpy()
        ok = np.isclose(a, b, atol=1e-3, equal_nan=True)
        assert ok.all(), (col, got.index[~ok][:5].tolist(), a[~ok][:5], b[~ok][:5])


def _lake(store):
    from cip.lake import Lake

    return Lake(store.settings.lake_dir)


# --- point in time ----------------------------------------------------------------------------------
def test_no_leakage_after_label_cutoff(fstore):
    store, _, _ = fstore
    later = datetime(2026, 6, 23, tzinfo=UTC)
    edf = pd.DataFrame(
        {
            cat.JOIN_KEY: [LEAK, LEAK, LEAK],
            cat.TIMESTAMP_FIELD: [CUTOFF, later, later + timedelta(days=8)],
            "label": [1, 0, 0],
        }
    )
    frame = store.training_frame("nba_v1", edf)
    assert frame["label"].tolist() == [1, 0, 0]  # labels and row order kept
    at_cutoff, after, matured = (frame.iloc[i] for i in range(3))
    # the 2026-06-18 10:00 order (an hour after the cutoff) is invisible at the cutoff ...
    assert at_cutoff["frequency"] == 2
    assert at_cutoff["monetary"] == 30.0
    assert at_cutoff["last_purchase_ts"] == _ts(2026, 6, 10, 12)
    assert at_cutoff["email_unsubscribed"] == 0
    assert at_cutoff["days_since_last_purchase"] == round(
        (CUTOFF - _ts(2026, 6, 10, 12)).total_seconds() / 86400, 4
    )
    # ... and so is the offer's response: its 14-day window closes after the snapshot.
    assert at_cutoff["offers_90d"] == 1 and at_cutoff["offers_responded_90d"] == 0
    # once in the past, both are seen
    assert after["frequency"] == 3 and after["monetary"] == 1030.0 and after["email_unsubscribed"] == 1
    assert after["offers_responded_90d"] == 1
    assert matured["offers_responded_365d"] == 1


def test_training_rows_never_see_the_future(fstore):
    store, build, _ = fstore
    ids = _latest(store)[cat.JOIN_KEY].sample(60, random_state=1).tolist()
    cut = [datetime(2026, 6, 3, 17, tzinfo=UTC), CUTOFF]
    edf = pd.DataFrame({cat.JOIN_KEY: ids * 2, cat.TIMESTAMP_FIELD: np.repeat(cut, len(ids))})
    frame = store.training_frame("churn_v1", edf)
    assert list(frame.columns) == [cat.JOIN_KEY, cat.TIMESTAMP_FIELD, *cat.service_features("churn_v1")]
    for col in (f.name for f in cat.SNAPSHOT_FEATURES if f.kind == "timestamp"):
        seen = frame[col].dropna()
        assert (seen < frame.loc[seen.index, cat.TIMESTAMP_FIELD]).all(), col
    assert (frame["days_since_last_purchase"].dropna() > 0).all()


# --- online -----------------------------------------------------------------------------------------
def test_online_equals_latest_offline_snapshot(fstore):
    store, _, result = fstore
    assert {v.mode for v in result.views} == {"full"}
    latest = _latest(store).set_index(cat.JOIN_KEY)
    ids = latest.sample(80, random_state=2).index.tolist() + [LEAK]
    now = datetime(2026, 7, 1, 12, tzinfo=UTC)
    online = store.online_features("nba_v1", ids, request_ts=now)
    assert online[cat.JOIN_KEY] == ids
    for f in cat.SNAPSHOT_FEATURES:
        for cid, got in zip(ids, online[f.name], strict=True):
            want = latest.at[cid, f.name]
            if pd.isna(want):
                assert got is None, (f.name, cid, got)
            elif f.kind == "timestamp":
                assert pd.Timestamp(got) == want, (f.name, cid)
            else:
                assert got == want, (f.name, cid, got, want)
    for name, (src, _) in cat.ON_DEMAND_DAYS.items():
        for cid, got in zip(ids, online[name], strict=True):
            ts = latest.at[cid, src]
            want = None if pd.isna(ts) else round((now - ts).total_seconds() / 86400, 4)
            assert got == want, (name, cid)


def test_fast_writer_rows_are_feasts_own(fstore):
    """Feast's own writer, given the same rows, leaves the online table byte for byte unchanged."""
    store, _, _ = fstore
    latest = _latest(store)
    sample = latest.sample(25, random_state=3)
    db = store.data_dir / "online.db"
    for view in cat.BATCH_VIEWS:
        table = f"{cat.PROJECT}_{view.name}"

        def dump(table=table):
            with sqlite3.connect(db) as con:
                return con.execute(f'SELECT * FROM "{table}" ORDER BY entity_key, feature_name').fetchall()

        before = dump()
        cols = [cat.JOIN_KEY, cat.TIMESTAMP_FIELD, *[f.name for f in view.features]]
        store.feast.write_to_online_store(view.name, sample[cols])
        assert dump() == before, view.name


def test_encoding_matches_protobuf():
    from feast.infra.online_stores.helpers import extract_text_and_num
    from feast.protos.feast.types.Value_pb2 import Value
    from feast.type_map import NULL_TIMESTAMP_INT_VALUE

    from features.online import encode_texts, encode_values

    rng = np.random.default_rng(0)
    floats = np.concatenate([rng.normal(0, 1e6, 200), [0.0, -0.0, 1e-7, 1e22, np.inf, -np.inf, np.nan, 0.1]])
    ints = np.concatenate([rng.integers(-(2**62), 2**62, 200), [0, 1, 127, 128, -1, 2**63 - 1, -(2**63)]])
    stamps = np.concatenate([rng.integers(0, 4 * 10**9, 200), [0, 1]])
    cases = [
        ("float", floats, np.isnan(floats), "double_val"),
        ("int", ints, np.zeros(len(ints), bool), "int64_val"),
        ("timestamp", stamps, np.arange(len(stamps)) % 7 == 0, "unix_timestamp_val"),
    ]
    for kind, values, null, field in cases:
        blob, lens = encode_values(kind, values, null)
        texts = encode_texts(kind, values, null)
        for i, v in enumerate(values.tolist()):
            if null[i]:
                proto = Value(unix_timestamp_val=NULL_TIMESTAMP_INT_VALUE) if kind == "timestamp" else Value()
            else:
                proto = Value(**{field: v})
            assert bytes(blob[i, : lens[i]]) == proto.SerializeToString(), (kind, v)
            text = extract_text_and_num(proto, False)[0]
            assert (texts[i].decode() or None) == text, (kind, v)


def test_push_then_read_back(fstore):
    store, _, _ = fstore
    cid = _latest(store)[cat.JOIN_KEY].iloc[5]
    t0 = datetime(2026, 7, 1, 10, tzinfo=UTC)
    ev = pd.DataFrame(
        {
            cat.JOIN_KEY: [cid] * 3,
            "ts": [t0, t0 + timedelta(minutes=30), t0 + timedelta(minutes=40)],
            "event": ["Product Viewed", "Product Added", "Product Viewed"],
        }
    )
    store.push_events(ev)
    got = store.online_features("nba_v1", [cid])
    assert (got["product_views_1h"], got["cart_adds_1h"]) == ([2], [1])
    assert got["last_event_ts"] == [t0 + timedelta(minutes=40)]
    # 80 minutes later the first view has left the hour; the batch features are untouched
    store.push_events(ev.iloc[[0]].assign(ts=t0 + timedelta(minutes=80)))
    got2 = store.online_features("nba_v1", [cid])
    assert (got2["product_views_1h"], got2["cart_adds_1h"]) == ([2], [1])
    assert got2["frequency"] == got["frequency"]
    assert "recent_view_ts" not in got2  # internal state is not served


def test_incremental_materialization_writes_only_changes(fstore):
    store, _, _ = fstore
    from features.materialize import latest_snapshot

    _, path = latest_snapshot(store.data_dir)
    original = path.read_bytes()
    snap = pd.read_parquet(path)
    cid, gone = snap[cat.JOIN_KEY].iloc[3], snap[cat.JOIN_KEY].iloc[4]
    db = store.data_dir / "online.db"

    def ts_rows():
        with sqlite3.connect(db) as con:
            return dict(
                con.execute(
                    f'SELECT entity_key, max(event_ts) FROM "{cat.PROJECT}_customer_transactions" '
                    "GROUP BY entity_key"
                ).fetchall()
            )

    before = ts_rows()
    try:
        snap.loc[snap[cat.JOIN_KEY] == cid, "spend_30d"] = 123456.78
        snap = snap[snap[cat.JOIN_KEY] != gone]
        snap.to_parquet(path, index=False)
        res = store.materialize()
        modes = {v.view: (v.mode, v.written, v.removed) for v in res.views}
        assert modes["customer_transactions"] == ("upsert", 1, 1)
        assert {m for v, (m, _, _) in modes.items() if v != "customer_transactions"} == {"upsert"}
        got = store.online_features("churn_v1", [cid, gone])
        assert got["spend_30d"][0] == 123456.78
        assert got["frequency"][1] is None  # removed customers leave the online store
        assert len(ts_rows()) == len(before) - 1
        assert store.materialize().views[0].mode == "unchanged"
    finally:
        path.write_bytes(original)
        store.materialize()
    got = store.online_features("churn_v1", [cid, gone])
    assert got["frequency"][1] is not None


# --- declarations -------------------------------------------------------------------------------------
def test_services_registered_from_catalogue(fstore):
    store, _, _ = fstore
    for name in cat.SERVICES:
        fs = store.feast.get_feature_service(name)
        served = [f.name for p in fs.feature_view_projections for f in p.features]
        assert sorted(served) == sorted(cat.service_features(name))
    assert len({f.name for f in cat.ALL_FEATURES}) == len(cat.ALL_FEATURES)


def test_no_feature_list_typed_outside_features():
    """A model-facing feature list must come from features.catalog, never be typed elsewhere
    (two or more feature names in one list/tuple/set/dict literal in product code)."""
    names = set(cat.FEATURES)
    offenders = []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        # features/ declares them; tests and benchmarks may name features to check values
        skip = ("features", "tests", "benchmarks", "data", "build")
        if rel.parts[0] in skip or any(p.startswith(".") for p in rel.parts):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        unpacked = {
            id(n.value)
            for n in ast.walk(tree)  # `A, B = "a", "b"` names constants, lists nothing
            if isinstance(n, ast.Assign) and isinstance(n.targets[0], ast.Tuple)
        }
        for node in ast.walk(tree):
            if id(node) in unpacked:
                continue
            if isinstance(node, ast.List | ast.Tuple | ast.Set | ast.Dict):
                elts = node.keys if isinstance(node, ast.Dict) else node.elts
                hits = [e.value for e in elts if isinstance(e, ast.Constant) and e.value in names]
                if len(hits) >= 2:
                    offenders.append(f"{rel}:{node.lineno} {hits[:4]}")
    assert not offenders, (
        "feature names listed outside features/ (use features.catalog.service_features):\n"
        + ("\n".join(offenders))
    )


def test_store_lives_under_the_data_dir(fstore):
    store, _, _ = fstore
    cfg = store.feast.config
    root = str(store.data_dir)
    assert cfg.registry.path.startswith(root) and cfg.online_store.path.startswith(root)
    yaml_text = (REPO / "features" / "feature_store.yaml").read_text()
    assert "${CIP_FEAST_DIR}" in yaml_text


def test_full_materialization_removes_unknown_customers(fstore):
    store, _, _ = fstore
    stale = _latest(store).iloc[[0]].assign(**{cat.JOIN_KEY: "ZZSTALE"})
    view = cat.CAMPAIGNS
    store.feast.write_to_online_store(
        view.name, stale[[cat.JOIN_KEY, cat.TIMESTAMP_FIELD, *(f.name for f in view.features)]]
    )
    assert store.online_features("clv_v1", ["ZZSTALE"])["offers_90d"] != [None]
    res = store.materialize(full=True)
    assert {v.mode for v in res.views} == {"full"}
    assert store.online_features("clv_v1", ["ZZSTALE"])["offers_90d"] == [None]
