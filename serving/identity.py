"""Which customer a live event belongs to: the identity map of the last `cip identity run`, plus
the links live events made since (``identity_links`` in the service's state).

- A ``userId`` is a CRM id (``crm_id:<userId>``), an ``anonymousId`` (or an alias's
  ``previousId``) an ``anonymous_id:`` node, as in the identity graph (``pipelines/identity``).
- A live link wins over the map (it is newer); the map wins over nothing.
- An identifier nobody knows gets a provisional customer id, made the way the identity run names
  a new customer (``id_prefix + sha1(node)[:12]``), so a customer first met live usually keeps its
  id when the next run resolves its events.
- An event carrying both identifiers links the unresolved (or differently resolved, for
  ``identify``/``alias``) one to the other's customer; the link is kept for the next identity run.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cip.lake import Lake
from serving.events import LiveEvent
from serving.state import iso

#: Node types a Segment event can carry.
EVENT_NODE_TYPES = ("crm_id", "anonymous_id")


@dataclass
class Resolution:
    customer_id: str
    provisional: bool
    linked: list[str] = field(default_factory=list)


def provisional_id(node: str, prefix: str) -> str:
    """The id the identity run gives a new customer whose smallest node is ``node``."""
    return prefix + hashlib.sha1(node.encode("utf-8")).hexdigest()[:12]


class IdentityIndex:
    """The identity map's event identifiers and its customers, in memory; reloaded when the
    identity run rewrites the map."""

    def __init__(self, lake_dir: Path, id_prefix: str) -> None:
        self.lake = Lake(lake_dir)
        self.id_prefix = id_prefix
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self.nodes: dict[str, str] = {}
        self.customers: set[str] = set()
        self.reload_if_changed()

    def _file(self) -> Path:
        return self.lake.derived_path("identity_map")

    def reload_if_changed(self) -> bool:
        path = self._file()
        try:
            st = path.stat()
        except FileNotFoundError:
            return False
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        table = pq.read_table(path, columns=["node", "node_type", "customer_id"])
        customers = set(pc.unique(table["customer_id"]).drop_null().to_pylist())
        wanted = table.filter(pc.is_in(table["node_type"], value_set=pa.array(EVENT_NODE_TYPES)))
        nodes = dict(zip(wanted["node"].to_pylist(), wanted["customer_id"].to_pylist(), strict=True))
        with self._lock:
            self.nodes, self.customers, self._stamp = nodes, customers, stamp
        return True

    def nodes_of(self, customer_id: str) -> list[tuple[str, str, object]]:
        """``(node_type, value, first_seen)`` of every identifier of a customer in the map."""
        path = self._file()
        if not path.exists():
            return []
        table = pq.read_table(
            path, columns=["node", "node_type", "first_seen"], filters=[("customer_id", "=", customer_id)]
        )
        return [
            (t, n.split(":", 1)[1] if ":" in n else n, fs)
            for n, t, fs in zip(
                table["node"].to_pylist(),
                table["node_type"].to_pylist(),
                table["first_seen"].to_pylist(),
                strict=True,
            )
        ]

    # --- live resolution ----------------------------------------------------------------------------
    def resolve(self, con: sqlite3.Connection, ev: LiveEvent, now: datetime) -> Resolution:
        """The event's customer; records provisional ids and links in ``con`` (the caller's
        transaction, so concurrent workers agree)."""
        user = f"crm_id:{ev.user_id}" if ev.user_id else None
        anon_id = ev.previous_id if ev.type == "alias" else ev.anonymous_id
        anon = f"anonymous_id:{anon_id}" if anon_id else None

        def lookup(node: str | None) -> str | None:
            if node is None:
                return None
            row = con.execute("SELECT customer_id FROM identity_links WHERE node = ?", (node,)).fetchone()
            return row[0] if row else self.nodes.get(node)

        def link(node: str, customer: str, kind: str, other: str | None) -> None:
            con.execute(
                "INSERT OR REPLACE INTO identity_links (node, customer_id, kind, linked_node, message_id, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (node, customer, kind, other, ev.message_id, iso(now)),
            )

        by_user, by_anon = lookup(user), lookup(anon)
        kind = ev.type if ev.type in ("identify", "alias") else "event"
        linked: list[str] = []
        provisional = False
        if by_user is not None:
            customer = by_user
        elif by_anon is not None:
            customer = by_anon
        else:
            first = user or anon
            assert first is not None  # the contract requires one of them
            customer = provisional_id(first, self.id_prefix)
            link(first, customer, "provisional", None)
            provisional = True
        if user and anon:
            if by_user is not None and by_anon != by_user and (by_anon is None or kind != "event"):
                link(anon, customer, kind, user)  # identify/alias move a known anonymous id too
                linked.append(anon)
            elif by_user is None and by_anon is not None:
                link(user, customer, kind, anon)
                linked.append(user)
            elif by_user is None and by_anon is None:
                link(anon, customer, kind, user)
                linked.append(anon)
        if not provisional:
            row = con.execute(
                "SELECT 1 FROM identity_links WHERE customer_id = ? AND kind = 'provisional' LIMIT 1",
                (customer,),
            ).fetchone()
            provisional = row is not None and customer not in self.customers
        return Resolution(customer, provisional, linked)
