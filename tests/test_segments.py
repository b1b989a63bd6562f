"""Segment rules: parsed by a real parser (never eval), validated against known fields, quantiles
from the population, tiers exclusive, and the same answer for a frame (batch) and a record (serving)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cli.settings import Settings
from training.segments import (
    DEFAULT_FILE,
    SegmentRuleError,
    latest_thresholds,
    load_segments,
    parse_segments,
    save_thresholds,
)


@pytest.fixture(scope="module")
def population() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    n = 2000
    df = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "churn_probability": rng.random(n),
            "clv_365d": rng.gamma(0.8, 150.0, n),
            "frequency": rng.integers(0, 6, n).astype(float),
            "rfm_segment": rng.choice(["champions", "loyal", "at_risk", None], n),
            "next_best_action": rng.choice(["no_offer", "discount_10", "free_shipping"], n),
        }
        | {f"propensity_{c}": rng.random(n) for c in ("electronics", "fashion")}
    )
    df.loc[:19, "clv_365d"] = np.nan  # customers without a CLV score yet
    return df


def rules(**exprs: str):
    return parse_segments({"rules": {name: {"when": e} for name, e in exprs.items()}})


def test_the_packaged_file_parses_with_rules_tiers_and_audiences():
    book = load_segments(Settings())
    kinds = {r.kind for r in book.rules}
    assert kinds == {"rule", "tier", "audience"}
    assert "at_risk_high_value" in book.names and "nba_discount_10" in book.names
    assert "nba_no_offer" not in book.names  # excluded in the file
    assert "p80(clv_365d)" in book.quantile_refs


def test_a_rule_with_a_quantile_matches_a_hand_computed_mask(population):
    book = rules(x="churn_probability >= 0.6 and clv_365d >= p80(clv_365d)")
    th = book.thresholds(population)
    p80 = np.nanquantile(population["clv_365d"], 0.8)
    assert th["p80(clv_365d)"] == pytest.approx(p80)
    expected = (population["churn_probability"] >= 0.6) & (population["clv_365d"] >= p80)
    members = book.assign(population, th)
    assert set(members["customer_id"]) == set(population.loc[expected, "customer_id"])
    assert len(members) == int(expected.sum()) > 0


def test_language_covers_or_not_in_arithmetic_and_chained_comparisons(population):
    book = rules(
        a="rfm_segment in ['champions', 'loyal'] or not (frequency >= 1)",
        b="0.2 < churn_probability <= 0.4",
        c="clv_365d / 2 > 100 && next_best_action != 'no_offer'",
        d="rfm_segment not in ['at_risk']",
    )
    got = book.evaluate(population, {})
    p = population
    assert (got["a"] == (p["rfm_segment"].isin(["champions", "loyal"]) | ~(p["frequency"] >= 1))).all()
    assert (got["b"] == ((p["churn_probability"] > 0.2) & (p["churn_probability"] <= 0.4))).all()
    assert (got["c"] == ((p["clv_365d"] / 2 > 100) & (p["next_best_action"] != "no_offer"))).all()
    # a missing value is in no list and outside every "not in" too
    assert (got["d"] == (p["rfm_segment"].notna() & (p["rfm_segment"] != "at_risk"))).all()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("churn_probabilty >= 0.6", ["'risky'", "unknown field 'churn_probabilty'"]),
        ("clv_365d >= p80(lifetime_value)", ["unknown field 'lifetime_value'"]),
        ("churn_probability >= ", ["cannot parse"]),
        ("__import__('os').system('true')", ["__import__"]),
        ("clv_365d >= max(clv_365d)", ["max(...)"]),
        ("churn_probability", ["not a condition"]),
        ("rfm_segment > 'loyal'", ["text fields compare only"]),
        ("clv_365d == 'high'", ["compares a number with a text"]),
        ("churn_probability.real > 0", ["not allowed"]),
    ],
)
def test_bad_rules_are_rejected_naming_the_rule_and_the_field(expr, names):
    with pytest.raises(SegmentRuleError) as err:
        rules(risky=expr)
    text = str(err.value)
    assert "segment 'risky'" in text
    for name in names:
        assert name in text


def test_bad_files_are_rejected_with_the_section_named(tmp_path):
    with pytest.raises(SegmentRuleError, match="unknown section"):
        parse_segments({"rulez": {}})
    twice = {
        "tiers": {"x": {"field": "clv_365d", "bands": {"y": 1.0}}},  # makes x_y
        "audiences": {"x": {"field": "rfm_segment", "values": ["y"]}},  # makes x_y again
    }
    with pytest.raises(SegmentRuleError, match="'x_y' is declared twice"):
        parse_segments(twice)
    with pytest.raises(SegmentRuleError, match="band shares must rise"):
        parse_segments({"tiers": {"v": {"field": "clv_365d", "bands": {"a": 0.5, "b": 0.1}}}})
    bad = tmp_path / "segments.yaml"
    bad.write_text("rules: [unclosed")
    with pytest.raises(SegmentRuleError, match="not valid YAML"):
        load_segments(path=bad)


def test_value_tiers_are_exclusive_and_cover_every_scored_customer(population):
    book = load_segments(path=DEFAULT_FILE)
    th = book.thresholds(population)
    tiers = [r.name for r in book.rules if r.kind == "tier"]
    hits = book.evaluate(population, th)[tiers]
    scored = population["clv_365d"].notna()
    assert (hits[scored].sum(axis=1) == 1).all()
    assert (hits[~scored].sum(axis=1) == 0).all()
    shares = hits[scored].mean()
    assert shares["value_top_1"] == pytest.approx(0.01, abs=0.004)
    assert shares["value_rest"] == pytest.approx(0.50, abs=0.01)


def test_one_record_gets_the_segments_its_row_gets_in_a_frame(population):
    book = load_segments(path=DEFAULT_FILE)
    th = book.thresholds(population)
    members = book.assign(population, th).groupby("customer_id")["segment"].apply(list)
    for _, row in population.sample(60, random_state=1).iterrows():
        record = {k: (None if pd.isna(v) else v) for k, v in row.items()}
        assert book.segments_for(record, th) == members.get(row["customer_id"], [])


def test_without_thresholds_a_record_skips_quantile_rules_and_a_frame_refuses(population):
    book = load_segments(path=DEFAULT_FILE)
    assert "at_risk_high_value" in book.skipped({})
    record = population.iloc[0].to_dict() | {"churn_probability": 0.9, "frequency": 3.0}
    got = book.segments_for(record, {})
    assert "at_risk" in got and not set(got) & set(book.skipped({}))
    with pytest.raises(SegmentRuleError, match="quantile thresholds missing"):
        book.assign(population, {})


def test_thresholds_saved_with_a_run_are_read_back_as_the_latest(tmp_path, population):
    settings = Settings(data_dir=tmp_path)
    assert latest_thresholds(settings) is None
    book = load_segments(settings)
    th = book.thresholds(population)
    save_thresholds(settings, "run-1", {k: v + 1 for k, v in th.items()})
    save_thresholds(settings, "run-2", th)
    run_id, back = latest_thresholds(settings)
    assert run_id == "run-2"
    assert back.keys() == th.keys()
    assert all(back[k] == pytest.approx(th[k]) or (np.isnan(back[k]) and np.isnan(th[k])) for k in th)


def test_the_settings_choose_the_segment_file(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text("rules:\n  big_spenders:\n    when: monetary >= 1000\n")
    settings = Settings(data_dir=tmp_path, training={"segments_file": own})
    assert load_segments(settings).names == ["big_spenders"]
