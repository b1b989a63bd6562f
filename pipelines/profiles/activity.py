"""Resolved activity tables: every order, event, e-mail event and exposure keyed by customer_id.

No PII leaves this module: the only key is ``customer_id`` (see docs/tables.md).
"""

from __future__ import annotations

import duckdb

#: How an event is attached to a customer: the logged-in account first, else the device.
_EVENT_NODE = "CASE WHEN {a}.user_id IS NOT NULL THEN 'crm_id:' || {a}.user_id ELSE 'anonymous_id:' || {a}.anonymous_id END"

ACTIVITY_SQL: dict[str, tuple[tuple[str, ...], str]] = {
    # name: (lake tables needed, SELECT)
    "customer_order_lines": (
        ("order_lines", "pos_lines"),
        f"""
        SELECT l.order_id, m.customer_id, l.ts, l.channel, l.category, l.quantity, l.amount_base
        FROM order_lines l JOIN identity_map m ON m.node = {_EVENT_NODE.format(a="l")}
        UNION ALL
        SELECT p.transaction_id AS order_id, m.customer_id, p.ts, 'store' AS channel, p.category,
               p.quantity, p.amount_base
        FROM pos_lines p JOIN identity_map m ON m.node = 'loyalty_id:' || p.loyalty_id
        """,
    ),
    "customer_orders": (
        ("events", "pos_lines"),
        f"""
        SELECT e.order_id, m.customer_id, e.ts, e.channel, e.revenue_base AS amount_base,
               coalesce(l.n_items, 0) AS n_items, 'events' AS source
        FROM events e JOIN identity_map m ON m.node = {_EVENT_NODE.format(a="e")}
        LEFT JOIN (SELECT message_id, sum(quantity) AS n_items FROM order_lines GROUP BY ALL) l USING (message_id)
        WHERE e.event = 'Order Completed'
        UNION ALL
        SELECT p.transaction_id AS order_id, m.customer_id, min(p.ts) AS ts, 'store' AS channel,
               sum(p.amount_base) AS amount_base, sum(p.quantity) AS n_items, 'pos' AS source
        FROM pos_lines p JOIN identity_map m ON m.node = 'loyalty_id:' || p.loyalty_id
        GROUP BY p.transaction_id, m.customer_id
        """,
    ),
    "customer_events": (
        ("events",),
        f"""
        SELECT m.customer_id, e.ts, CASE WHEN e.type = 'track' THEN e.event ELSE e.type END AS event,
               e.channel, e.category
        FROM events e JOIN identity_map m ON m.node = {_EVENT_NODE.format(a="e")}
        """,
    ),
    "customer_email_events": (
        ("email_events",),
        """
        SELECT m.customer_id, x.ts, x.event_type, x.campaign_id
        FROM email_events x JOIN identity_map m ON m.node = 'email:' || x.email
        """,
    ),
    "customer_exposures": (
        ("campaign_exposures",),
        """
        SELECT m.customer_id, x.exposure_id, x.campaign_id, x.offer, x.assignment_probability, x.exposed_at, x.channel
        FROM campaign_exposures x JOIN identity_map m ON m.node = 'crm_id:' || x.crm_id
        """,
    ),
}

#: Rows that cannot be attached to anyone (e.g. store sales without a loyalty card).
UNATTRIBUTED_SQL = {
    "pos_transactions_without_customer": """
        SELECT count(DISTINCT p.transaction_id) FROM pos_lines p
        LEFT JOIN identity_map m ON m.node = 'loyalty_id:' || p.loyalty_id WHERE m.customer_id IS NULL""",
}


def activity_sql(name: str, tables: set[str]) -> str | None:
    """The SELECT for one resolved table, with parts whose inputs are missing removed."""
    needed, sql = ACTIVITY_SQL[name]
    parts = [p for p in sql.split("UNION ALL")]
    keep = [p for p in parts if all(t in tables for t in _tables_in(p))]
    return "UNION ALL".join(keep) if keep else None


def _tables_in(sql: str) -> list[str]:
    known = ("order_lines", "pos_lines", "events", "email_events", "campaign_exposures")
    return [t for t in known if f"FROM {t} " in sql or f"JOIN {t} " in sql or f"FROM {t}\n" in sql]


def build_activity(con: duckdb.DuckDBPyConnection, tables: set[str]) -> dict[str, duckdb.DuckDBPyRelation]:
    """Relations for every resolved table whose inputs exist."""
    out = {}
    for name in ACTIVITY_SQL:
        sql = activity_sql(name, tables)
        if sql:
            out[name] = con.sql(f"SELECT * FROM ({sql}) ORDER BY customer_id")
    return out
