"""Real-time serving benchmark: `cip serve` against Feast's own feature server, in one run.

Command (a trained world: `cip generate/ingest/identity run/profiles/features .../train all`)::

    .venv/bin/python benchmarks/bench_serving.py --data-dir W/data --mlruns-dir W/mlruns \
        --concurrency 1,8,16,32 --duration 10 --workers 2

Starts, as separate processes on this machine:

- `cip serve` (BentoML) with a benchmark API key;
- `feast serve` on the same feature repo and online store;
- `wrk` (the load generator, its own process) once per endpoint and concurrency, cycling through
  2,000 customers of the identity map, one customer per request.

Prints p50/p99 latency and requests/s for `POST /score` (one customer, every champion, top-3
reasons) and for `POST /get-online-features` of each FeatureService the scorer reads, then the
event-to-visible-in-score latency (POST /events, then POST /score until the score shows the event),
then where a score request's time goes inside the worker (in-process breakdown of the engine).
The world is written to (events, links): use a copy for repeated runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
KEY = f"bench-{uuid.uuid4().hex[:12]}"

LUA = """
ids = {%(ids)s}
i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = "%(key)s"
request = function()
  i = i + 1
  local id = ids[(i %% #ids) + 1]
  return wrk.format(nil, nil, nil, string.format('%(body)s', id))
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT {\\"requests\\": %%d, \\"seconds\\": %%.4f, \\"p50_us\\": %%d, \\"p90_us\\": %%d, \\"p99_us\\": %%d, \\"max_us\\": %%d, \\"errors\\": %%d, \\"non2xx\\": %%d}\\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict, key: str | None = KEY, timeout: float = 30) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, {"error": err.read().decode(errors="replace")}


def wait_until(check, what: str, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            if check():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"{what} not ready after {seconds} s")


def wrk(url: str, body_fmt: str, ids: list[str], concurrency: int, duration: float, key: str | None) -> dict:
    script = LUA % {
        "ids": ", ".join(json.dumps(i) for i in ids),
        "key": key or "",
        "body": body_fmt.replace("'", "\\'"),
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    threads = min(concurrency, 2)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{concurrency}",
            f"-d{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            f.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(f.name)
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        raise SystemExit(f"wrk gave no result:\n{out}")
    r = json.loads(m.group(1))
    r["rps"] = r["requests"] / r["seconds"]
    return r


def feast_body(service: str) -> str:
    """Feast's request for one customer's FeatureService row (its on-demand views need ``request_ts``)."""
    now = int(time.time())
    return f'{{"feature_service": "{service}", "entities": {{"customer_id": ["%s"], "request_ts": [{now}]}}}}'


def show(label: str, c: int, r: dict) -> None:
    print(
        f"{label:<34} c={c:<3} p50 {r['p50_us'] / 1000:7.2f} ms  p90 {r['p90_us'] / 1000:7.2f} ms  "
        f"p99 {r['p99_us'] / 1000:7.2f} ms  {r['rps']:8.1f} req/s  errors {r['errors']}  non-2xx {r['non2xx']}",
        flush=True,
    )


def customers(settings, n: int) -> tuple[list[str], list[str]]:
    """Customer ids with features (traits) and, for the event test, anonymous ids of such customers."""
    lake = settings.lake_dir / "derived"
    traits = pq.read_table(lake / "traits.parquet", columns=["customer_id"]).column(0).to_pylist()
    rng = np.random.default_rng(7)
    ids = [str(x) for x in rng.choice(traits, size=min(n, len(traits)), replace=False)]
    idmap = pq.read_table(
        lake / "identity_map.parquet", columns=["customer_id", "node_type", "node"]
    ).to_pandas()
    anon = idmap[(idmap.node_type == "anonymous_id") & idmap.customer_id.isin(set(ids))]
    anon = anon.groupby("customer_id").node.first().str.removeprefix("anonymous_id:")
    return ids, [f"{c}\t{a}" for c, a in anon.items()]


def event_to_score(base: str, pairs: list[str], n: int) -> list[float]:
    """Seconds from sending an event to the first score whose freshness shows it."""
    out = []
    for pair in pairs[:n]:
        cid, anon = pair.split("\t")
        ts = datetime.now(UTC).replace(microsecond=0)  # the online store keeps seconds
        ev = {
            "type": "track",
            "event": "Product Added",
            "messageId": f"bench-{uuid.uuid4()}",
            "anonymousId": anon,
            "timestamp": ts.isoformat(),
            "properties": {"category": "books"},
        }
        t0 = time.perf_counter()
        status, body = post(base + "/events", ev)
        if status != 200:
            raise SystemExit(f"/events: {status} {body}")
        while True:
            _, sc = post(base + "/score", {"customer_ids": [cid], "reasons": 3})
            seen = sc["customers"][0]["freshness"]["last_event_ts"]
            if seen and datetime.fromisoformat(seen) >= ts:
                break
            if time.perf_counter() - t0 > 5:
                raise SystemExit(f"event for {cid} not visible after 5 s: {sc['customers'][0]['freshness']}")
        out.append(time.perf_counter() - t0)
    return out


def breakdown(settings, ids: list[str], reps: int = 400) -> None:
    """Where a one-customer score's time goes inside a worker (same engine code, in process)."""
    from serving.engine import Engine
    from serving.schemas import ScoreRequest

    engine = Engine(settings)
    now = datetime.now(UTC)
    explained = f"predict + top-3 reasons ({settings.training.reasons_method})"
    parts: dict[str, list[float]] = {
        "online read (1 SQLite statement)": [],
        "predict, all models, no reasons": [],
        explained: [],
        "whole Engine.score (incl. segments, response)": [],
        "response JSON encoding": [],
    }
    for i in range(reps):
        cid = [ids[i % len(ids)]]
        t = time.perf_counter()
        rows = engine.reader.read(cid, now)
        parts["online read (1 SQLite statement)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        engine.fast.score(engine.scorer, rows.matrix, cid, reasons=0, frame=lambda r=rows: r.frame)
        parts["predict, all models, no reasons"].append(time.perf_counter() - t)
        t = time.perf_counter()
        engine.fast.score(engine.scorer, rows.matrix, cid, reasons=3, frame=lambda r=rows: r.frame)
        parts[explained].append(time.perf_counter() - t)
        t = time.perf_counter()
        resp = engine.score(ScoreRequest(customer_ids=cid, reasons=3))
        parts["whole Engine.score (incl. segments, response)"].append(time.perf_counter() - t)
        t = time.perf_counter()
        resp.model_dump_json()
        parts["response JSON encoding"].append(time.perf_counter() - t)
    print(f"\nwhere the time goes (in process, one customer, {reps} reps, ms):")
    for name, v in parts.items():
        a = np.array(v[20:]) * 1000
        print(f"  {name:<48} p50 {np.percentile(a, 50):6.2f}  p99 {np.percentile(a, 99):6.2f}")
    trees = {
        n: getattr(getattr(m, "estimator", None), "best_iteration_", None)
        for n, m in engine.scorer.models.items()
    }
    print(f"  models {engine.scorer.versions}, trees used {trees}, features {len(engine.reader.columns)}")
    engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--mlruns-dir", type=Path, required=True)
    ap.add_argument("--concurrency", default="1,8,16,32")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--events", type=int, default=200, help="event-to-score samples (0: skip)")
    ap.add_argument("--reasons", type=int, default=3, help="reason codes per model in /score")
    ap.add_argument(
        "--reasons-method", choices=["tree_shap", "path"], default="tree_shap", help="training.reasons_method"
    )
    ap.add_argument("--skip-feast", action="store_true")
    ap.add_argument("--skip-breakdown", action="store_true")
    args = ap.parse_args()

    from cli.settings import Settings
    from training.config import TrainingConfig
    from training.scoring import Scorer

    settings = Settings(
        data_dir=args.data_dir.resolve(),
        mlruns_dir=args.mlruns_dir.resolve(),
        training=TrainingConfig(reasons_method=args.reasons_method),
    )
    ids, pairs = customers(settings, 2000)
    services = Scorer.load(settings).services
    levels = [int(c) for c in args.concurrency.split(",")]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {os.getloadavg()}, {os.cpu_count()} CPUs")
    print(f"world {args.data_dir}: {len(ids)} customers cycled; services {services}; workers {args.workers}")
    print(f"reasons: top {args.reasons} per model by {args.reasons_method}")

    env = {
        **os.environ,
        "CIP_DATA_DIR": str(settings.data_dir),
        "CIP_MLRUNS_DIR": str(settings.mlruns_dir),
        "CIP_SERVING__API_KEYS": json.dumps({KEY: "admin"}),
        "CIP_TRAINING__REASONS_METHOD": args.reasons_method,
        "OMP_NUM_THREADS": "1",
        "BENTOML_DO_NOT_TRACK": "true",
    }
    env.pop("CIP_CONFIG", None)
    port, fport = free_port(), free_port()
    logs = Path(tempfile.mkdtemp(prefix="bench_serving_"))
    procs = []
    try:
        serve = subprocess.Popen(
            [sys.executable, "-m", "cli", "serve", "--port", str(port), "--host", "127.0.0.1"]
            + ["--workers", str(args.workers)],
            env=env,
            cwd=ROOT,
            stdout=open(logs / "serve.log", "w"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
        )
        procs.append(serve)
        base = f"http://127.0.0.1:{port}"
        if not args.skip_feast:
            feast_env = {**env, "CIP_FEAST_DIR": str(settings.features_dir)}
            feast = subprocess.Popen(
                [str(Path(sys.executable).parent / "feast"), "-c", str(ROOT / "features"), "serve"]
                + [
                    "-p",
                    str(fport),
                    "--no-access-log",
                    "-w",
                    str(args.workers),
                    "--max-requests",
                    "10000000",
                ],
                env=feast_env,
                cwd=ROOT / "features",
                stdout=open(logs / "feast.log", "w"),  # noqa: SIM115
                stderr=subprocess.STDOUT,
            )
            procs.append(feast)
        t0 = time.monotonic()
        wait_until(lambda: post(base + "/score", {"customer_ids": ids[:1]})[0] == 200, "cip serve", serve)
        print(f"cip serve ready in {time.monotonic() - t0:.1f} s (logs {logs})", flush=True)
        fbase = f"http://127.0.0.1:{fport}"
        if not args.skip_feast:
            body = json.loads(feast_body(services[0]) % ids[0])
            wait_until(
                lambda: post(fbase + "/get-online-features", body, None)[0] == 200, "feast serve", feast
            )
        # warm up both (page cache, registry, first TreeSHAP)
        wrk(base + "/score", '{"customer_ids": ["%s"], "reasons": 3}', ids, 4, 3, KEY)
        if not args.skip_feast:
            for svc in services:
                wrk(
                    fbase + "/get-online-features",
                    feast_body(svc),
                    ids,
                    4,
                    2,
                    None,
                )
        print()
        for c in levels:
            score_body = '{"customer_ids": ["%s"], "reasons": ' + str(args.reasons) + "}"
            r = wrk(base + "/score", score_body, ids, c, args.duration, KEY)
            show(f"cip /score (all models, {args.reasons} reasons)", c, r)
            if not args.skip_feast:
                for svc in services:
                    r = wrk(
                        fbase + "/get-online-features",
                        feast_body(svc),
                        ids,
                        c,
                        args.duration,
                        None,
                    )
                    show(f"feast serve {svc} features", c, r)
        lat = np.array(event_to_score(base, pairs, args.events)) * 1000
        if len(lat):
            print(
                f"\nevent -> visible in score, {len(lat)} events: p50 {np.percentile(lat, 50):.2f} ms, "
                f"p99 {np.percentile(lat, 99):.2f} ms, max {lat.max():.2f} ms (mean {statistics.mean(lat):.2f})"
            )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    if not args.skip_breakdown:
        breakdown(settings, ids)


if __name__ == "__main__":
    main()
