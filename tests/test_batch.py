"""Batch scoring, segments, exports and the run report on the trained test world.

One module-scoped run scores everyone and exports every destination; the tests then check the
scores table, agreement with real-time reads, memberships and their diffs across runs, consent
and suppression, deterministic files, manifests, a crashed export and the report in Chromium.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cip.lake import Lake

KEY = "customer_id"


def _with_segments(settings, path: Path):
    """The settings with another segment file."""
    return settings.model_copy(
        update={"training": settings.training.model_copy(update={"segments_file": path})}
    )


@pytest.fixture(scope="module")
def batch_world(trained_world, tmp_path_factory):
    """The trained world with its own exports folder, after one `cip score` and one `cip export`."""
    from pipelines.batch.config import BatchConfig
    from pipelines.batch.export import export_run
    from pipelines.batch.pipeline import score

    base, _ = trained_world
    exports = tmp_path_factory.mktemp("exports")
    settings = base.model_copy(update={"batch": BatchConfig(exports_dir=exports, chunk_rows=500)})
    info = score(settings)
    exported = export_run(settings)
    return settings, info, exported


# --- scores ------------------------------------------------------------------------------------------
def test_score_writes_every_customer_with_versions_and_three_reasons_per_model(batch_world):
    from cip.categories import CATEGORIES
    from training.scoring import Scorer
    from training.segments import latest_thresholds

    settings, info, _ = batch_world
    lake = Lake(settings.lake_dir)
    scores = lake.read("scores")
    traits = lake.read("traits", columns=[KEY])
    assert sorted(scores[KEY]) == sorted(traits[KEY]) and scores[KEY].is_unique
    assert (scores["run_id"] == info.run_id).all()
    assert scores["as_of"].astype(str).unique().tolist() == [info.as_of] == ["2026-06-30"]
    versions = Scorer.load(settings).versions
    assert info.versions == versions
    for model, version in versions.items():
        assert (scores[f"version_{model}"] == version).all()
        reasons = [json.loads(r) for r in scores[f"reasons_{model}"]]
        assert all(len(r) == 3 for r in reasons)
        assert {"feature", "value", "contribution", "description"} <= reasons[0][0].keys()
    expected = ["churn_probability", "clv_365d", *(f"propensity_{c}" for c in CATEGORIES)]
    assert info.score_columns[: len(expected)] == expected
    assert scores["churn_probability"].between(0, 1).all() and (scores["clv_365d"] >= 0).all()
    saved = latest_thresholds(settings)
    assert saved is not None and saved[0] == info.run_id
    assert set(saved[1]) == set(info.thresholds) and "p80(clv_365d)" in saved[1]


def test_chunking_and_workers_do_not_change_a_customers_scores(batch_world):
    from cli.settings import Settings
    from pipelines.batch.score import score_frame
    from pipelines.batch.snapshot import latest_features
    from training.config import TrainingConfig
    from training.scoring import Scorer

    settings, _, _ = batch_world
    scorer = Scorer.load(settings)
    features = latest_features(settings, scorer.feature_columns).features.head(300)
    whole = score_frame(scorer, features, reasons=1, chunk_rows=300)
    small = score_frame(scorer, features, reasons=1, chunk_rows=70)
    pd.testing.assert_frame_equal(whole, small)
    parallel = score_frame(scorer, features, reasons=1, chunk_rows=70, workers=3)  # chunks on threads
    pd.testing.assert_frame_equal(whole, parallel)
    path = Scorer.load(
        Settings(
            data_dir=settings.data_dir,
            mlruns_dir=settings.mlruns_dir,
            training=TrainingConfig(reasons_method="path"),
        )
    )
    one = score_frame(path, features, reasons=3, chunk_rows=40)
    pd.testing.assert_frame_equal(one, score_frame(path, features, reasons=3, chunk_rows=40, workers=4))


def test_batch_and_real_time_scores_and_segments_agree(batch_world):
    """Features read from the online store at the run's snapshot instant, scored through the
    Scorer as serving does, give the scores table's numbers, reasons and segments."""
    from features.store import open_store
    from pipelines.batch.runs import load_run
    from training.scoring import Scorer
    from training.segments import latest_thresholds, load_segments

    settings, _, _ = batch_world
    info = load_run(settings)
    lake = Lake(settings.lake_dir)
    scores = lake.read("scores").set_index(KEY)
    ids = scores.sample(40, random_state=3).index.tolist()
    scorer = Scorer.load(settings)
    store = open_store(settings)
    at = pd.Timestamp(info.features_at).to_pydatetime()
    frame = pd.DataFrame({KEY: ids})
    for service in scorer.services:
        part = pd.DataFrame(store.online_features(service, ids, request_ts=at))
        frame = frame.merge(part[[c for c in part.columns if c == KEY or c not in frame]], on=KEY)
    live = scorer.score(frame, reasons=3)
    batch = scores.loc[ids]
    for col in info.score_columns:
        np.testing.assert_array_equal(live.wide[col].to_numpy(), batch[col].to_numpy(), err_msg=col)
    for model in info.versions:
        assert [json.loads(r) for r in batch[f"reasons_{model}"]] == live.reasons[model]
    # segments: one customer at a time from a plain dict, with the thresholds serving reads
    book = load_segments(settings)
    run_id, thresholds = latest_thresholds(settings)
    assert run_id == info.run_id
    traits = lake.read("traits").set_index(KEY)
    members = lake.read("segment_membership")
    for i, cid in enumerate(ids):
        record = {**traits.loc[cid].to_dict(), **live.wide.iloc[i].to_dict()}
        online = book.segments_for(record, thresholds)
        assert online == members.loc[members[KEY] == cid, "segment"].tolist(), cid


# --- memberships and their diffs -------------------------------------------------------------------------
def test_diff_marks_enter_exit_and_stay():
    from pipelines.batch.membership import diff, summary

    before = pd.DataFrame({KEY: ["a", "b", "c", "a"], "segment": ["s1", "s1", "s1", "s2"]})
    after = pd.DataFrame({KEY: ["b", "c", "d", "a"], "segment": ["s1", "s1", "s1", "s3"]})
    changes = diff(before, after)
    got = {(r.customer_id, r.segment): r.change for r in changes.itertuples()}
    assert got == {
        ("a", "s1"): "exit",
        ("b", "s1"): "stay",
        ("c", "s1"): "stay",
        ("d", "s1"): "enter",
        ("a", "s2"): "exit",
        ("a", "s3"): "enter",
    }
    table = summary(changes, ["s1", "s2", "s3", "s4"]).set_index("segment")
    assert table.loc["s1"].to_dict() == {"members": 3, "entered": 1, "exited": 1, "stayed": 2, "previous": 3}
    assert table.loc["s2", "members"] == 0 and table.loc["s2", "exited"] == 1
    assert table.loc["s4"].sum() == 0


def test_two_runs_give_enter_exit_stay_per_segment(batch_world, tmp_path):
    """A second run with one rule loosened and one tightened: members move as the memberships say."""
    from pipelines.batch.pipeline import score
    from pipelines.batch.runs import read_membership
    from training.segments import DEFAULT_FILE

    settings, first, _ = batch_world
    text = DEFAULT_FILE.read_text()
    looser = text.replace(
        "when: churn_probability >= 0.6 and frequency >= 1", "when: churn_probability >= 0.4"
    )
    stricter = looser.replace(
        "when: rfm_segment in ['champions', 'loyal'] and churn_probability < 0.4",
        "when: rfm_segment in ['champions'] and churn_probability < 0.4",
    )
    assert looser != text and stricter != looser  # both edits applied
    path = tmp_path / "segments.yaml"
    path.write_text(stricter)
    second = score(_with_segments(settings, path))
    try:
        assert second.previous_run == first.run_id
        a = read_membership(settings, first.run_id)
        b = read_membership(settings, second.run_id)
        for segment in ("at_risk", "loyal_core", "value_top_1"):
            sa = set(a.loc[a["segment"] == segment, KEY])
            sb = set(b.loc[b["segment"] == segment, KEY])
            assert second.changes[segment] == {
                "enter": len(sb - sa),
                "exit": len(sa - sb),
                "stay": len(sa & sb),
            }
        assert second.changes["at_risk"]["enter"] > 0 and second.changes["at_risk"]["exit"] == 0
        assert second.changes["loyal_core"]["exit"] > 0 and second.changes["loyal_core"]["enter"] == 0
        assert second.changes["value_top_1"]["stay"] == first.segments["value_top_1"] > 0
        lake_changes = Lake(settings.lake_dir).read("segment_changes")
        assert set(lake_changes["run_id"]) == {second.run_id}
        moved = lake_changes[lake_changes["segment"] == "at_risk"]["change"].value_counts().to_dict()
        assert moved.get("enter", 0) == second.changes["at_risk"]["enter"]
    finally:  # the module's later tests export the first run's segments: score it again as it was
        score(settings)


# --- consent and suppression -----------------------------------------------------------------------------
def test_suppression_reasons_per_purpose():
    from pipelines.batch.config import Destination
    from pipelines.batch.consent import counts, suppression

    frame = pd.DataFrame(
        {
            KEY: ["ok", "no_email_consent", "unsub", "bounce", "no_addr", "null_consent", "sms_only"],
            "email": ["a@x.io", "b@x.io", "c@x.io", "d@x.io", None, "f@x.io", None],
            "phone_e164": ["+4915100000001", None, "+4915100000003", None, None, "+1", "+4915100000007"],
            "consent_email": [True, False, True, True, True, None, False],
            "consent_sms": [True, True, True, True, False, None, True],
            "consent_profiling": [True, True, True, True, True, None, True],
            "unsubscribed": [False, False, True, False, False, False, False],
            "bounced": [False, False, False, True, False, False, False],
        }
    )
    email = Destination(format="crm_csv", purposes=("email",))
    sms = Destination(format="webhook_jsonl", purposes=("sms",), suppress=())
    ads = Destination(format="hashed_audience", purposes=("profiling",), suppress=("unsubscribed",))
    assert suppression(frame, email).tolist() == [
        None,
        "no_consent_email",
        "unsubscribed",
        "bounced",
        "no_email",
        "no_consent_email",
        "no_consent_email",
    ]
    assert suppression(frame, sms).tolist() == [
        None,
        "no_phone",
        None,
        "no_phone",
        "no_consent_sms",
        "no_consent_sms",
        None,
    ]
    # a bounced address is no identifier for an ad audience; a phone still is
    assert suppression(frame, ads).tolist() == [
        None,
        None,
        "unsubscribed",
        "no_identifier",
        "no_identifier",
        "no_consent_profiling",
        None,
    ]
    assert counts(suppression(frame, email)) == {
        "no_consent_email": 3,
        "unsubscribed": 1,
        "bounced": 1,
        "no_email": 1,
    }


def test_exports_hold_only_consenting_reachable_members_and_count_the_rest(batch_world):
    from pipelines.batch.consent import contacts
    from pipelines.batch.formats import normalize_email, sha256_hex

    settings, info, exported = batch_world
    lake = Lake(settings.lake_dir)
    people = contacts(lake).set_index(KEY)
    members = lake.read("segment_membership")
    # independent check of the e-mail rules from the raw lake tables
    con = lake.connect(["email_events", "customer_email_events", "profiles"])
    unsub_customers = set(
        con.execute("SELECT customer_id FROM customer_email_events WHERE event_type = 'unsubscribe'").df()[
            KEY
        ]
    )
    bounced_addresses = set(
        con.execute("SELECT email FROM email_events WHERE event_type = 'bounce'").df()["email"]
    )
    assert people["unsubscribed"].sum() >= len(unsub_customers & set(people.index)) > 0
    assert people["bounced"].sum() > 0
    by_dest = {r.destination: r for r in exported}
    folder = by_dest["crm_email"].folder
    checked = 0
    for seg in by_dest["crm_email"].segments:
        rows = pd.read_csv(folder / seg.file)
        ids = set(rows[KEY])
        expected_members = set(members.loc[members["segment"] == seg.segment, KEY])
        assert ids <= expected_members and seg.members == len(expected_members)
        assert seg.exported == len(ids) and seg.members == seg.exported + sum(seg.suppressed.values())
        p = people.loc[list(ids)]
        assert p["consent_email"].eq(True).all() and p["email"].notna().all()
        assert not (set(ids) & unsub_customers)
        assert not (set(p["email"]) & bounced_addresses)
        checked += len(ids)
        # every member left out has a reason that holds
        left = people.loc[list(expected_members - ids)]
        assert (
            left["consent_email"].ne(True) | left["unsubscribed"] | left["bounced"] | left["email"].isna()
        ).all()
    assert checked > 0
    ads = by_dest["ads_audience"]
    seg = next(s for s in ads.segments if s.exported > 0)
    hashed = pd.read_csv(ads.folder / seg.file, dtype=str).fillna("")
    ids = members.loc[members["segment"] == seg.segment, KEY]
    allowed = people.loc[ids]
    allowed = allowed[allowed["consent_profiling"].eq(True) & ~allowed["unsubscribed"] & ~allowed["bounced"]]
    assert set(hashed["email_sha256"]) - {""} <= {
        sha256_hex(normalize_email(e)) for e in allowed["email"].dropna()
    }
    assert all(len(h) == 64 for h in hashed["email_sha256"] if h)
    sms = by_dest["sms_webhook"]
    lines = [
        json.loads(line) for s in sms.segments for line in (sms.folder / s.file).read_text().splitlines()
    ]
    assert lines and people.loc[[r[KEY] for r in lines], "consent_sms"].eq(True).all()
    assert all(r["phone"].startswith("+") for r in lines)


def test_hashes_normalize_email_and_phone_as_ad_platforms_expect():
    from pipelines.batch.formats import hashed_identifiers

    frame = pd.DataFrame(
        {"email": ["  Jane.Doe@Example.COM "], "phone_e164": ["+49 151 2345 6789"], "bounced": [False]}
    )
    got = hashed_identifiers(frame).iloc[0]
    assert got["email_sha256"] == hashlib.sha256(b"jane.doe@example.com").hexdigest()
    assert got["phone_sha256"] == hashlib.sha256(b"+4915123456789").hexdigest()


# --- files and manifests ---------------------------------------------------------------------------------
def _checksums(results) -> dict[tuple[str, str], str]:
    return {(r.destination, s.segment): s.sha256 for r in results for s in r.segments}


def test_same_input_gives_the_same_files(batch_world):
    """Exporting the run again, and exporting a new run over the same features, writes
    byte-identical files (manifests differ only in run id and created_at)."""
    from pipelines.batch.export import export_run, verify
    from pipelines.batch.pipeline import score

    settings, info, first = batch_world
    again = export_run(settings)
    assert _checksums(again) == _checksums(first)
    for r in again:
        assert verify(r.folder) == []
        for s in r.segments:
            assert hashlib.sha256((r.folder / s.file).read_bytes()).hexdigest() == s.sha256
    rerun = score(settings)
    try:
        assert rerun.run_id != info.run_id and all(
            v["enter"] == 0 and v["exit"] == 0 for v in rerun.changes.values()
        )
        assert _checksums(export_run(settings)) == _checksums(first)
    finally:
        shutil.rmtree(settings.exports_dir / rerun.run_id, ignore_errors=True)


def test_manifest_says_what_was_exported(batch_world):
    from training.segments import load_segments

    settings, info, exported = batch_world
    book = load_segments(settings)
    r = next(x for x in exported if x.destination == "crm_email")
    seg = next(s for s in r.segments if s.segment == "at_risk_high_value")
    manifest = json.loads((r.folder / "at_risk_high_value.manifest.json").read_text())
    assert manifest["segment"] == "at_risk_high_value"
    assert manifest["rule"] == book.rule("at_risk_high_value").expr
    assert manifest["thresholds"] == {"p80(clv_365d)": info.thresholds["p80(clv_365d)"]}
    assert manifest["run_id"] == info.run_id and manifest["as_of"] == info.as_of
    assert manifest["model_versions"] == info.versions
    assert manifest["destination"] == "crm_email" and manifest["format"] == "crm_csv"
    assert manifest["purposes"] == ["email"]
    assert manifest["members"] == seg.members == info.segments["at_risk_high_value"]
    assert manifest["exported"] + manifest["suppressed_total"] == manifest["members"]
    assert manifest["suppressed"] == seg.suppressed
    assert manifest["sha256"] == hashlib.sha256((r.folder / manifest["file"]).read_bytes()).hexdigest()
    assert manifest["bytes"] == (r.folder / manifest["file"]).stat().st_size
    assert pd.Timestamp(manifest["created_at"]).tzinfo is not None
    index = json.loads((r.folder / "_export.json").read_text())
    assert list(index["segments"]) == book.names


KILL_AFTER = """
import os, signal, sys
from pathlib import Path
from cli.settings import Settings
from pipelines.batch.config import BatchConfig
from pipelines.batch.export import export_run

settings = Settings(data_dir=Path(sys.argv[1]), mlruns_dir=Path(sys.argv[2]), batch=BatchConfig(exports_dir=Path(sys.argv[3])))
done = []

def progress(step, n, total):
    done.append(step)
    if len(done) == int(sys.argv[4]):  # a crash mid-export: no cleanup, no finally
        os.kill(os.getpid(), signal.SIGKILL)

export_run(settings, ["crm_email"], progress=progress)
"""


def test_a_killed_export_leaves_nothing_that_looks_complete_and_reruns_clean(batch_world, tmp_path):
    from pipelines.batch.config import BatchConfig
    from pipelines.batch.export import STAGING, export_run, verify
    from pipelines.batch.runs import load_run

    settings, _, first = batch_world
    info = load_run(settings)
    out = tmp_path / "exports"
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER, str(settings.data_dir), str(settings.mlruns_dir), str(out), "3"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CIP_TRAINING__NUM_THREADS": "1"},
    )
    assert killed.returncode == -9, killed.stderr
    final = out / info.run_id / "crm_email"
    assert not final.exists()  # nothing published
    staged = list((out / STAGING).rglob("*.csv"))
    assert len(staged) == 3  # the crashed export's partial work, only in staging
    again = export_run(settings.model_copy(update={"batch": BatchConfig(exports_dir=out)}), ["crm_email"])
    assert verify(final) == [] and not (out / STAGING).exists()
    reference = {k: v for k, v in _checksums(first).items() if k[0] == "crm_email"}
    assert _checksums(again) == reference


def test_an_unknown_destination_is_named(batch_world):
    from cip.errors import CipError
    from pipelines.batch.export import export_run

    settings, _, _ = batch_world
    with pytest.raises(CipError, match="unknown destination 'nowhere'|unknown destination nowhere"):
        export_run(settings, ["nowhere"])


# --- report ------------------------------------------------------------------------------------------------
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_report_renders_its_plots_in_headless_chromium(batch_world, tmp_path):
    from pipelines.batch.report import write_report

    settings, info, _ = batch_world
    path = write_report(settings, path=tmp_path / "report.html")
    text = path.read_text()
    assert "http://" not in text.replace("http://www.w3.org", "") and "https://" not in text  # self-contained
    for title in (
        "Score distributions",
        "calibration, lift and uplift",
        "Segments",
        "Identity",
        "Quarantine",
        "Exports",
    ):
        assert title in text
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium)")
    profile = tmp_path / "chromium-profile"
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert 'data-plots="ok"' in html, html[:500]
    images = int(html.split('data-images="')[1].split('"')[0])
    # score histograms, propensity box plot, segment movement, and two MLflow plots per model
    assert images >= 3 + 2 * len(info.versions)
    title = html.split("<title>")[1].split("</title>")[0]
    assert title == f"CIP run report {info.run_id}" or title.startswith("CIP run report run_"), title
    assert (
        "Traceback" not in html and "not found in MLflow" not in html and "MLflow not reachable" not in html
    )


# --- the door ------------------------------------------------------------------------------------------------
def _cip(settings, *args: str, tmp: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "COLUMNS": "200",
        "CIP_DATA_DIR": str(settings.data_dir),
        "CIP_MLRUNS_DIR": str(settings.mlruns_dir),
        "CIP_BATCH__EXPORTS_DIR": str(tmp / "cli-exports"),
        "CIP_TRAINING__NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=300
    )


def test_cli_segments_export_and_report(batch_world, tmp_path):
    from pipelines.batch.runs import load_run

    settings, _, _ = batch_world
    info = load_run(settings)
    shown = _cip(settings, "segments", tmp=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert (
        info.run_id in shown.stdout
        and "at_risk_high_value" in shown.stdout
        and "p80(clv_365d)" in shown.stdout
    )
    exported = _cip(settings, "export", "--destination", "crm_email", tmp=tmp_path)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert (tmp_path / "cli-exports" / info.run_id / "crm_email" / "_export.json").is_file()
    assert not (tmp_path / "cli-exports" / info.run_id / "ads_audience").exists()
    wrong = _cip(settings, "export", "-d", "nowhere", tmp=tmp_path)
    assert wrong.returncode == 2 and "unknown destination nowhere" in wrong.stdout and "fix:" in wrong.stdout
    assert "Traceback" not in wrong.stdout + wrong.stderr
    report = _cip(settings, "report", "--out", str(tmp_path / "r.html"), tmp=tmp_path)
    assert report.returncode == 0, report.stdout + report.stderr
    assert (tmp_path / "r.html").stat().st_size > 10_000


def test_a_bad_segment_rule_stops_scoring_naming_rule_and_field(batch_world, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  big_spenders:\n    when: clv_365 >= p80(clv_365d)\n")
    settings, _, _ = batch_world
    env_file = tmp_path / "cip.yaml"
    env_file.write_text(f"training:\n  segments_file: {bad}\n")
    result = _cip(settings, "score", tmp=tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "big_spenders" in out and "clv_365" in out and "Traceback" not in out


def test_scoring_before_features_says_what_to_run(tmp_path):
    from cli.settings import Settings

    settings = Settings(data_dir=tmp_path / "d", mlruns_dir=tmp_path / "m")
    result = _cip(settings, "segments", tmp=tmp_path)
    assert result.returncode == 2 and "cip score" in result.stdout and "Traceback" not in result.stdout


def test_next_best_action_columns_flow_into_audiences_and_exports_when_present():
    """Once the NBA model is registered its columns reach the scores, one audience per action
    and the export files; without them the audiences are simply empty."""
    from pipelines.batch import membership as mb
    from pipelines.batch.config import Destination
    from pipelines.batch.export import build_files
    from pipelines.batch.score import score_columns
    from training.segments import load_segments

    ids = [f"c{i}" for i in range(6)]
    actions = ["discount_10", "no_offer", "free_shipping", "discount_10", None, "double_points"]
    scores = pd.DataFrame(
        {
            KEY: ids,
            "churn_probability": [0.7, 0.1, 0.2, 0.65, 0.5, 0.3],
            "clv_365d": [400.0, 10.0, 50.0, 900.0, 0.0, 120.0],
            "next_best_action": actions,
            "nba_value": [3.5, 0.0, 1.25, 2.0, None, 0.5],
            "reasons_churn": ["[]"] * 6,
        }
    )
    cols = score_columns(scores, ["churn_probability", "clv_365d", "propensity_fashion"])
    assert cols == ["churn_probability", "clv_365d", "next_best_action", "nba_value"]
    traits = pd.DataFrame({KEY: ids, "frequency": [3, 1, 1, 5, 0, 2], "rfm_segment": ["loyal"] * 6})
    book = load_segments()
    frame = mb.segment_input(scores[[KEY, *cols]], traits)
    members = mb.assign(book, frame, book.thresholds(frame))
    nba = members[members["segment"].str.startswith("nba_")]
    assert sorted(zip(nba["segment"], nba[KEY], strict=True)) == [
        ("nba_discount_10", "c0"),
        ("nba_discount_10", "c3"),
        ("nba_double_points", "c5"),
        ("nba_free_shipping", "c2"),
    ]  # no audience for no_offer (excluded) nor for a customer without an action
    without = mb.assign(book, frame.drop(columns=["next_best_action", "nba_value"]), book.thresholds(frame))
    assert not without["segment"].str.startswith("nba_").any()

    contact = pd.DataFrame(
        {
            KEY: ids,
            "email": [f"{i}@x.io" for i in ids],
            "phone_e164": [f"+4915100000{i:03d}" for i in range(6)],
            "consent_email": [True] * 6,
            "consent_sms": [True] * 6,
            "consent_profiling": [True] * 6,
            "unsubscribed": [False, False, False, True, False, False],
            "bounced": [False] * 6,
        }
    )
    crm = Destination(format="crm_csv", purposes=("email",))
    files = {
        s: (data, n, out)
        for s, data, n, out in build_files(crm, ["nba_discount_10"], members, scores, contact, cols)
    }
    data, n, left_out = files["nba_discount_10"]
    assert (n, left_out) == (2, {"unsubscribed": 1})
    assert data.decode().splitlines() == [
        "customer_id,segment,churn_probability,clv_365d,next_best_action,nba_value",
        "c0,nba_discount_10,0.7,400,discount_10,3.5",  # numbers in their shortest form
    ]
    hook = Destination(format="webhook_jsonl", purposes=("sms",))
    ((_, data, _, _),) = build_files(hook, ["nba_free_shipping"], members, scores, contact, cols)
    record = json.loads(data.decode())
    assert record["scores"]["next_best_action"] == "free_shipping" and record["scores"]["nba_value"] == 1.25


def test_segment_input_refuses_a_customer_twice_and_keeps_only_what_rules_read():
    from cip.errors import CipError
    from pipelines.batch import membership as mb

    scores = pd.DataFrame({KEY: ["a", "b"], "churn_probability": [0.1, 0.9], "reasons_churn": ["[]", "[]"]})
    traits = pd.DataFrame({KEY: ["b", "a"], "recency_days": [3, 40], "tenure_days": [9, 9], "as_of": [1, 1]})
    frame = mb.segment_input(scores, traits, {"churn_probability", "recency_days"})
    assert list(frame.columns) == [KEY, "churn_probability", "recency_days"]
    assert frame["recency_days"].tolist() == [40, 3]  # by customer id, not by row
    with pytest.raises(CipError, match="customer b more than once"):
        mb.segment_input(scores, pd.concat([traits, traits.iloc[[0]]]))


def test_membership_diff_orders_by_segment_then_customer():
    from pipelines.batch import membership as mb

    before = pd.DataFrame({KEY: ["c2", "c1", "c3"], "segment": ["s_b", "s_a", "s_a"]})
    now = pd.DataFrame({KEY: ["c1", "c9", "c2"], "segment": ["s_a", "s_a", "s_a"]})
    out = mb.diff(before, now)
    assert out.values.tolist() == [
        ["c1", "s_a", "stay"],
        ["c2", "s_a", "enter"],
        ["c3", "s_a", "exit"],
        ["c9", "s_a", "enter"],
        ["c2", "s_b", "exit"],
    ]
    assert mb.diff(now.iloc[0:0], now)["change"].eq("enter").all()
