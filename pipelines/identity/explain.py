"""Why is this one customer? Nodes, the edges that joined them, and Splink's per-field weights."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from cip.errors import CipError
from cip.lake import Lake
from pipelines.identity import probabilistic
from pipelines.identity.config import IdentitySettings
from pipelines.identity.edges import crm_match_records
from pipelines.identity.graph import explain_path
from pipelines.identity.pipeline import model_path


@dataclass
class Explanation:
    customer_id: str
    nodes: pd.DataFrame
    accepted: pd.DataFrame
    rejected: pd.DataFrame
    match_weights: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    path: pd.DataFrame | None = None


def explain_customer(
    settings: IdentitySettings, customer_id: str, a: str | None = None, b: str | None = None
) -> Explanation:
    lake = Lake(settings.lake_dir)
    mapping = lake.read("identity_map")
    nodes = mapping[mapping["customer_id"] == customer_id].sort_values("node")
    if nodes.empty:
        raise CipError(
            f"customer '{customer_id}' is not in identity_map",
            fix="use a customer_id from the lake tables profiles or identity_map (e.g. DuckDB over data/lake/derived/profiles.parquet)",
        )
    members = set(nodes["node"])
    if bool(a) != bool(b):
        raise CipError("--a and --b go together: a path needs both ends", fix="pass both, or neither")
    for node in (a, b):
        if node and node not in members:
            raise CipError(
                f"'{node}' is not an identifier of {customer_id}",
                fix=f"pass two of the node keys `cip identity explain {customer_id}` lists (type:value, e.g. crm_id:C0000012)",
            )
    edges = lake.read("identity_edges")
    touching = edges[edges["src"].isin(members) | edges["dst"].isin(members)]
    accepted = touching[(touching["status"] == "accepted") & (touching["src"] != touching["dst"])]
    rejected = touching[touching["status"] != "accepted"]
    out = Explanation(customer_id, nodes, accepted.sort_values(["edge_type", "src"]), rejected)
    prob = accepted[accepted["edge_type"] == "probabilistic"]
    if len(prob) and model_path(settings).exists():
        model = probabilistic.load_model(model_path(settings))
        records = crm_match_records(lake.connect(["crm_customers"])).set_index("record_id")
        for src, dst in prob[["src", "dst"]].itertuples(index=False):
            left, right = src.split(":", 1)[1], dst.split(":", 1)[1]
            out.match_weights[(src, dst)] = probabilistic.explain_pair(
                model,
                {"record_id": left, **records.loc[left].to_dict()},
                {"record_id": right, **records.loc[right].to_dict()},
                settings.matching,
            )
    if a and b:
        path = explain_path(edges, a, b)
        out.path = pd.DataFrame(path) if not isinstance(path, pd.DataFrame) else path
    return out
