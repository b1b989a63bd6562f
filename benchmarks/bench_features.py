"""Feature-store benchmark: snapshot build, materialization, online latency, historical retrieval.

    python benchmarks/bench_features.py --customers 100000 [--customers 1000000] [--work DIR]

For each size it generates synthetic resolved activity tables (tests.synthetic: ~2 years,
realistic rates), then runs each phase in a fresh subprocess and reports wall time and peak RSS
(the phase's process plus its worker processes, sampled every 100 ms):

* build        all weekly snapshots (default grid: 26 weeks + as-of, 27 dates)
* materialize  first load of the latest snapshot into an empty SQLite online store
* incremental  a run with nothing changed, then one after 5% of customers changed (two views)
* online       one customer's full ``churn_v1`` service through the Feast SDK (registry cached),
               p50/p99 over --reads reads; also each feature view alone, and churn_v1 through
               Feast's generic SQLite read path (what ``features.online_store`` overrides)
* historical   ``churn_v1`` training frame for up to 100k customers x 6 cutoffs

``--offline both`` also times the same join through Feast's generic DuckDB (ibis) path, which
``features.offline_store`` replaces with ASOF joins.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class PeakRss:
    """Peak RSS of this process and its children, sampled in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        import psutil

        self.proc = psutil.Process()
        self.peak = 0
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for p in [self.proc, *self.proc.children(recursive=True)]:
            with contextlib.suppress(Exception):  # a child may exit between listing and reading
                total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())


def _settings(work: Path):
    from cli.settings import Settings

    return Settings(data_dir=work)


# --- phases (each runs in its own subprocess) ------------------------------------------------------
def phase_generate(work: Path, customers: int) -> dict:
    from tests.synthetic import write_world

    t = time.perf_counter()
    stats = write_world(work / "lake", customers)
    return {"seconds": time.perf_counter() - t, "rows": stats.rows}


def phase_build(work: Path, customers: int) -> dict:
    from features.store import CipFeatureStore

    store = CipFeatureStore(_settings(work))
    with PeakRss() as rss:
        b = store.build_snapshots(force=True)
    return {
        "seconds": b.seconds,
        "snapshots": len(b.computed),
        "rows": b.rows,
        "peak_rss_mb": rss.peak / 2**20,
    }


def _materialize_once(store, **kwargs) -> dict:
    with PeakRss() as rss:
        r = store.materialize(**kwargs)
    return {
        "seconds": r.seconds,
        "rows": r.rows_written,
        "peak_rss_mb": rss.peak / 2**20,
        "views": {v.view: f"{v.mode} {v.written:,} customers {v.seconds:.1f}s" for v in r.views},
    }


def phase_materialize(work: Path, customers: int) -> dict:
    """First load of the latest snapshot into an empty online store."""
    import shutil

    from features.store import CipFeatureStore

    store = CipFeatureStore(_settings(work))
    (store.data_dir / "online.db").unlink(missing_ok=True)
    shutil.rmtree(store.data_dir / "online_state", ignore_errors=True)
    store.apply()
    return _materialize_once(store, full=True)


def phase_incremental(work: Path, customers: int) -> dict:
    """Nothing changed; then 5% of customers changed (each run in a fresh process)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from features import catalog as cat
    from features.materialize import latest_snapshot
    from features.store import CipFeatureStore

    if os.environ.get("_BENCH_STEP"):  # one step, in its own process (see _step)
        return _materialize_once(CipFeatureStore(_settings(work)))
    out = {"unchanged": _step(work, customers, "unchanged")}
    store = CipFeatureStore(_settings(work))
    _, path = latest_snapshot(store.data_dir)
    original = path.read_bytes()
    try:  # perturb the spend of 5% of customers in the latest snapshot, then restore it
        tab = pq.read_table(path)
        hit = pa.array(np.random.default_rng(0).random(tab.num_rows) < 0.05)
        for col in (
            next(f.name for f in v.features if f.kind == "float") for v in (cat.PROFILE, cat.TRANSACTIONS)
        ):
            i = tab.schema.get_field_index(col)
            tab = tab.set_column(i, col, pc.if_else(hit, pc.add(tab[col], 1.0), tab[col]))
        pq.write_table(tab, path)
        del tab, hit
        out["changed_5pct"] = _step(work, customers, "changed")
    finally:
        path.write_bytes(original)
        store.materialize()
    return out


def _step(work: Path, customers: int, step: str) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        "incremental",
        "--work",
        str(work),
        "--customers",
        str(customers),
    ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "_BENCH_STEP": step}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def phase_online(work: Path, customers: int, reads: int) -> dict:
    import random

    import pyarrow.parquet as pq

    from features import catalog as cat
    from features.materialize import latest_snapshot
    from features.store import CipFeatureStore

    store = CipFeatureStore(_settings(work))
    _, path = latest_snapshot(store.data_dir)
    ids = pq.read_table(path, columns=[cat.JOIN_KEY]).column(0).to_pylist()
    rnd = random.Random(1)
    fs = store.service("churn_v1")
    now = datetime.now(UTC)
    feast = store.feast

    def timed(features, with_request: bool) -> dict:
        for _ in range(200):  # warm up (registry, connections)
            c = rnd.choice(ids)
            feast.get_online_features(features=features, entity_rows=[{cat.JOIN_KEY: c, cat.REQUEST_TS: now}])
        lat = []
        for _ in range(reads):
            c = rnd.choice(ids)
            row = {cat.JOIN_KEY: c, cat.REQUEST_TS: now} if with_request else {cat.JOIN_KEY: c}
            t = time.perf_counter()
            feast.get_online_features(features=features, entity_rows=[row]).to_dict()
            lat.append((time.perf_counter() - t) * 1000)
        return {"p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99), "n": len(lat)}

    out = {
        "online_store": type(feast._get_provider().online_store).__name__,
        "churn_v1": timed(fs, True),
        "churn_v1_features": len(cat.service_features("churn_v1")),
    }
    # the same reads through Feast's generic SqliteOnlineStore path (what the CIP store overrides)
    from feast.infra.online_stores.sqlite import SqliteOnlineStore

    online = feast._get_provider().online_store
    lat = []
    for i in range(reads + 200):
        row = [{cat.JOIN_KEY: rnd.choice(ids), cat.REQUEST_TS: now}]
        t = time.perf_counter()
        SqliteOnlineStore.get_online_features(
            online, feast.config, fs, row, feast.registry, feast.project
        ).to_dict()
        if i >= 200:
            lat.append((time.perf_counter() - t) * 1000)
    out["churn_v1_feast_generic_path"] = {"p50_ms": _pct(lat, 0.5), "p99_ms": _pct(lat, 0.99), "n": len(lat)}
    for view in cat.BATCH_VIEWS:
        out[view.name] = timed([f"{view.name}:{f.name}" for f in view.features], False)
    out["customer_recency_only"] = timed([f"{cat.RECENCY.name}:{f.name}" for f in cat.RECENCY.features], True)
    return out


def phase_historical(work: Path, customers: int, offline: str) -> dict:
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    from features import catalog as cat
    from features.materialize import latest_snapshot
    from features.store import CipFeatureStore

    store = CipFeatureStore(_settings(work))
    snap_date, path = latest_snapshot(store.data_dir)
    ids = pq.read_table(path, columns=[cat.JOIN_KEY]).column(0).to_numpy(zero_copy_only=False)
    rng = np.random.default_rng(2)
    ids = rng.choice(ids, size=min(100_000, len(ids)), replace=False)
    end = datetime(snap_date.year, snap_date.month, snap_date.day, tzinfo=UTC)
    cutoffs = [end - timedelta(days=28 * k + 3, hours=5) for k in range(6)]
    edf = pd.DataFrame(
        {
            cat.JOIN_KEY: np.tile(ids, len(cutoffs)),
            cat.TIMESTAMP_FIELD: np.repeat(pd.to_datetime(cutoffs, utc=True), len(ids)),
        }
    )
    with PeakRss() as rss:
        t = time.perf_counter()
        frame = store.training_frame("churn_v1", edf)
        seconds = time.perf_counter() - t
    out = {}
    if offline == "both":  # the same point-in-time join through Feast's generic DuckDB (ibis) path
        from feast.infra.offline_stores.duckdb import DuckDBOfflineStore

        svc = store.service("churn_v1")
        views = [p for p in svc.feature_view_projections if p.name != cat.RECENCY.name]
        refs = [f"{p.name_to_use()}:{f.name}" for p in views for f in p.features]
        fvs = [store.feast.get_feature_view(p.name) for p in views]
        feast = store.feast
        t = time.perf_counter()
        stock = DuckDBOfflineStore.get_historical_features(
            feast.config, fvs, refs, edf.copy(), feast.registry, feast.project
        ).to_df()
        out["feast_generic_join_seconds"] = time.perf_counter() - t
        out["feast_generic_rows"] = len(stock)
    return {
        **out,
        "offline_store": store.feast.config.offline_store.type,
        "rows": len(frame),
        "features": len(cat.service_features("churn_v1")),
        "seconds": seconds,
        "peak_rss_mb": rss.peak / 2**20,
        "null_share": float(frame[cat.service_features("churn_v1")].isna().mean().mean()),
    }


PHASES = {
    "generate": phase_generate,
    "build": phase_build,
    "materialize": phase_materialize,
    "incremental": phase_incremental,
    "online": phase_online,
    "historical": phase_historical,
}


def run_phase(name: str, work: Path, customers: int, extra: list[str]) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--phase",
        name,
        "--work",
        str(work),
        "--customers",
        str(customers),
        *extra,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"phase {name} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, action="append")
    ap.add_argument("--work", type=Path, default=Path("/tmp/cip_bench_features"))
    ap.add_argument("--phase", choices=sorted(PHASES))
    ap.add_argument("--phases", default="generate,build,materialize,incremental,online,historical")
    ap.add_argument("--reads", type=int, default=2000)
    ap.add_argument("--offline", default="cip", choices=["cip", "both"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    sizes = args.customers or [100_000]
    if args.phase:
        kwargs = {"reads": args.reads} if args.phase == "online" else {}
        if args.phase == "historical":
            kwargs = {"offline": args.offline}
        res = PHASES[args.phase](args.work, sizes[0], **kwargs)
        print(json.dumps(res, default=str))
        return
    report = {}
    for n in sizes:
        work = args.work / f"c{n}"
        work.mkdir(parents=True, exist_ok=True)
        report[n] = {}
        for name in args.phases.split(","):
            if name == "generate" and (work / "lake" / "derived" / "customer_events.parquet").exists():
                continue
            extra = ["--reads", str(args.reads), "--offline", args.offline]
            t = time.perf_counter()
            res = run_phase(name, work, n, extra)
            report[n][name] = res
            print(
                f"[{n:>9,} customers] {name:<12} {time.perf_counter() - t:7.1f}s  {json.dumps(res, default=str)}",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
