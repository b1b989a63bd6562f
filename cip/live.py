"""What the real-time service leaves for the batch stages: where its files are, and its identity links.

The service (``serving/``) writes; ``cip ingest`` and ``cip identity run`` read. Both sides know
the layout from here, so neither imports the other:

- ``event_log_dir``: closed JSON-lines segments of accepted Segment events (``*.jsonl``; the open
  segment of a running worker ends in ``.jsonl.open`` and is not read until it is closed);
- ``state_path``: a SQLite database; its ``identity_links`` table holds every identifier a live
  event mapped to a customer (``provisional`` ids for unknown identifiers; ``identify``/``alias``
  links from an identifier to a known one), which the next identity run takes as edges.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd

from cip.settings import CoreSettings

#: Suffix of a segment a worker is still appending to (``cip ingest`` skips it).
OPEN_SUFFIX = ".open"
LINK_COLUMNS = ["node", "customer_id", "kind", "linked_node", "message_id", "created_at"]
LINKS_DDL = """CREATE TABLE IF NOT EXISTS identity_links (
    node TEXT PRIMARY KEY,        -- identifier node key, e.g. anonymous_id:abc
    customer_id TEXT NOT NULL,    -- the customer the service resolves it to
    kind TEXT NOT NULL,           -- provisional | identify | alias
    linked_node TEXT,             -- identify/alias: the identifier it was linked to (crm_id:...)
    message_id TEXT,              -- the event that made the link
    created_at TEXT NOT NULL      -- ISO-8601 UTC
)"""


def event_log_dir(settings: CoreSettings) -> Path:
    return settings.live_dir / "events"


def state_path(settings: CoreSettings) -> Path:
    return settings.live_dir / "serving.db"


def closed_segments(settings: CoreSettings) -> list[Path]:
    """The event log's closed segments, oldest first (their names sort by start time)."""
    folder = event_log_dir(settings)
    return sorted(p for p in folder.glob("*.jsonl") if p.is_file()) if folder.is_dir() else []


def read_links(settings: CoreSettings) -> pd.DataFrame:
    """Every identity link the service recorded (empty when it never ran)."""
    path = state_path(settings)
    if not path.is_file():
        return pd.DataFrame(columns=LINK_COLUMNS)
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "identity_links" not in tables:
            return pd.DataFrame(columns=LINK_COLUMNS)
        return pd.read_sql_query(f"SELECT {', '.join(LINK_COLUMNS)} FROM identity_links ORDER BY node", con)
    finally:
        con.close()


def link_edges(settings: CoreSettings) -> pd.DataFrame:
    """The links as identity-graph edges: ``identify``/``alias`` links join their two identifiers;
    a provisional identifier is a node of its own (a self-edge), so it gets a customer id even
    before its events are ingested."""
    links = read_links(settings)
    cols = ["src", "dst", "edge_type", "source", "probability", "observed_at"]
    if links.empty:
        return pd.DataFrame(columns=cols)
    linked = links["linked_node"].notna() & links["kind"].isin(["identify", "alias"])
    observed = pd.to_datetime(links["created_at"], utc=True, format="ISO8601")
    return pd.DataFrame(
        {
            "src": links["node"],
            "dst": links["linked_node"].where(linked, links["node"]),
            "edge_type": links["kind"].where(linked, "node"),
            "source": "serving",
            "probability": 1.0,
            "observed_at": observed,
        }
    )[cols]
