"""`cip identity`: identity graph (deterministic + probabilistic) → stable customer ids.

Reads standardized lake tables and the links the real-time service recorded (``cip.live``), writes ``identity_edges``, ``identity_map`` and appends to
``identity_history``. The Splink model is trained once and reused (``models/splink_crm.json``);
never-link rules come from ``rules/never_link.csv`` (written by ``cip identity split``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from cip.errors import CipError, MissingInputError
from cip.lake import Lake
from cip.live import link_edges
from pipelines.identity import edges as edge_nodes
from pipelines.identity import probabilistic
from pipelines.identity.config import IdentitySettings
from pipelines.identity.graph import resolve

Progress = Callable[[str, int, int], None]
NEVER_LINK_COLUMNS = ["a", "b", "reason", "created_at"]


@dataclass
class IdentityRun:
    run_id: str
    stats: dict
    alarms: pd.DataFrame
    n_probabilistic_pairs: int


def model_path(settings: IdentitySettings) -> Path:
    return settings.models_dir / "splink_crm.json"


def never_link_path(settings: IdentitySettings) -> Path:
    return settings.identity_rules_dir / "never_link.csv"


def read_never_link(settings: IdentitySettings) -> pd.DataFrame:
    path = never_link_path(settings)
    if not path.exists():
        return pd.DataFrame(columns=NEVER_LINK_COLUMNS)
    return pd.read_csv(path, dtype=str)


def add_never_link(settings: IdentitySettings, a: str, b: str, reason: str) -> pd.DataFrame:
    """Record that node ``a`` and node ``b`` must never be in one customer (reversible merge)."""
    for node in (a, b):
        if ":" not in node:
            raise CipError(
                f"'{node}' is not a node key", fix="use <type>:<value>, e.g. crm_id:C0000012 or email:a@b.com"
            )
    rules = read_never_link(settings)
    row = pd.DataFrame([{"a": a, "b": b, "reason": reason, "created_at": datetime.now(UTC).isoformat()}])
    rules = pd.concat([rules, row], ignore_index=True).drop_duplicates(subset=["a", "b"], keep="first")
    path = never_link_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    rules.to_csv(tmp, index=False)
    tmp.replace(path)
    return rules


def match_crm_records(
    settings: IdentitySettings, records: pd.DataFrame, retrain: bool = False
) -> tuple[pd.DataFrame, set[str]]:
    """Splink pairs above the identity threshold for CRM accounts (model trained once, reused), and
    the roles on which the model says a person's records agree (only those may contradict a pair)."""
    if len(records) < 2:
        return pd.DataFrame(columns=["record_id_l", "record_id_r", "match_probability"]), set()
    config = settings.matching
    path = model_path(settings)
    model = probabilistic.load_model(path) if path.exists() and not retrain else None
    if (
        model is None
        or model.get(probabilistic.META_KEY, {}).get("config_fingerprint") != config.fingerprint()
    ):
        # first run, `--retrain`, or the matching settings changed since the model was trained
        model = probabilistic.train(records, config)
        path.parent.mkdir(parents=True, exist_ok=True)
        probabilistic.save_model(model, path)
    pairs = probabilistic.predict(records, model, config, threshold=settings.identity.probabilistic_threshold)
    return pairs, probabilistic.reliable_roles(config, model)


def run(
    settings: IdentitySettings, *, retrain: bool = False, progress: Progress | None = None
) -> IdentityRun:
    lake = Lake(settings.lake_dir)
    tables = set(lake.table_names())
    sources = ("crm_customers", "events", "pos_lines", "email_events", "campaign_exposures")
    if not tables & set(sources):
        raise MissingInputError("no standardized tables in the lake", fix="run `cip ingest` first")
    step = progress or (lambda *_: None)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    con = lake.connect([t for t in sources if t in tables])
    step("deterministic edges", 0, 4)
    det = edge_nodes.deterministic_edges(con, tables)
    live = link_edges(settings)  # identifiers the real-time service linked (identify/alias) or met first
    if len(live):
        det = pd.concat([det, live], ignore_index=True).drop_duplicates(["src", "dst", "edge_type"])
    pairs, reliable = pd.DataFrame(), set()
    if "crm_customers" in tables:
        step("probabilistic matching (Splink)", 1, 4)
        pairs, reliable = match_crm_records(settings, edge_nodes.crm_match_records(con), retrain=retrain)
    # a role the data re-keys within one person (FEBRL's first names) does not contradict a strong pair
    strong_roles = [r for r in settings.identity.strong_match_roles if r in reliable]
    prob = edge_nodes.probabilistic_edges(pairs, pd.Timestamp(datetime.now(UTC)), strong_roles)
    all_edges = pd.concat([det, prob], ignore_index=True) if len(prob) else det
    all_edges["contradicted"] = all_edges.get("contradicted", pd.Series(False, index=all_edges.index))
    all_edges["contradicted"] = all_edges["contradicted"].astype("boolean").fillna(False).astype(bool)
    previous = lake.read("identity_map") if lake.has("identity_map") else None
    step("resolve clusters", 2, 4)
    result = resolve(
        all_edges,
        settings.identity,
        previous_map=previous,
        never_link=read_never_link(settings),
        run_id=run_id,
    )
    step("write tables", 3, 4)
    history = result.history
    if lake.has("identity_history"):
        history = pd.concat([lake.read("identity_history"), history], ignore_index=True)
    lake.write_derived("identity_edges", result.edges)
    lake.write_derived("identity_history", history)
    lake.write_derived("identity_map", result.identity_map)  # last: readers key off the map
    if len(pairs):
        lake.write_derived("identity_match_pairs", pairs)
    step("done", 4, 4)
    return IdentityRun(
        run_id=run_id, stats=result.stats, alarms=result.alarms, n_probabilistic_pairs=len(pairs)
    )
