"""Tests of the synthetic world generator (pipelines/generate): contract, determinism, planted errors,
validity of clean identifiers, ground truth and the traps identity resolution must survive."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from cip.categories import canonical_category
from pipelines.generate import messy
from pipelines.generate.ids import iso_timestamps, prefixed_ids, uuid_strings
from pipelines.generate.pipeline import generate_world

N = 1500
SEED = 7
AS_OF = date(2026, 6, 30)
EMAIL_RE = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources.md"
CSV_FILES = ("crm_customers.csv", "pos_transactions.csv", "email_events.csv", "campaign_exposures.csv")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("world")
    return out, generate_world(out, n_customers=N, seed=SEED, as_of=AS_OF)


@pytest.fixture(scope="module")
def raw(world) -> Path:
    return world[0] / "raw"


@pytest.fixture(scope="module")
def truth(world) -> Path:
    return world[0] / "truth"


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tables(raw: Path) -> dict[str, list[dict[str, str]]]:
    return {name: _csv(raw / name) for name in CSV_FILES}


@pytest.fixture(scope="module")
def event_lines(raw: Path) -> list[tuple[str, str]]:
    out = []
    for f in sorted((raw / "events").glob("*.jsonl")):
        out.extend((f.name, line) for line in f.read_text(encoding="utf-8").splitlines())
    return out


def _event_problems(ev: dict) -> list[str]:
    problems = []
    if not ev.get("messageId") or (not ev.get("anonymousId") and not ev.get("userId")):
        problems.append("missing_required")
    if str(ev.get("timestamp", "")).startswith("2099"):
        problems.append("future_timestamp")
    if ev.get("event") == "Order Completed":
        rev = ev.get("properties", {}).get("revenue")
        if not isinstance(rev, int | float) or isinstance(rev, bool) or rev < 0:
            problems.append("invalid_amount")
        if ev.get("properties", {}).get("currency") not in {"USD", "EUR", "GBP", "CAD"}:
            problems.append("unknown_currency")
    return problems


@pytest.fixture(scope="module")
def events(event_lines) -> dict[str, list]:
    """Parsed events split into clean ones and bad lines with their problems."""
    clean, bad = [], []
    for _, line in event_lines:
        try:
            ev = json.loads(line)
        except json.JSONDecodeError:
            bad.append(["malformed_json"])
            continue
        problems = _event_problems(ev)
        (bad.append(problems) if problems else clean.append(ev))
    return {"clean": clean, "bad": bad}


@pytest.fixture(scope="module")
def links(truth: Path) -> pd.DataFrame:
    return pd.read_parquet(truth / "record_links.parquet")


@pytest.fixture(scope="module")
def persons(truth: Path) -> pd.DataFrame:
    return pd.read_parquet(truth / "persons.parquet")


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _valid_email(v: str | None) -> bool:
    return bool(v) and bool(EMAIL_RE.match(v.strip().lower()))


def _clean_crm(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [r for r in rows if r["crm_id"] and not r["created_at"].startswith("2099")]


def _e164(phone: str, country: str) -> str | None:
    try:
        num = phonenumbers.parse(phone, country)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)


# ---------------------------------------------------------------- layout and contract


def test_layout_and_summary(world, raw: Path, truth: Path) -> None:
    out, summary = world
    for name in ("fx_rates.csv", *CSV_FILES):
        assert (raw / name).is_file()
    months = sorted(f.name for f in (raw / "events").glob("*.jsonl"))
    assert len(months) >= 36
    assert all(re.fullmatch(r"\d{4}-\d{2}\.jsonl", m) for m in months)
    for name in ("persons.parquet", "record_links.parquet", "labels.parquet", "offer_response.parquet"):
        assert (truth / name).is_file()
    for name, rows in summary["files"].items():
        lines = (raw / name).read_text(encoding="utf-8").count("\n")
        assert rows == lines - (0 if name.startswith("events/") else 1), name
    world_json = json.loads((truth / "world.json").read_text())
    assert world_json["seed"] == SEED and world_json["n_customers"] == N
    assert world_json["row_counts"] == summary["files"]
    assert summary["seconds"] > 0 and summary["rows"] == sum(summary["files"].values())
    assert 15 <= summary["events"] / N <= 30, "about 15-25 events per person"
    assert not (out / ".duckdb_tmp").exists()


def _doc_columns() -> dict[str, list[str]]:
    """Column names of every CSV section of docs/sources.md, in documented order."""
    cols: dict[str, list[str]] = {}
    current = None
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        head = re.match(r"^## (\S+\.csv)", line)
        if head:
            current = head.group(1)
            cols[current] = []
            continue
        if line.startswith("## "):
            current = None
        generated = "The generator does not write it" not in line  # optional columns of real exports
        if current and generated and line.startswith("|") and not line.startswith("|---"):
            first = line.split("|")[1].strip()
            if first not in ("column",):
                cols[current].extend(c.strip() for c in first.split(","))
    return cols


def test_csv_columns_follow_sources_doc(raw: Path) -> None:
    documented = _doc_columns()
    assert set(documented) == {"fx_rates.csv", *CSV_FILES}
    for name, cols in documented.items():
        with (raw / name).open(encoding="utf-8") as fh:
            header = next(csv.reader(fh))
        assert header == cols, name


def test_formats(tables, raw: Path) -> None:
    crm = _clean_crm(tables["crm_customers.csv"])
    assert all(re.fullmatch(r"C\d+", r["crm_id"]) for r in crm)
    assert len({r["crm_id"] for r in crm}) == len(crm)
    assert all(r["signup_channel"] in {"store", "web", "app"} for r in crm)
    assert all(r["country"] in {"US", "CA", "GB", "DE", "FR"} for r in crm)
    for r in crm:
        assert datetime.fromisoformat(r["created_at"]).tzinfo is not None
        assert datetime.fromisoformat(r["updated_at"]) >= datetime.fromisoformat(r["created_at"])
        assert (r["loyalty_id"] != "") == (r["signup_channel"] == "store")
        assert not r["loyalty_id"] or re.fullmatch(r"L\d+", r["loyalty_id"])
        for c in ("consent_email", "consent_sms", "consent_profiling"):
            assert r[c] in {
                "",
                "true",
                "false",
                "yes",
                "no",
                "1",
                "0",
                "Y",
                "N",
                "TRUE",
                "FALSE",
                "Yes",
                "No",
            }
        b = r["birth_date"]
        if b:
            fmt = {
                "US": r"\d\d/\d\d/\d{4}",
                "CA": r"\d\d/\d\d/\d{4}",
                "GB": r"\d\d/\d\d/\d{4}",
                "FR": r"\d\d/\d\d/\d{4}",
                "DE": r"\d\d\.\d\d\.\d{4}",
            }
            assert re.fullmatch(r"\d{4}-\d\d-\d\d", b) or re.fullmatch(fmt[r["country"]], b), b
    pos = [r for r in tables["pos_transactions.csv"] if r["transaction_id"]]
    cur = {"US": "USD", "CA": "CAD", "GB": "GBP", "DE": "EUR", "FR": "EUR"}
    for r in pos:
        assert re.fullmatch(r"S\d+", r["store_id"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", r["transaction_time"])
        if r["currency"] != "XYZ":
            assert r["currency"] == cur[r["store_country"]]
        assert int(r["quantity"]) >= 1 and int(r["line_number"]) >= 1
        assert canonical_category(r["category"]) != "unknown"
    assert len({r["category"] for r in pos}) > 8, "raw category spellings vary"
    fx = pd.read_csv(raw / "fx_rates.csv")
    assert set(fx["currency"]) == {"EUR", "GBP", "CAD"}
    assert (fx["rate_to_base"] > 0).all()
    days = pd.to_datetime(fx["date"])
    assert days.min() == pd.Timestamp("2023-07-01") and days.max() == pd.Timestamp(AS_OF + timedelta(days=7))
    assert len(fx) == 3 * ((AS_OF - date(2023, 7, 1)).days + 8)
    for name, col in (("email_events.csv", "timestamp"), ("campaign_exposures.csv", "exposed_at")):
        assert all(r[col].endswith("Z") for r in tables[name])


def test_events_follow_segment_spec(events) -> None:
    clean = events["clean"]
    assert len({e["messageId"] for e in clean}) == len(clean)
    types = Counter(e["type"] for e in clean)
    assert set(types) == {"identify", "alias", "page", "track"}
    tracks = Counter(e["event"] for e in clean if e["type"] == "track")
    assert set(tracks) == {"Product Viewed", "Product Added", "Checkout Started", "Order Completed"}
    start = pd.Timestamp("2023-07-01", tz="UTC")
    end = pd.Timestamp(AS_OF, tz="UTC") + pd.Timedelta(days=1)
    for e in clean:
        ts = pd.Timestamp(e["timestamp"])
        assert ts.tzinfo is not None and start <= ts < end
        assert e["context"]["channel"] in {"web", "app"}
        assert e["context"]["device"]["type"] in {"desktop", "tablet", "mobile"}
        assert e["anonymousId"] and e["context"]["device"]["id"]
        assert e["userId"] is None or re.fullmatch(r"C\d+", e["userId"])
        if e["type"] == "identify":
            assert e["userId"] and set(e["traits"]) == {"email", "phone", "firstName", "lastName"}
        elif e["type"] == "alias":
            assert e["previousId"] == e["anonymousId"] and e["userId"]
        elif e["type"] == "page":
            assert e["name"] and e["properties"]["path"].startswith("/")
        elif e["event"] == "Order Completed":
            p = e["properties"]
            assert e["userId"], "online orders are placed logged in"
            assert p["order_id"] and p["products"]
            assert abs(sum(x["price"] * x["quantity"] for x in p["products"]) - p["revenue"]) < 0.02
            assert all(canonical_category(x["category"]) != "unknown" for x in p["products"])
        elif e["event"] in ("Product Viewed", "Product Added"):
            assert e["properties"]["product_id"] and e["properties"]["price"] > 0
            assert canonical_category(e["properties"]["category"]) != "unknown"


# ---------------------------------------------------------------- determinism


def _digest(raw: Path) -> dict[str, str]:
    return {
        str(f.relative_to(raw)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(raw.rglob("*"))
        if f.is_file()
    }


def test_same_seed_is_byte_identical(world, raw: Path, truth: Path, tmp_path_factory) -> None:
    out = tmp_path_factory.mktemp("again")
    generate_world(out, n_customers=N, seed=SEED, as_of=AS_OF)
    assert _digest(out / "raw") == _digest(raw)
    for name in ("persons.parquet", "labels.parquet", "record_links.parquet", "offer_response.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / "truth" / name), pd.read_parquet(truth / name))
    assert (out / "truth" / "planted_errors.json").read_text() == (truth / "planted_errors.json").read_text()


def test_different_seed_differs(raw: Path, tmp_path_factory) -> None:
    out = tmp_path_factory.mktemp("other")
    generate_world(out, n_customers=N, seed=SEED + 1, as_of=AS_OF)
    a, b = _digest(out / "raw"), _digest(raw)
    for name in CSV_FILES:
        assert a[name] != b[name]


# ---------------------------------------------------------------- planted errors


def test_planted_event_errors_match(events, truth: Path) -> None:
    planted = json.loads((truth / "planted_errors.json").read_text())["quarantine"]["events"]
    assert all(len(p) == 1 for p in events["bad"]), "each planted line has exactly one problem"
    found = Counter(p[0] for p in events["bad"])
    assert dict(found) == planted
    assert all(v >= 3 for v in planted.values())


def test_planted_csv_errors_match(tables, truth: Path) -> None:
    planted = json.loads((truth / "planted_errors.json").read_text())
    q = planted["quarantine"]

    def count(rows, checks):
        found: Counter = Counter()
        for r in rows:
            problems = [name for name, bad in checks.items() if bad(r)]
            assert len(problems) <= 1, (problems, r)
            found.update(problems)
        return dict(found)

    pos = count(
        tables["pos_transactions.csv"],
        {
            "missing_required": lambda r: not r["transaction_id"],
            "invalid_amount": lambda r: not _is_float(r["unit_price"]) or float(r["unit_price"]) < 0,
            "unknown_currency": lambda r: r["currency"] not in {"USD", "EUR", "GBP", "CAD"},
            "future_timestamp": lambda r: r["transaction_time"].startswith("2099"),
        },
    )
    assert pos == q["pos_transactions"]
    crm = count(
        tables["crm_customers.csv"],
        {
            "missing_required": lambda r: not r["crm_id"],
            "future_timestamp": lambda r: r["created_at"].startswith("2099"),
            "invalid_email": lambda r: bool(r["email"]) and not _valid_email(r["email"]),
        },
    )
    assert crm.pop("invalid_email") == planted["flagged"]["crm_customers"]["invalid_email"] >= 3
    assert crm == q["crm_customers"]
    email = count(
        tables["email_events.csv"],
        {
            "invalid_email": lambda r: not _valid_email(r["email"]),
            "missing_required": lambda r: not r["campaign_id"],
        },
    )
    assert email == q["email_events"]
    exposures = count(tables["campaign_exposures.csv"], {"missing_required": lambda r: not r["crm_id"]})
    assert exposures == q["campaign_exposures"]


# ---------------------------------------------------------------- identifiers


def test_clean_emails_and_phones_are_valid(tables, events, persons: pd.DataFrame, truth: Path) -> None:
    flagged = json.loads((truth / "planted_errors.json").read_text())["flagged"]["crm_customers"][
        "invalid_email"
    ]
    crm = _clean_crm(tables["crm_customers.csv"])
    bad_emails = [r["email"] for r in crm if r["email"] and not _valid_email(r["email"])]
    assert len(bad_emails) == flagged
    phones = [(r["phone"], r["country"]) for r in crm if r["phone"]]
    assert len(phones) > 0.6 * len(crm)
    for phone, country in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, country)), (phone, country)
    assert any(p.startswith(("+", "00")) for p, _ in phones) and any(
        not p.startswith(("+", "00")) for p, _ in phones
    )
    for e in events["clean"]:
        if e["type"] == "identify" and e["traits"]["email"]:
            assert _valid_email(e["traits"]["email"])
    assert persons["email"].map(lambda v: bool(EMAIL_RE.match(v))).all()
    assert persons["email"].is_unique and persons["phone_e164"].is_unique
    for phone in persons["phone_e164"]:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, None))


def test_every_clean_record_has_a_truth_link(
    tables, events, links: pd.DataFrame, persons: pd.DataFrame
) -> None:
    assert set(links["source"]) == {"crm", "event", "pos", "email", "exposure"}
    assert links["person_id"].isin(persons["person_id"]).all()
    by = {s: set(g["record_key"]) for s, g in links.groupby("source")}
    crm = {r["crm_id"] for r in _clean_crm(tables["crm_customers.csv"])}
    assert by["crm"] == crm
    assert by["event"] == {e["messageId"] for e in events["clean"]}
    pos_ok = {
        r["transaction_id"]
        for r in tables["pos_transactions.csv"]
        if r["transaction_id"]
        and _is_float(r["unit_price"])
        and float(r["unit_price"]) >= 0
        and r["currency"] in {"USD", "EUR", "GBP", "CAD"}
        and not r["transaction_time"].startswith("2099")
    }
    assert by["pos"] == pos_ok
    email_ok = {
        str(i + 1)
        for i, r in enumerate(tables["email_events.csv"])
        if r["campaign_id"] and _valid_email(r["email"])
    }
    assert by["email"] == email_ok
    assert by["exposure"] == {r["exposure_id"] for r in tables["campaign_exposures.csv"] if r["crm_id"]}
    assert not links.duplicated(["source", "record_key"]).any()


def test_resolvable_flag(tables, events, links: pd.DataFrame) -> None:
    """``resolvable`` marks records an id connects to a CRM account."""
    assert links.loc[links["source"].isin(["crm", "email", "exposure"]), "resolvable"].all()
    pos = links[links["source"] == "pos"].set_index("record_key")["resolvable"]
    scanned = {r["transaction_id"] for r in tables["pos_transactions.csv"] if r["loyalty_id"]}
    assert (pos.index.isin(list(scanned)) == pos.to_numpy()).all()
    ev = links[links["source"] == "event"].set_index("record_key")["resolvable"]
    logged_anon = {e["anonymousId"] for e in events["clean"] if e["userId"]}
    expected = {e["messageId"]: bool(e["userId"]) or e["anonymousId"] in logged_anon for e in events["clean"]}
    assert ev.to_dict() == expected
    assert 0.5 < ev.mean() < 1.0 and 0.2 < pos.mean() < 0.8


def test_links_are_consistent(tables, events, links: pd.DataFrame) -> None:
    """Login ids, loyalty cards and ESP addresses point to the same person as the CRM account."""
    person_of = dict(
        zip(
            links["record_key"][links["source"] == "crm"],
            links["person_id"][links["source"] == "crm"],
            strict=True,
        )
    )
    ev_person = links[links["source"] == "event"].set_index("record_key")["person_id"]
    for e in events["clean"]:
        if e["userId"]:
            assert person_of[e["userId"]] == ev_person[e["messageId"]]
    crm = _clean_crm(tables["crm_customers.csv"])
    loyalty = {r["loyalty_id"]: person_of[r["crm_id"]] for r in crm if r["loyalty_id"]}
    pos_person = links[links["source"] == "pos"].set_index("record_key")["person_id"]
    scanned = [r for r in tables["pos_transactions.csv"] if r["loyalty_id"]]
    assert scanned
    for r in scanned:
        assert loyalty[r["loyalty_id"]] == pos_person[r["transaction_id"]]
    exposures = [r for r in tables["campaign_exposures.csv"] if r["crm_id"]]
    probs = {
        "no_offer": "0.3",
        "discount_10": "0.175",
        "free_shipping": "0.175",
        "double_points": "0.175",
        "new_arrivals": "0.175",
    }
    for r in exposures:
        assert r["crm_id"] in person_of
        assert r["assignment_probability"] == probs[r["offer"]]
    assert Counter(r["offer"] for r in exposures).keys() == probs.keys()


# ---------------------------------------------------------------- identity difficulty and traps


def _norm_email(v: str) -> str | None:
    return v.strip().lower() if v and _valid_email(v) else None


def test_duplicate_accounts_some_without_shared_identifier(tables, links: pd.DataFrame) -> None:
    crm = _clean_crm(tables["crm_customers.csv"])
    person_of = dict(zip(links["record_key"], links["person_id"], strict=False))
    by_person = defaultdict(list)
    for r in crm:
        by_person[person_of[r["crm_id"]]].append(r)
    pairs = [rows for rows in by_person.values() if len(rows) == 2]
    assert 0.2 * N < len(pairs) < 0.45 * N
    placeholders = {"test@test.com", "noemail@example.com", "none@none.com"}
    no_shared = 0
    for a, b in pairs:
        ea, eb = _norm_email(a["email"]), _norm_email(b["email"])
        pa_, pb = (
            _e164(a["phone"], a["country"]) if a["phone"] else None,
            _e164(b["phone"], b["country"]) if b["phone"] else None,
        )
        shared_email = ea is not None and ea == eb and ea not in placeholders
        shared_phone = pa_ is not None and pa_ == pb
        no_shared += not (shared_email or shared_phone)
        assert a["country"] == b["country"]
    assert 0.15 <= no_shared / len(pairs) <= 0.4
    # variants: case/space noise, gmail dots or +tags, accents dropped
    emails = [r["email"] for r in crm if r["email"]]
    assert any(e != e.strip() for e in emails) and any(e.strip() != e.strip().lower() for e in emails)
    assert any("+" in e for e in emails)
    names = [r["last_name"] for r in crm if r["last_name"]]
    assert any(n != n.strip() for n in names) and any(n.isupper() for n in names)


def test_some_persons_hold_three_to_six_records_and_households_share_a_landline(
    tables, links: pd.DataFrame, persons: pd.DataFrame
) -> None:
    crm = _clean_crm(tables["crm_customers.csv"])
    person_of = dict(zip(links["record_key"], links["person_id"], strict=False))
    records = Counter(person_of[r["crm_id"]] for r in crm)
    many = [n for n in records.values() if n >= 3]
    assert len(many) >= 0.01 * N and max(many) <= 6
    household = persons.set_index("person_id")["household_id"]
    by_phone = defaultdict(set)
    for r in crm:
        if r["phone"]:
            by_phone[(household[person_of[r["crm_id"]]], _e164(r["phone"], r["country"]))].add(
                person_of[r["crm_id"]]
            )
    assert sum(len(v) >= 2 for v in by_phone.values()) >= 5  # one phone, two persons, one household


def test_traps_are_present(tables, events, links: pd.DataFrame, persons: pd.DataFrame) -> None:
    crm = _clean_crm(tables["crm_customers.csv"])
    person_of = dict(zip(links["record_key"], links["person_id"], strict=False))
    # (a) a store phone typed on many records of different persons
    by_phone = defaultdict(set)
    rows_by_phone = Counter()
    for r in crm:
        if r["phone"]:
            e = _e164(r["phone"], r["country"])
            by_phone[e].add(person_of[r["crm_id"]])
            rows_by_phone[e] += 1
    phone, rows = rows_by_phone.most_common(1)[0]
    assert rows > 5 and len(by_phone[phone]) > 5
    assert phone not in set(persons["phone_e164"])
    # (b) placeholder e-mails on records of different persons
    placeholder = defaultdict(set)
    for r in crm:
        if r["email"] and r["email"].strip().lower() in {
            "test@test.com",
            "noemail@example.com",
            "none@none.com",
        }:
            placeholder[r["email"].strip().lower()].add(person_of[r["crm_id"]])
    assert sum(len(v) for v in placeholder.values()) >= 2 and max(len(v) for v in placeholder.values()) >= 2
    # (c) a family tablet: one device / anonymousId, two persons logging in with their own userId
    ev_person = links[links["source"] == "event"].set_index("record_key")["person_id"]
    users_by_device = defaultdict(set)
    persons_by_anon = defaultdict(set)
    for e in events["clean"]:
        if e["userId"]:
            users_by_device[e["context"]["device"]["id"]].add(e["userId"])
        persons_by_anon[e["anonymousId"]].add(ev_person[e["messageId"]])
    shared = [d for d, u in users_by_device.items() if len(u) == 2]
    assert shared
    assert max(len(v) for v in persons_by_anon.values()) == 2
    # (d) households share last name and address but not first name / birth date
    multi = persons[persons.duplicated("household_id", keep=False)]
    assert len(multi) > 0.1 * N
    for _, g in multi.groupby("household_id"):
        assert g["last_name"].nunique() == 1 and g["country"].nunique() == 1
        assert g["first_name"].is_unique


# ---------------------------------------------------------------- ground truth


def test_truth_tables(truth: Path, persons: pd.DataFrame) -> None:
    assert len(persons) == N and persons["person_id"].is_unique
    cols = {
        "person_id",
        "household_id",
        "country",
        "first_name",
        "last_name",
        "birth_date",
        "email",
        "phone_e164",
    }
    cols |= {"signup_date", "lam", "dropout_at", "spend_mean", "email_resp", "age_band", "city_tier"}
    cols |= {
        f"cat_pref_{c}"
        for c in ("electronics", "fashion", "home", "beauty", "sports", "grocery", "toys", "books")
    }
    cols |= {"chan_pref_web", "chan_pref_app", "chan_pref_store"}
    assert set(persons.columns) == cols
    cat = persons[[c for c in persons.columns if c.startswith("cat_pref_")]].sum(axis=1)
    assert np.allclose(cat, 1.0)
    assert np.allclose(persons[["chan_pref_web", "chan_pref_app", "chan_pref_store"]].sum(axis=1), 1.0)
    assert (persons["lam"] > 0).all() and (persons["spend_mean"] > 0).all()
    assert 1 / 120 < persons["lam"].mean() < 1 / 35
    labels = pd.read_parquet(truth / "labels.parquet")
    assert set(labels.columns) == {
        "person_id",
        "cutoff",
        "alive_at_cutoff",
        "p_churn_90d",
        "expected_spend_365d",
    }
    cutoffs = sorted(pd.to_datetime(labels["cutoff"]).dt.date.unique())
    assert cutoffs == [
        date(2024, 6, 30),
        date(2024, 9, 30),
        date(2024, 12, 31),
        date(2025, 3, 31),
        date(2025, 6, 30),
        date(2025, 9, 30),
        date(2025, 12, 31),
        date(2026, 3, 31),
        AS_OF,
    ]
    assert labels["p_churn_90d"].between(0, 1).all()
    assert (labels["expected_spend_365d"] >= 0).all()
    dead = labels[~labels["alive_at_cutoff"]]
    assert len(dead) > 0 and (dead["p_churn_90d"] == 1.0).all() and (dead["expected_spend_365d"] == 0).all()
    alive = labels[labels["alive_at_cutoff"]]
    assert alive["p_churn_90d"].between(0.01, 0.99).mean() > 0.5
    offers = pd.read_parquet(truth / "offer_response.parquet")
    assert len(offers) == 5 * N and offers["p_response"].between(0, 1).all()
    wide = offers.pivot(index="person_id", columns="offer", values="p_response")
    uplift = wide.sub(wide["no_offer"], axis=0).drop(columns="no_offer")
    assert (uplift > 0).any().all() and (uplift < 0).any().all(), (
        "heterogeneous uplift with some negative effects"
    )
    world = json.loads((truth / "world.json").read_text())
    assert world["cutoffs"] == [c.isoformat() for c in cutoffs]


def test_engagement_decays_before_dropout(events, links: pd.DataFrame, persons: pd.DataFrame) -> None:
    ev_person = links[links["source"] == "event"].set_index("record_key")["person_id"]
    ts = defaultdict(list)
    for e in events["clean"]:
        if e["type"] == "page":
            ts[ev_person[e["messageId"]]].append(pd.Timestamp(e["timestamp"]).tz_convert(None))
    end = pd.Timestamp(AS_OF)
    before_n = window_n = before_days = window_days = 0.0
    for _, p in persons.iterrows():
        tau, start = p["dropout_at"], pd.Timestamp(p["signup_date"])
        if tau > end or (tau - start).days < 240 or not ts.get(p["person_id"]):
            continue
        t = pd.Series(ts[p["person_id"]])
        cut = tau - pd.Timedelta(days=60)
        before_n += ((t >= start + pd.Timedelta(days=1)) & (t < cut)).sum()
        window_n += ((t >= cut) & (t < tau)).sum()
        before_days += (cut - start).days - 1
        window_days += 60
    assert before_days > 0 and window_n > 0
    assert window_n / window_days < 0.6 * before_n / before_days


def test_no_activity_after_dropout(events, links: pd.DataFrame, persons: pd.DataFrame) -> None:
    ev_person = links[links["source"] == "event"].set_index("record_key")["person_id"]
    tau = persons.set_index("person_id")["dropout_at"]
    late = [
        e
        for e in events["clean"]
        if pd.Timestamp(e["timestamp"]).tz_convert(None)
        > tau[ev_person[e["messageId"]]] + pd.Timedelta(days=1)
    ]
    assert not late


# ---------------------------------------------------------------- pure helpers


def test_messy_helpers() -> None:
    assert messy.ascii_fold("José Müller") == "Jose Muller"
    assert messy.german_translit("Müller Straße") == "Mueller Strasse"
    assert messy.typo("Johnson", 0, 0.0) == "Jhonson"
    assert messy.typo("Johnson", 1, 0.0) == "Jhnson"
    assert messy.gmail_variant("john.smith@gmail.com", 3, "shop") == "johnsmith+shop@gmail.com"
    assert messy.format_birth_date("DE", 1990, 3, 4, False) == "04.03.1990"
    assert messy.format_birth_date("US", 1990, 3, 4, False) == "03/04/1990"
    assert messy.format_birth_date("GB", 1990, 3, 4, True) == "1990-03-04"
    assert messy.format_street("DE", 12, "Goethe", ("straße", "str."), True) == "Goethestr. 12"
    assert messy.messy_postcode("US", "02139", 1) == "2139"
    for k in range(3):
        assert not _valid_email(messy.malformed_email("anna.smith@mail.com", k))
    assert messy.messy_email("a.b@gmail.com", 2, 1) == " A.b@Gmail.com"


def test_id_helpers() -> None:
    ids = uuid_strings(np.arange(10_000), 5).to_pylist()
    assert len(set(ids)) == 10_000 and all(
        re.fullmatch(r"[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}", i) for i in ids
    )
    assert uuid_strings(np.arange(3), 5).to_pylist() != uuid_strings(np.arange(3), 6).to_pylist()
    assert prefixed_ids("C", np.array([7, 12345678]), 8).to_pylist() == ["C00000007", "C12345678"]
    ms = np.array(
        [
            pd.Timestamp("2024-03-31T00:59:59.123Z").value // 10**6,
            pd.Timestamp("2024-12-01T12:00:00Z").value // 10**6,
        ]
    )
    got = iso_timestamps(ms, np.array([60, -300]), np.array([False, True])).to_pylist()
    assert got == ["2024-03-31T01:59:59.123+01:00", "2024-12-01T12:00:00.000Z"]
    for s, m in zip(got, ms, strict=True):
        assert pd.Timestamp(s).value // 10**6 == m
