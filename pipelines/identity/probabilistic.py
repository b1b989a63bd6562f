"""Probabilistic (Fellegi-Sunter) record matching on Splink 5 / DuckDB.

One code path serves the product (``cip identity``) and the FEBRL benchmark:

* :func:`train` estimates a model from unlabelled records: the prior (lambda) from
  near-certain deterministic rules, u probabilities from random record pairs (seeded),
  m probabilities by expectation maximisation on the configured training blocks.
* :func:`predict` scores candidate pairs (configured blocking rules) and returns the
  per-role match weights / Bayes factors behind every score (waterfall data).
* :func:`explain_pair` breaks one pair's score into per-field contributions.
* :func:`save_model` / :func:`load_model` / :func:`load_or_train` persist the model.

Records are pandas DataFrames with a ``record_id`` column plus role columns
(``first_name``, ``last_name``, ``birth_date``, ...; see :mod:`pipelines.identity.matching_config`),
already standardised by the caller (lower-cased, trimmed). Role values are compared
as strings; empty strings and NaN are treated as missing.

The model is Splink's own model JSON (loadable by ``splink.Linker``) plus one extra
top-level key, ``cip_metadata`` (config fingerprint, training statistics and the
term-frequency counts needed to explain pairs without the original data).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from copy import deepcopy
from pathlib import Path
from typing import Any

import pandas as pd
import splink
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.blocking_rule_library import CustomRule
from splink.internals.column_expression import ColumnExpression

from pipelines.identity.matching_config import RECORD_ID, ComparisonConfig, MatchingConfig

__all__ = [
    "MODEL_FORMAT_VERSION",
    "Records",
    "explain_pair",
    "load_model",
    "load_or_train",
    "predict",
    "prior_match_weight",
    "save_model",
    "splink_settings",
    "train",
]

logger = logging.getLogger(__name__)

MODEL_FORMAT_VERSION = 1
META_KEY = "cip_metadata"

Records = pd.DataFrame | Sequence[pd.DataFrame]


# --------------------------------------------------------------------------- settings
def _comparison(role: str, cc: ComparisonConfig) -> cl.CustomComparison:
    """Translate one role's :class:`ComparisonConfig` into Splink comparison levels."""
    col = role
    levels: list[Any] = [
        cll.NullLevel(col),
        cll.ExactMatchLevel(col, term_frequency_adjustments=cc.tf_adjustments).configure(
            label_for_charts=f"exact match on {role}"
        ),
    ]
    if cc.kind == "name" or (cc.kind == "address" and cc.algorithm in (None, "jaro_winkler")):
        thresholds = cc.resolved_jaro_winkler_thresholds
        high = [t for t in thresholds if t >= 0.88 or cc.kind != "name"]
        for t in high:
            if cc.numbers_must_agree:
                n = numbers_column(role)
                levels.append(
                    cll.CustomLevel(
                        f"jaro_winkler_similarity({col}_l, {col}_r) >= {t} AND "
                        f"({n}_l IS NULL OR {n}_r IS NULL OR {n}_l = {n}_r)",
                        label_for_charts=f"{role} Jaro-Winkler >= {t:g}, same house numbers",
                    )
                )
                continue
            levels.append(
                cll.JaroWinklerLevel(col, t).configure(label_for_charts=f"{role} Jaro-Winkler >= {t:g}")
            )
        if cc.numbers_must_agree:  # its own weight: neighbours (generated world) or a mistyped number (FEBRL)
            levels.append(
                cll.JaroWinklerLevel(col, min(high)).configure(
                    label_for_charts=f"{role} Jaro-Winkler >= {min(high):g}, other house numbers"
                )
            )
        if cc.swapped_with:
            other = cc.swapped_with
            levels.append(
                cll.CustomLevel(
                    f"({role}_l = {other}_r OR {role}_r = {other}_l)",
                    label_for_charts=f"{role} equals the other record's {other} (swapped)",
                )
            )
        for t in thresholds:
            if t not in high:
                levels.append(
                    cll.JaroWinklerLevel(col, t).configure(label_for_charts=f"{role} Jaro-Winkler >= {t:g}")
                )
    elif cc.kind == "address":  # levenshtein address
        for d in cc.resolved_edit_distance_thresholds:
            levels.append(
                cll.LevenshteinLevel(col, d).configure(label_for_charts=f"{role} Levenshtein <= {d}")
            )
    elif cc.kind == "date":
        fmt = cc.resolved_date_format
        levels.append(
            cll.DamerauLevenshteinLevel(col, 1).configure(
                label_for_charts=f"{role} one character edit/transposition"
            )
        )
        for w in cc.resolved_date_windows:
            levels.append(
                cll.AbsoluteDateDifferenceLevel(
                    col, input_is_string=True, threshold=w.threshold, metric=w.metric, datetime_format=fmt
                ).configure(label_for_charts=f"{role} within {w.threshold} {w.metric}(s)")
            )
    elif cc.kind in ("postcode", "levenshtein"):
        for d in cc.resolved_edit_distance_thresholds:
            levels.append(
                cll.DamerauLevenshteinLevel(col, d).configure(
                    label_for_charts=f"{role} Damerau-Levenshtein <= {d}"
                )
            )
        if cc.kind == "postcode":
            for n in cc.resolved_prefix_lengths:
                levels.append(
                    cll.ExactMatchLevel(ColumnExpression(col).substr(1, n)).configure(
                        label_for_charts=f"{role} same first {n} characters"
                    )
                )
    levels.append(cll.ElseLevel().configure(label_for_charts=f"{role} differs"))
    return cl.CustomComparison(
        comparison_levels=levels,
        output_column_name=role,
        comparison_description=f"{role} ({cc.kind})",
    )


def _blocking_rules(rules: Sequence[Sequence[str]], swapped: Sequence[Sequence[str]] = ()) -> list[Any]:
    """Splink blocking rules: records equal on every role of a rule, or with the two roles of a
    ``swapped`` pair transposed (first and last name entered the wrong way round)."""
    out = [block_on(*rule) for rule in rules]
    out += [CustomRule(f"l.{a} = r.{b} AND l.{b} = r.{a}", sql_dialect="duckdb") for a, b in swapped]
    return out


def _settings_creator(config: MatchingConfig) -> SettingsCreator:
    kwargs: dict[str, Any] = {}
    if config.probability_two_random_records_match is not None:
        kwargs["probability_two_random_records_match"] = config.probability_two_random_records_match
    return SettingsCreator(
        link_type=config.link_type,
        unique_id_column_name=RECORD_ID,
        comparisons=[_comparison(role, cc) for role, cc in config.comparisons.items()],
        blocking_rules_to_generate_predictions=_blocking_rules(
            config.blocking_rules, config.swapped_blocking
        ),
        em_convergence=config.em_convergence,
        max_iterations=config.em_max_iterations,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        **kwargs,
    )


def splink_settings(model: Mapping[str, Any], config: MatchingConfig | None = None) -> dict[str, Any]:
    """The pure Splink settings dict of ``model`` (``cip_metadata`` removed).

    With ``config``, its ``link_type`` and ``blocking_rules`` replace the trained ones:
    candidate generation is an operational choice that does not change the parameters.
    """
    settings = {k: deepcopy(v) for k, v in model.items() if k != META_KEY}
    if config is not None:
        settings["link_type"] = config.link_type
        settings["blocking_rules_to_generate_predictions"] = [
            br.get_blocking_rule("duckdb").as_dict()
            for br in _blocking_rules(config.blocking_rules, config.swapped_blocking)
        ]
    settings["retain_matching_columns"] = True
    settings["retain_intermediate_calculation_columns"] = True
    return settings


# --------------------------------------------------------------------------- records
def _as_list(records: Records) -> list[pd.DataFrame]:
    if isinstance(records, pd.DataFrame):
        return [records]
    dfs = list(records)
    if not dfs or not all(isinstance(d, pd.DataFrame) for d in dfs):
        raise TypeError("records must be a DataFrame or a non-empty list of DataFrames")
    return dfs


def _clean_column(s: pd.Series, date_format: str | None) -> pd.Series:
    """Role values as Python strings (None when missing) so both sides compare alike."""
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s.dt.strftime(date_format or "%Y-%m-%d")
    else:
        out = s.astype("string").str.strip()
    out = out.astype(object)
    out[out.isna() | (out == "")] = None
    return out


def _prepare(records: Records, config: MatchingConfig, roles: Sequence[str]) -> list[pd.DataFrame]:
    dfs = _as_list(records)
    if config.link_type == "dedupe_only" and len(dfs) != 1:
        raise ValueError(f"link_type 'dedupe_only' takes one DataFrame, got {len(dfs)}")
    if config.link_type != "dedupe_only" and len(dfs) < 2:
        raise ValueError(f"link_type '{config.link_type}' needs at least two DataFrames, got {len(dfs)}")
    out = []
    for i, df in enumerate(dfs):
        missing = [c for c in (RECORD_ID, *roles) if c not in df.columns]
        if missing:
            raise ValueError(
                f"records[{i}] lacks column(s) {missing}; rename source columns to roles first "
                f"(has {list(df.columns)})"
            )
        if df[RECORD_ID].isna().any():
            raise ValueError(f"records[{i}] has missing {RECORD_ID} values")
        if not df[RECORD_ID].is_unique:
            dups = df.loc[df[RECORD_ID].duplicated(), RECORD_ID].head(5).tolist()
            raise ValueError(f"records[{i}] has duplicate {RECORD_ID} values, e.g. {dups}")
        clean = pd.DataFrame({RECORD_ID: df[RECORD_ID].to_numpy()})
        for role in roles:
            cc = config.comparisons.get(role)
            fmt = cc.resolved_date_format if cc is not None and cc.kind == "date" else None
            clean[role] = _clean_column(df[role], fmt).to_numpy()
            if cc is not None and cc.numbers_must_agree:
                numbers = clean[role].str.findall(r"\d+").str.join(" ")
                clean[numbers_column(role)] = numbers.where(numbers.str.len() > 0).to_numpy()
        out.append(clean)
    return out


def numbers_column(role: str) -> str:
    """The derived column holding a role's digit runs (house numbers), for ``numbers_must_agree``."""
    return f"{role}_numbers"


def _input_name(i: int) -> str:
    return f"input_{i:03d}"


def _linker(
    dfs: list[pd.DataFrame], settings: SettingsCreator | dict[str, Any], *, validate: bool = True
) -> Linker:
    db_api = DuckDBAPI()
    sdfs = [db_api.register(df, dataset_display_name=_input_name(i)) for i, df in enumerate(dfs)]
    return Linker(sdfs if len(sdfs) > 1 else sdfs[0], settings, log_level=None, validate_settings=validate)


def _tf_roles(model: Mapping[str, Any]) -> list[str]:
    roles = []
    for comp in model["comparisons"]:
        for level in comp["comparison_levels"]:
            col = level.get("tf_adjustment_column")
            if col and col not in roles:
                roles.append(col)
    return roles


def _tf_counts(dfs: list[pd.DataFrame], roles: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per tf role: non-null total and counts of values seen at least twice.

    Values absent from ``counts`` occurred once (or never), so their frequency is
    reconstructed as 1/total - exactly what Splink computes from the training data.
    """
    out: dict[str, dict[str, Any]] = {}
    for role in roles:
        s = pd.concat([df[role] for df in dfs], ignore_index=True).dropna()
        vc = s.value_counts()
        vc = vc[vc >= 2]
        out[role] = {"total": int(len(s)), "counts": {str(k): int(v) for k, v in vc.items()}}
    return out


# --------------------------------------------------------------------------- training
def _total_pairs(sizes: list[int], link_type: str) -> int:
    n = sum(sizes)
    if link_type == "link_only":
        return sum(a * b for i, a in enumerate(sizes) for b in sizes[i + 1 :])
    return n * (n - 1) // 2


def train(records: Records, config: MatchingConfig) -> dict[str, Any]:
    """Estimate a matching model from unlabelled ``records``; returns the model dict.

    Steps (Splink's recommended unsupervised recipe, deterministic for a given seed):
    prior from ``deterministic_rules`` (unless fixed in the config), u by random
    sampling of ``max_pairs`` pairs, m by EM once per ``training_blocking_rules`` entry.
    """
    t0 = time.perf_counter()
    dfs = _prepare(records, config, config.used_roles)
    linker = _linker(dfs, _settings_creator(config))
    training = linker.training

    if config.probability_two_random_records_match is None:
        training.estimate_probability_two_random_records_match(
            _blocking_rules(config.deterministic_rules), recall=config.deterministic_recall
        )
        settings_obj = linker._settings_obj
        if not 0.0 < settings_obj._probability_two_random_records_match < 1.0:
            # No (or only) deterministic matches, e.g. a tiny or duplicate-free sample:
            # fall back to "about one match among all pairs" rather than an impossible prior.
            floor = 1.0 / max(_total_pairs([len(df) for df in dfs], config.link_type), 2)
            logger.warning("deterministic rules found no usable matches; using prior %.3g", floor)
            settings_obj._probability_two_random_records_match = floor
    training.estimate_u_using_random_sampling(max_pairs=config.max_pairs, seed=config.seed)
    # The EM pair cap is enforced by hash-sampling records; the pair count is first estimated
    # on a record sample, which must not be so small that it finds no pairs on small inputs.
    probe = min(1.0, max(0.01, 50_000 / max(sum(len(df) for df in dfs), 1)))
    for rule in config.training_blocking_rules:
        training.estimate_parameters_using_expectation_maximisation(
            block_on(*rule),
            estimate_without_term_frequencies=True,
            max_pairs=config.em_max_pairs,
            record_sample_proportion=probe,
        )

    model = linker.misc.save_model_to_json()
    model.pop("linker_uid", None)
    untrained = [
        c["output_column_name"]
        for c in model["comparisons"]
        if any(
            "m_probability" not in lvl or "u_probability" not in lvl
            for lvl in c["comparison_levels"]
            if not lvl.get("is_null_level")
        )
    ]
    if untrained:
        logger.warning(
            "Splink: some levels of %s were never seen in training and keep Splink's default match "
            "weights (m/u); matching works, those levels just count less precisely",
            ", ".join(untrained),
        )
    model[META_KEY] = {
        "format_version": MODEL_FORMAT_VERSION,
        "splink_version": splink.__version__,
        "config_fingerprint": config.fingerprint(),
        "config": config.to_dict(),
        "roles": list(config.comparisons),
        "n_records": [len(df) for df in dfs],
        "train_seconds": round(time.perf_counter() - t0, 3),
        "term_frequencies": _tf_counts(dfs, _tf_roles(model)),
    }
    logger.info(
        "trained matching model on %s records in %.1fs (lambda=%.3g)",
        [len(df) for df in dfs],
        model[META_KEY]["train_seconds"],
        model["probability_two_random_records_match"],
    )
    return model


# --------------------------------------------------------------------------- persistence
def save_model(model: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``model`` as JSON (atomically: temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(model, indent=2, sort_keys=False), encoding="utf-8")
    tmp.replace(path)
    return path


def load_model(path: str | Path) -> dict[str, Any]:
    model = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(model, dict) or "comparisons" not in model:
        raise ValueError(f"{path} is not a matching model (no 'comparisons')")
    return model


def load_or_train(
    records: Records, config: MatchingConfig, path: str | Path, *, retrain: bool = False
) -> dict[str, Any]:
    """Reuse the model at ``path`` if it exists (unless ``retrain``); else train and save it."""
    path = Path(path)
    if path.exists() and not retrain:
        model = load_model(path)
        saved = model.get(META_KEY, {}).get("config_fingerprint")
        if saved != config.fingerprint():
            logger.warning(
                "model %s was trained with different matching settings (%s != %s); "
                "reusing it anyway - pass retrain=True to re-estimate",
                path,
                saved,
                config.fingerprint(),
            )
        return model
    model = train(records, config)
    save_model(model, path)
    return model


# --------------------------------------------------------------------------- prediction
def prior_match_weight(model: Mapping[str, Any]) -> float:
    """log2 prior odds that two random records match (the waterfall's starting bar)."""
    p = float(model["probability_two_random_records_match"])
    return math.log2(p / (1.0 - p))


def _model_roles(model: Mapping[str, Any]) -> list[str]:
    return [c["output_column_name"] for c in model["comparisons"]]


def _needed_roles(model: Mapping[str, Any], config: MatchingConfig) -> list[str]:
    """Compared roles, roles referenced by swapped-name levels, and blocking roles."""
    roles = _model_roles(model)
    roles += [cc.swapped_with for cc in config.comparisons.values() if cc.swapped_with]
    roles += [r for rule in config.blocking_rules for r in rule]
    return list(dict.fromkeys(roles))


def _has_tf(model: Mapping[str, Any], role: str) -> bool:
    return role in _tf_roles(model)


def predict(
    records: Records,
    model: Mapping[str, Any],
    config: MatchingConfig,
    threshold: float | None = None,
    *,
    retain_values: bool = False,
) -> pd.DataFrame:
    """Score candidate pairs; keep those with ``match_probability >= threshold``.

    ``threshold`` defaults to ``config.match_threshold``; pass 0 to keep every
    candidate pair. Columns: ``record_id_l``, ``record_id_r`` (plus
    ``source_dataset_l``/``_r``, the 0-based index of the input DataFrame, when
    linking), ``match_probability``, ``match_weight``, and per compared role
    ``gamma_<role>`` (comparison level, -1 = missing), ``mw_<role>`` (match weight
    including any term-frequency adjustment), ``bf_<role>`` (= 2 ** mw_<role>), and
    ``key_agrees`` (one of ``config.effective_key_roles`` agrees: the vetoes were lifted).
    ``match_weight = prior_match_weight(model) + sum(mw_<role>)``. With
    ``retain_values`` the compared values ``<role>_l``/``<role>_r`` are included.
    """
    thr = config.match_threshold if threshold is None else float(threshold)
    if not 0.0 <= thr < 1.0:
        raise ValueError(f"threshold must be in [0, 1), got {thr}")
    roles = _model_roles(model)
    needed = _needed_roles(model, config)
    dfs = _prepare(records, config, needed)
    linker = _linker(dfs, splink_settings(model, config))
    pred = linker.inference.predict(
        threshold_match_probability=thr if thr > 0 else None, warning_mode="never"
    )

    cols = []
    if config.link_type != "dedupe_only":
        cols += [
            f"cast(substr(source_dataset_{s}, {len('input_') + 1}) as integer) as source_dataset_{s}"
            for s in ("l", "r")
        ]
    cols += [f"{RECORD_ID}_l", f"{RECORD_ID}_r", "match_probability", "match_weight"]
    for role in roles:
        mw = f"mw_{role}" + (f" + mw_tf_adj_{role}" if _has_tf(model, role) else "")
        cols += [f"gamma_{role}", f"({mw}) as mw_{role}", f"pow(2.0, {mw}) as bf_{role}"]
        if retain_values:
            cols += [f"{role}_l", f"{role}_r"]
    order = "match_weight desc, " + ", ".join(
        (["source_dataset_l", "source_dataset_r"] if config.link_type != "dedupe_only" else [])
        + [f"{RECORD_ID}_l", f"{RECORD_ID}_r"]
    )
    clauses = _guard_clauses(config, model, roles)
    keys = " or ".join(
        f"gamma_{r} >= {config.key_gamma(r)}" for r in config.effective_key_roles if r in roles
    )
    cols.append(f"({keys or 'false'}) as key_agrees")
    veto = " and ".join(clauses)
    if veto and keys:  # an agreeing personal key lifts every veto and satisfies identity_roles
        veto = f"({keys}) or ({veto})"
    where = f" where {veto}" if veto else ""
    sql = f"select {', '.join(cols)} from {pred.physical_name}{where} order by {order}"
    out = linker.misc.query_sql(sql, output_type="pandas")
    pred.drop_table_from_database_and_remove_from_cache()
    return out


#: Matching pairs (expected: prior x candidate pairs) a model must have learned from before its
#: m-probabilities may relax a guard (``MatchingConfig.guard_max_m``); small exports keep them all.
GUARD_MIN_MATCHES = 200


def _guard_clauses(config: MatchingConfig, model: Mapping[str, Any], roles: Sequence[str]) -> list[str]:
    """SQL conditions a pair must meet besides the threshold: the vetoes, ``identity_roles`` and
    ``corroborate_missing``. Each assumes that a person's records agree on a role; it holds only
    where the trained model confirms that (the role's 'differs' level has m < ``guard_max_m``)."""
    reliable = reliable_roles(config, model) & set(roles)
    clauses = [_veto_clause(config, role) for role in config.effective_veto_roles if role in reliable]
    for_match = _levels_for_a_match(model)

    def agrees(role: str) -> str:
        levels = [g for g in config.agreement_gammas(role) if g in for_match[role]]
        return f"gamma_{role} in ({', '.join(map(str, levels or [-2]))})"

    identity = [r for r in config.effective_identity_roles if r in roles]
    if identity and all(r in reliable for r in identity):
        clauses.append("(" + " or ".join(agrees(r) for r in identity) + ")")
    for role, groups in config.effective_corroborate_missing.items():
        groups = [g for g in ([r for r in group if r in roles] for group in groups) if g]
        if role in reliable and groups:
            corroborated = " or ".join(
                "("
                + " and ".join(f"({agrees(r)} or gamma_{r} = -1)" for r in g)
                + f" and not ({' and '.join(f'gamma_{r} = -1' for r in g)}))"
                for g in groups
            )
            clauses.append(f"(gamma_{role} != -1 or {corroborated})")
    return clauses


def reliable_roles(config: MatchingConfig, model: Mapping[str, Any]) -> set[str]:
    """Roles on which the trained model says a person's records (almost) never differ. A model that
    saw fewer than :data:`GUARD_MIN_MATCHES` expected matching pairs relaxes no guard."""
    meta = model.get(META_KEY, {})
    sizes = meta.get("n_records") or []
    expected = float(model["probability_two_random_records_match"]) * _total_pairs(sizes, config.link_type)
    roles = _model_roles(model)
    if config.guard_max_m is None or expected < GUARD_MIN_MATCHES:
        return set(roles)
    out = set()
    for comparison in model["comparisons"]:
        role = comparison["output_column_name"]
        differs = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")][-1]
        m = differs.get("m_probability")
        if m is None or m < config.guard_max_m:
            out.add(role)
    return out


def _levels_for_a_match(model: Mapping[str, Any]) -> dict[str, set[int]]:
    """role -> comparison levels (gamma) the trained model weighs as evidence for a match (m > u); a
    level never seen in training (no m) is not counted."""
    out: dict[str, set[int]] = {}
    for comparison in model["comparisons"]:
        levels = [lvl for lvl in comparison["comparison_levels"] if not lvl.get("is_null_level")]
        out[comparison["output_column_name"]] = {
            len(levels) - 1 - i
            for i, lvl in enumerate(levels)
            if lvl.get("m_probability") is not None
            and lvl["m_probability"] > (lvl.get("u_probability") or 0.0)
        }
    return out


def _veto_clause(config: MatchingConfig, role: str) -> str:
    """SQL keeping a pair unless ``role`` vetoes it (lifted when every exemption role matches exactly)."""
    clause = f"gamma_{role} not in ({', '.join(str(g) for g in config.veto_gammas(role))})"
    lifters = config.effective_veto_exemptions.get(role)
    if lifters:
        agree = " and ".join(f"gamma_{r} >= {config.agreement_floor(r, how)}" for r, how in lifters.items())
        clause = f"({clause} or ({agree}))"
    return clause


# --------------------------------------------------------------------------- explanation
def _level_labels(comparison: Mapping[str, Any]) -> dict[int, str]:
    """comparison vector value -> label, mirroring Splink's numbering (null = -1)."""
    levels = comparison["comparison_levels"]
    n = sum(1 for lvl in levels if not lvl.get("is_null_level"))
    labels: dict[int, str] = {}
    counter = n - 1
    for lvl in levels:
        if lvl.get("is_null_level"):
            labels[-1] = lvl.get("label_for_charts") or "missing on either side"
        else:
            labels[counter] = lvl.get("label_for_charts") or str(counter)
            counter -= 1
    return labels


def _tf_value(value: Any, role: str, tf_source: Mapping[str, dict[str, Any]]) -> float | None:
    if value is None:
        return None
    info = tf_source.get(role)
    if not info or not info["total"]:
        return None
    return info["counts"].get(str(value), 1) / info["total"]


def explain_pair(
    model: Mapping[str, Any],
    record_l: Mapping[str, Any],
    record_r: Mapping[str, Any],
    config: MatchingConfig,
    *,
    records: Records | None = None,
) -> list[dict[str, Any]]:
    """Per-field breakdown of one pair's score (for ``cip identity explain``).

    Returns the prior first (``role == "prior"``, ``kind == "prior"``), then one entry
    per compared role (``kind == "field"``) with ``value_l``, ``value_r``, ``gamma``,
    ``level`` (label), ``match_weight`` (incl. ``tf_adjustment_weight``) and
    ``bayes_factor``. The ``match_weight`` values of all entries sum to the pair's
    match weight; ``match_probability`` is repeated on the prior entry for convenience.

    Term frequencies come from ``records`` when given (exactly as :func:`predict`
    computes them on those records), else from the training data stored in the model.
    """
    roles = _needed_roles(model, config)
    tf_roles = _tf_roles(model)
    if records is not None:
        tf_source = _tf_counts(_prepare(records, config, tf_roles), tf_roles)
    else:
        tf_source = model.get(META_KEY, {}).get("term_frequencies", {})

    frame = pd.DataFrame(
        [
            {RECORD_ID: f"__{side}__", **{role: rec.get(role) for role in roles}}
            for side, rec in (("l", record_l), ("r", record_r))
        ]
    )
    cfg = config.model_copy(update={"link_type": "dedupe_only"})
    clean = _prepare(frame, cfg, roles)[0]
    recs = clean.to_dict("records")
    for rec in recs:
        for role in tf_roles:
            rec[f"tf_{role}"] = _tf_value(rec[role], role, tf_source)

    settings = splink_settings(model, cfg)
    linker = _linker([clean], settings, validate=False)
    scored = linker.inference.score_pair(recs[0], recs[1]).as_pandas_dataframe().iloc[0]

    prior = prior_match_weight(model)
    out: list[dict[str, Any]] = [
        {
            "kind": "prior",
            "role": "prior",
            "value_l": None,
            "value_r": None,
            "gamma": None,
            "level": f"probability two random records match = {model['probability_two_random_records_match']:.4g}",
            "match_weight": prior,
            "tf_adjustment_weight": 0.0,
            "bayes_factor": 2.0**prior,
            "match_probability": float(scored["match_probability"]),
            "pair_match_weight": float(scored["match_weight"]),
        }
    ]
    for comp in model["comparisons"]:
        role = comp["output_column_name"]
        gamma = int(scored[f"gamma_{role}"])
        tf_adj = float(scored[f"mw_tf_adj_{role}"]) if role in tf_roles else 0.0
        mw = float(scored[f"mw_{role}"]) + tf_adj
        out.append(
            {
                "kind": "field",
                "role": role,
                "value_l": _none_if_na(scored[f"{role}_l"]),
                "value_r": _none_if_na(scored[f"{role}_r"]),
                "gamma": gamma,
                "level": _level_labels(comp).get(gamma, str(gamma)),
                "match_weight": mw,
                "tf_adjustment_weight": tf_adj,
                "bayes_factor": 2.0**mw,
            }
        )
    return out


def _none_if_na(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
