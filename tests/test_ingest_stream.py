"""The one-pass path for event files (``pipelines/ingest/stream.py``) writes exactly what the
generic validate-then-standardize path writes: same rows, columns, types, values and
quarantine records, on lines built to hit every rule."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from cip.lake import Lake
from cli.settings import Settings
from pipelines.ingest.pipeline import run

NOW = datetime(2026, 7, 1, tzinfo=UTC)
FX = "date,currency,rate_to_base\n2024-01-01,EUR,1.10\n2024-01-03,EUR,1.20\n2024-01-02,GBP,1.25\n"


def _event(i: int, **extra: object) -> dict:
    return {
        "type": "track",
        "event": "Product Viewed",
        "messageId": f"m{i}",
        "timestamp": "2024-01-02T12:00:00+01:00",
        "anonymousId": f"a{i}",
        "context": {"channel": "Web", "device": {"id": f"d{i}", "type": "desktop"}},
        "properties": {"product_id": f"SKU{i}", "category": "Toys", "price": 9.5},
    } | extra


def _order(i: int, currency: str, when: str, revenue: object = 30.0, products: object = None) -> dict:
    items = (
        products
        if products is not None
        else [
            {"product_id": "SKU1", "category": "grocery", "price": 10.0, "quantity": 2},
            {"product_id": "SKU2", "category": " Home & Garden ", "price": "10", "quantity": None},
        ]
    )
    props = {"order_id": f"o{i}", "revenue": revenue, "currency": currency, "products": items}
    return _event(i, event="Order Completed", timestamp=when, properties=props)


LINES: list[object] = [
    _event(1),
    _event(
        2, type="identify", event=None, traits={"email": " Anna.B+x@Example.COM ", "phone": "(415) 555-0123"}
    ),
    _event(
        3,
        type="identify",
        traits={"email": "not-an-email", "phone": "12", "firstName": "JOSÉ", "lastName": "o'neil"},
    ),
    _event(4, type="page", event=None, name="\u00a0Home\u3000", properties={"path": "/"}),
    _event(1),  # repeated messageId: duplicate_key
    _order(5, "EUR", "2024-01-02T23:30:00-02:00"),  # UTC date 2024-01-03: the second EUR rate
    _order(6, "eur", "2023-06-01T00:00:00Z"),  # before the first rate: the earliest one
    _order(7, "GBP", "2025-03-01T00:00:00Z"),  # after the last rate: the last one
    _order(8, "USD", "2024-01-02T00:00:00Z", revenue="12.5", products=[]),
    _order(9, "JPY", "2024-01-02T00:00:00Z"),  # unknown_currency
    _order(10, "EUR", "2024-01-02T00:00:00Z", revenue=-1),  # invalid_amount
    _order(11, "EUR", "2024-01-02T00:00:00Z", revenue=None),  # missing_required revenue
    _event(12, timestamp="2031-01-01T00:00:00Z"),  # future_timestamp
    _event(13, timestamp="yesterday"),  # invalid_timestamp
    _event(14, type="screen"),  # invalid_value
    _event(15, anonymousId=None),  # missing_required anonymous_id|user_id
    "{not json",
    "[1, 2]",
    "{}",
    _event(16, messageId="m1"),  # a third m1
    _event(17, userId="C17", anonymousId=" "),
    _event(18, properties={"category": "  ", "price": "abc"}),  # blank category; price not a number
    _event(19, type="alias", event=None, previousId="a1", userId="C1"),
]
#: identify events whose national-format phone is read in the region of the device's locale
LOCALE_LINES: list[object] = [
    _event(
        30 + i,
        type="identify",
        event=None,
        context={"channel": "app", "locale": locale},
        traits={"phone": phone},
    )
    for i, (locale, phone) in enumerate(
        [
            ("en-GB", "020 7946 0958"),
            ("fr_CA", "(416) 555-2368"),
            (" de-DE ", "030 12345678"),
            ("en", "020 7946 0958"),  # no region in the tag: the default country (US)
            (None, "(212) 555-2368"),
            ("fr-FR", "+44 20 7946 0958"),  # an international number ignores the locale
            ("xx-ZZ", "020 7946 0958"),  # a region phonenumbers does not know
        ]
    )
]
EXPECTED_PHONES = [
    "+442079460958",
    "+14165552368",
    "+493012345678",
    None,
    "+12125552368",
    "+442079460958",
    None,
]


def _ingest(tmp_path: Path, lines: list[object], one_pass: bool) -> Lake:
    raw = tmp_path / "raw"
    (raw / "events").mkdir(parents=True, exist_ok=True)
    (raw / "fx_rates.csv").write_text(FX)
    text = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    (raw / "events" / "2024-01.jsonl").write_text(text, encoding="utf-8")
    settings = Settings(data_dir=tmp_path / ("one" if one_pass else "generic"), ingest={"one_pass": one_pass})
    run(settings, raw, now=NOW)
    return Lake(settings.lake_dir)


def assert_same_tables(a: Lake, b: Lake, tables: list[str]) -> None:
    """Every table equal row for row (ordered by file and row), dtypes included."""
    for table in tables:
        left, right = a.read(table), b.read(table)
        keys = [c for c in ("_source_file", "source_file", "_row", "line_number") if c in left.columns]
        left = left.sort_values(keys).reset_index(drop=True)
        right = right.sort_values(keys).reset_index(drop=True)
        pd.testing.assert_frame_equal(left, right, check_exact=True)


def test_one_pass_matches_the_generic_path_on_every_rule(tmp_path):
    one, generic = _ingest(tmp_path, LINES, True), _ingest(tmp_path, LINES, False)
    assert_same_tables(one, generic, ["events", "order_lines", "quarantine"])
    assert [b.rows_quarantined for b in one.batches()] == [b.rows_quarantined for b in generic.batches()]
    assert [b.flagged for b in one.batches()] == [b.flagged for b in generic.batches()]
    q = one.read("quarantine").set_index("_row")
    assert q.loc[5, "reason"] == "duplicate_key" and q.loc[20, "reason"] == "duplicate_key"
    assert q.loc[17, "reason"] == "malformed_json" and q.loc[19, "reason"] == "missing_required"
    assert q.loc[10, "reason"] == "unknown_currency"
    ev = one.read("events").set_index("message_id")
    assert ev.loc["m2", "email"] == "anna.b+x@example.com" and ev.loc["m2", "phone_e164"] == "+14155550123"
    assert bool(ev.loc["m3", "email_invalid"]) and pd.isna(ev.loc["m3", "email"])
    assert ev.loc["m3", "first_name"] == "José" and ev.loc["m4", "page_name"] == "Home"
    assert ev.loc["m5", "revenue_base"] == pytest.approx(36.0)  # 30 EUR at 1.20
    assert ev.loc["m6", "revenue_base"] == pytest.approx(33.0)  # 30 EUR at 1.10
    assert ev.loc["m7", "revenue_base"] == pytest.approx(37.5)  # 30 GBP at 1.25
    assert ev.loc["m8", "revenue_base"] == pytest.approx(12.5)
    lines = one.read("order_lines").sort_values(["_row", "line_number"])
    assert lines["category"].tolist() == ["grocery", "home"] * 3
    assert lines["amount_base"].tolist() == pytest.approx([24.0, 12.0, 22.0, 11.0, 25.0, 12.5])
    assert q.loc[22, "reason"] == "invalid_amount" and len(q) == 13


def test_event_phones_are_read_in_the_region_of_the_device_locale(tmp_path):
    one, generic = _ingest(tmp_path, LOCALE_LINES, True), _ingest(tmp_path, LOCALE_LINES, False)
    assert_same_tables(one, generic, ["events"])
    ev = one.read("events").sort_values("_row")
    assert ev["phone_e164"].tolist() == EXPECTED_PHONES
    assert ev["locale"].tolist()[:3] == ["en-GB", "fr_CA", "de-DE"]


def test_order_lines_match_for_odd_item_lists(tmp_path):
    """Items flattened in Arrow (one-pass) number and carry their order like SQL ``unnest``."""
    item = {"product_id": "SKU9", "category": "toys", "price": 2, "quantity": 3}
    lines = [
        _order(1, "USD", "2024-01-02T00:00:00Z", products=[None, item]),  # a null item keeps its number
        _event(2),  # no items between two orders
        _order(3, "USD", "2024-01-02T00:00:00Z", products=[]),
        _order(4, "USD", "2024-01-02T00:00:00Z", products=[item, {}, item]),
        _order(5, "JPY", "2024-01-02T00:00:00Z", products=[item]),  # rejected: no lines
    ]
    one, generic = _ingest(tmp_path, lines, True), _ingest(tmp_path, lines, False)
    assert_same_tables(one, generic, ["order_lines"])
    got = one.read("order_lines").sort_values(["_row", "line_number"])
    assert list(zip(got["_row"], got["line_number"], strict=True)) == [(1, 1), (1, 2), (4, 1), (4, 2), (4, 3)]


def test_generic_path_is_taken_when_rows_do_not_line_up_with_lines(tmp_path):
    lines = [_event(1), "", _event(2), "{broken"]
    one, generic = _ingest(tmp_path, lines, True), _ingest(tmp_path, lines, False)
    assert_same_tables(one, generic, ["events", "quarantine"])
    assert sorted(one.read("events")["_row"]) == [1, 3]


@pytest.mark.parametrize("drop", [[], [0], [9], [0, 1, 2], [3, 4, 8, 9], list(range(10))])
def test_rows_are_dropped_without_copying_the_rest(drop):
    import numpy as np
    import pyarrow as pa

    from pipelines.ingest.stream import _without

    table = pa.table({"i": list(range(10)), "s": [f"v{i}" for i in range(10)]})
    kept = _without(table, np.array(drop, dtype=np.int64))
    assert kept.column("i").to_pylist() == [i for i in range(10) if i not in drop]
    assert kept.schema == table.schema


@pytest.mark.parametrize("lines", [["{broken"], ["[1]", "{}"], [json.dumps(_event(1))] * 3])
def test_one_pass_matches_on_degenerate_files(tmp_path, lines):
    one, generic = _ingest(tmp_path, lines, True), _ingest(tmp_path, lines, False)
    assert_same_tables(one, generic, ["events", "quarantine"])
    assert one.batches()[-1].rows_in == len(lines)


@pytest.mark.parametrize("one_pass", [True, False])
def test_amounts_in_a_currency_without_rates_stop_the_file_with_a_fix(tmp_path, one_pass):
    from cip.errors import SourceFileError

    raw = tmp_path / "raw"
    (raw / "events").mkdir(parents=True)
    (raw / "fx_rates.csv").write_text("date,currency,rate_to_base\n2024-01-01,GBP,1.25\n")
    lines = [_event(1), _order(2, "EUR", "2024-01-02T00:00:00Z")]
    (raw / "events" / "2024-01.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    settings = Settings(data_dir=tmp_path / "data", ingest={"one_pass": one_pass})
    with pytest.raises(SourceFileError, match="1 amounts in CAD, EUR") as err:
        run(settings, raw, now=NOW)
    assert "fx_rates.csv" in str(err.value.fix)
    lake = Lake(settings.lake_dir)
    assert [b.source for b in lake.batches()] == ["fx_rates"] and not lake.has("events")


def test_lookup_memo_maps_seen_and_new_values_like_the_rule():
    """Values seen in an earlier file are mapped from the Arrow memo, new ones by the rule; the
    results equal the rule's on every value, and the memo holds each value once."""
    import pyarrow as pa

    from pipelines.ingest import rules, stream
    from pipelines.ingest.nodes import Lookup

    lookup = Lookup("email", "email_raw", rules.email_lookup, "email_map:memo-test", kind="email")
    first = pa.table(
        {"email_raw": ["A@x.com", "bad", None, "A@x.com"], "email": [None] * 4, "email_invalid": [None] * 4}
    )
    second = pa.table(
        {"email_raw": ["bad", " C@Y.org", "c@y.org"], "email": [None] * 3, "email_invalid": [None] * 3}
    )
    out = [stream._apply_lookup(t, lookup) for t in (first, second, first)]
    expected = rules.email_lookup(
        pd.DataFrame({"raw": pd.array(["A@x.com", "bad", " C@Y.org", "c@y.org"], dtype="string")})
    )
    rule = {r.raw: (r.email if r.valid else None, not r.valid) for r in expected.itertuples()}
    for table, result in zip((first, second, first), out, strict=True):
        for raw, email, invalid in zip(
            table["email_raw"].to_pylist(),
            result["email"].to_pylist(),
            result["email_invalid"].to_pylist(),
            strict=True,
        ):
            assert (email, invalid) == (rule[raw] if raw is not None else (None, False))
    keys, _ = stream._MEMO[("email_map:memo-test", None)]
    assert sorted(keys.to_pylist()) == sorted(rule)
