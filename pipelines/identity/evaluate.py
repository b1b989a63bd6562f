"""Identity quality against the generator's ground truth (evaluation only; pipelines never read truth).

Every identifier node gets the person most of its truth-linked records belong to; the resolved
customers are then compared with the persons: pairwise precision/recall/F1 (pairs of nodes),
B-cubed precision/recall/F1, and counts of over-merged customers and split persons.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cip.lake import Lake
from cip.sql import quote_literal

_OBSERVATIONS = """
WITH l AS (SELECT source, record_key, person_id FROM links),
crm AS (
  SELECT c.*, l.person_id FROM crm_customers c JOIN l ON l.source = 'crm' AND l.record_key = c.crm_id),
ev AS (
  SELECT e.*, l.person_id FROM events e JOIN l ON l.source = 'event' AND l.record_key = e.message_id),
obs AS (
  SELECT 'crm_id:' || crm_id AS node, person_id FROM crm
  UNION ALL SELECT 'email:' || email, person_id FROM crm WHERE email IS NOT NULL
  UNION ALL SELECT 'phone:' || phone_e164, person_id FROM crm WHERE phone_e164 IS NOT NULL
  UNION ALL SELECT 'loyalty_id:' || loyalty_id, person_id FROM crm WHERE loyalty_id IS NOT NULL
  UNION ALL SELECT 'crm_id:' || user_id, person_id FROM ev WHERE user_id IS NOT NULL
  UNION ALL SELECT 'anonymous_id:' || anonymous_id, person_id FROM ev WHERE anonymous_id IS NOT NULL
  UNION ALL SELECT 'anonymous_id:' || previous_id, person_id FROM ev WHERE previous_id IS NOT NULL
  UNION ALL SELECT 'device_id:' || device_id, person_id FROM ev WHERE device_id IS NOT NULL
  UNION ALL SELECT 'email:' || email, person_id FROM ev WHERE email IS NOT NULL
)
SELECT node, first(person_id ORDER BY n DESC, person_id) AS person_id, count(*) AS n_persons FROM (
  SELECT node, person_id, count(*) AS n FROM obs GROUP BY ALL) GROUP BY node
"""


def node_truth(lake: Lake, truth_dir: Path) -> pd.DataFrame:
    """node → majority person from truth-linked records (ties to the smallest person id, so that
    every evaluation of one map gives the same figures) and ``n_persons``, how many persons the
    truth links the node to (a household landline, a family tablet: 2 or more)."""
    con = lake.connect(["crm_customers", "events"])
    con.execute(
        f"CREATE VIEW links AS SELECT * FROM read_parquet({quote_literal(truth_dir / 'record_links.parquet')})"
    )
    return con.sql(_OBSERVATIONS).df()


def cluster_metrics(assignments: pd.DataFrame) -> dict[str, float]:
    """Pairwise and B-cubed metrics from rows of (customer_id, person_id), one per node."""
    if assignments.empty:
        return {}
    with duckdb.connect() as con:
        con.execute("SET threads = 1")  # float sums in one order: the same map gives the same figures
        con.register("a", assignments[["customer_id", "person_id"]])
        row = con.execute(
            """WITH n AS (SELECT customer_id, person_id, count(*)::DOUBLE AS nij FROM a GROUP BY ALL),
                    ci AS (SELECT customer_id, sum(nij) AS ni FROM n GROUP BY ALL),
                    pj AS (SELECT person_id, sum(nij) AS nj FROM n GROUP BY ALL)
               SELECT (SELECT sum(nij * (nij - 1) / 2) FROM n) AS tp,
                      (SELECT sum(ni * (ni - 1) / 2) FROM ci) AS pred_pairs,
                      (SELECT sum(nj * (nj - 1) / 2) FROM pj) AS true_pairs,
                      (SELECT sum(nij * nij / ni) FROM n JOIN ci USING (customer_id)) AS b3p,
                      (SELECT sum(nij * nij / nj) FROM n JOIN pj USING (person_id)) AS b3r,
                      (SELECT sum(nij) FROM n) AS nodes,
                      (SELECT count(*) FROM (SELECT customer_id FROM n GROUP BY ALL HAVING count(*) > 1)) AS over_merged_customers,
                      (SELECT count(DISTINCT person_id) FROM n WHERE customer_id IN
                          (SELECT customer_id FROM n GROUP BY ALL HAVING count(*) > 1)) AS persons_in_over_merged,
                      (SELECT count(*) FROM (SELECT person_id FROM n GROUP BY ALL HAVING count(*) > 1)) AS split_persons,
                      (SELECT count(DISTINCT person_id) FROM n) AS persons,
                      (SELECT count(DISTINCT customer_id) FROM n) AS customers"""
        ).fetchall()[0]
    tp, pred, true, b3p, b3r, nodes, over, over_p, split, persons, customers = row
    precision = tp / pred if pred else 1.0
    recall = tp / true if true else 1.0
    b_p, b_r = b3p / nodes, b3r / nodes
    return {
        "nodes": int(nodes),
        "persons": int(persons),
        "customers": int(customers),
        "pairwise_precision": precision,
        "pairwise_recall": recall,
        "pairwise_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "bcubed_precision": b_p,
        "bcubed_recall": b_r,
        "bcubed_f1": 2 * b_p * b_r / (b_p + b_r) if b_p + b_r else 0.0,
        "over_merged_customers": int(over),
        "persons_in_over_merged_customers": int(over_p),
        "split_persons": int(split),
    }


def resolvable_clusters(truth: pd.DataFrame, edges: pd.DataFrame) -> pd.Series:
    """For each node, the part of its person that the data can connect: components of the graph
    of deterministic edges whose two ends belong to the same person, plus every pair of that
    person's CRM accounts (matchable on name, birth date and address). A person who browsed on a
    device that never logged in leaves that device unresolvable: no resolver can join it."""
    person = truth.set_index("node")["person_id"]
    nodes = pd.Index(truth["node"].unique())
    det = edges[(edges["edge_type"] != "probabilistic") & (edges["src"] != edges["dst"])][
        ["src", "dst"]
    ].drop_duplicates()
    det = det[det["src"].isin(nodes) & det["dst"].isin(nodes)]
    det = det[person.reindex(det["src"]).to_numpy() == person.reindex(det["dst"]).to_numpy()]
    crm = truth[truth["node"].str.startswith("crm_id:")]
    anchor = crm.groupby("person_id")["node"].transform("min")
    pairs = pd.concat(
        [det, pd.DataFrame({"src": crm["node"].to_numpy(), "dst": anchor.to_numpy()})], ignore_index=True
    )
    codes = pd.Series(np.arange(len(nodes)), index=nodes)
    graph = coo_matrix(
        (
            np.ones(len(pairs)),
            (codes.reindex(pairs["src"]).to_numpy(), codes.reindex(pairs["dst"]).to_numpy()),
        ),
        shape=(len(nodes), len(nodes)),
    )
    _, labels = connected_components(graph, directed=False)
    return pd.Series(labels, index=nodes).astype(str).rename("resolvable_cluster")


def evaluate(lake: Lake, truth_dir: Path) -> dict[str, dict[str, float]]:
    """Metrics over all identifier nodes and over CRM accounts alone, against (a) the persons and
    (b) the resolvable part of each person (what the data can connect; see resolvable_clusters),
    the latter also without identifiers several persons share."""
    truth = node_truth(lake, truth_dir)
    mapping = lake.read("identity_map", ["node", "node_type", "customer_id"])
    # in node order: DuckDB's threads return rows in any order, and float sums follow the order
    joined = mapping.merge(truth, on="node", how="inner").sort_values("node", ignore_index=True)
    personal = joined["n_persons"] == 1
    edges = lake.read("identity_edges", ["src", "dst", "edge_type"])
    resolvable = resolvable_clusters(joined[["node", "person_id"]], edges)
    by_resolvable = joined.assign(person_id=joined["node"].map(resolvable))
    return {
        "resolvable_identifiers": cluster_metrics(by_resolvable),
        # the same without identifiers the truth links to several persons: no customer can hold a
        # household's landline or tablet and be right for every member
        "resolvable_personal_identifiers": cluster_metrics(by_resolvable[personal]),
        "all_identifiers_vs_persons": cluster_metrics(joined),
        "crm_accounts": cluster_metrics(joined[joined["node_type"] == "crm_id"]),
    }


def guard_checks(lake: Lake, truth_dir: Path) -> dict[str, int]:
    """Both sides of the over-merge guards, on CRM records against the truth:

    * ``reregistered_persons`` / ``reregistered_whole``: persons with 3 or more CRM records, and how
      many of them came out as exactly one customer;
    * ``landline_households`` / ``landline_households_merged``: households whose members (two or
      more persons) give one phone on their records, and how many had members merged into one
      customer."""
    crm = lake.read("crm_customers", ["crm_id", "phone_e164"])
    links = pd.read_parquet(truth_dir / "record_links.parquet", filters=[("source", "==", "crm")])
    persons = pd.read_parquet(truth_dir / "persons.parquet", columns=["person_id", "household_id"])
    mapping = lake.read("identity_map", ["node", "customer_id"]).set_index("node")["customer_id"]
    crm["person"] = crm["crm_id"].map(links.set_index("record_key")["person_id"])
    crm["customer"] = ("crm_id:" + crm["crm_id"]).map(mapping)
    crm = crm.dropna(subset=["person"])
    crm["household"] = crm["person"].map(persons.set_index("person_id")["household_id"])

    per_person = crm.groupby("person").agg(records=("crm_id", "size"), customers=("customer", "nunique"))
    rereg = per_person[per_person["records"] >= 3]
    phones = crm.dropna(subset=["phone_e164"])
    sharing = phones.groupby(["household", "phone_e164"])["person"].nunique()
    landline = sharing[sharing >= 2].reset_index()[["household", "phone_e164"]]
    rows = phones.merge(landline, on=["household", "phone_e164"])
    # a landline household is merged when one customer holds records of two of its persons
    persons_per_customer = rows.groupby(["household", "phone_e164", "customer"])["person"].nunique()
    merged = persons_per_customer[persons_per_customer > 1].reset_index()[["household", "phone_e164"]]
    return {
        "reregistered_persons": len(rereg),
        "reregistered_whole": int((rereg["customers"] == 1).sum()),
        "landline_households": len(landline),
        "landline_households_merged": len(merged.drop_duplicates()),
    }
