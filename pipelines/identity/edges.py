"""Identity edges from standardized lake tables (DuckDB SQL; distinct edges, earliest sighting).

Node keys are ``<type>:<value>`` with types crm_id, email, phone, loyalty_id, anonymous_id and
device_id. Segment ``userId`` values are CRM ids of web/app accounts, so they share the
``crm_id`` namespace. A record that carries one identifier only still yields a node (self-edge).
"""

from __future__ import annotations

import duckdb
import pandas as pd

EDGE_COLUMNS = ["src", "dst", "edge_type", "source", "probability", "observed_at"]

_CRM = """
WITH c AS (SELECT 'crm_id:' || crm_id AS crm, email, phone_e164, loyalty_id, updated_at FROM crm_customers)
SELECT crm AS src, 'email:' || email AS dst, 'crm_record' AS edge_type, 'crm_customers' AS source, updated_at AS observed_at
  FROM c WHERE email IS NOT NULL
UNION ALL SELECT crm, 'phone:' || phone_e164, 'crm_record', 'crm_customers', updated_at FROM c WHERE phone_e164 IS NOT NULL
UNION ALL SELECT crm, 'loyalty_id:' || loyalty_id, 'crm_record', 'crm_customers', updated_at FROM c WHERE loyalty_id IS NOT NULL
UNION ALL SELECT crm, crm, 'node', 'crm_customers', updated_at FROM c
"""

_EVENTS = """
SELECT 'crm_id:' || user_id AS src, 'anonymous_id:' || anonymous_id AS dst,
       CASE WHEN type = 'identify' THEN 'identify' ELSE 'event' END AS edge_type, 'events' AS source, ts AS observed_at
  FROM events WHERE user_id IS NOT NULL AND anonymous_id IS NOT NULL AND type <> 'alias'
UNION ALL SELECT 'anonymous_id:' || previous_id, 'crm_id:' || user_id, 'alias', 'events', ts
  FROM events WHERE type = 'alias' AND previous_id IS NOT NULL AND user_id IS NOT NULL
UNION ALL SELECT 'crm_id:' || user_id, 'email:' || email, 'identify', 'events', ts
  FROM events WHERE type = 'identify' AND user_id IS NOT NULL AND email IS NOT NULL
UNION ALL SELECT 'crm_id:' || user_id, 'phone:' || phone_e164, 'identify', 'events', ts
  FROM events WHERE type = 'identify' AND user_id IS NOT NULL AND phone_e164 IS NOT NULL
UNION ALL SELECT 'device_id:' || device_id, 'anonymous_id:' || anonymous_id, 'device', 'events', ts
  FROM events WHERE device_id IS NOT NULL AND anonymous_id IS NOT NULL
UNION ALL SELECT 'anonymous_id:' || anonymous_id, 'anonymous_id:' || anonymous_id, 'node', 'events', ts
  FROM events WHERE anonymous_id IS NOT NULL
UNION ALL SELECT 'crm_id:' || user_id, 'crm_id:' || user_id, 'node', 'events', ts
  FROM events WHERE user_id IS NOT NULL
"""

_SINGLES = {
    "pos_lines": "SELECT 'loyalty_id:' || loyalty_id AS src, 'loyalty_id:' || loyalty_id AS dst, 'node' AS edge_type, "
    "'pos_lines' AS source, ts AS observed_at FROM pos_lines WHERE loyalty_id IS NOT NULL",
    "email_events": "SELECT 'email:' || email, 'email:' || email, 'node', 'email_events', ts FROM email_events "
    "WHERE email IS NOT NULL",
    "campaign_exposures": "SELECT 'crm_id:' || crm_id, 'crm_id:' || crm_id, 'node', 'campaign_exposures', exposed_at "
    "FROM campaign_exposures WHERE crm_id IS NOT NULL",
}


def deterministic_edges(con: duckdb.DuckDBPyConnection, tables: set[str]) -> pd.DataFrame:
    """Distinct deterministic edges with the earliest time each was seen.

    ``con`` has one view per lake table (``Lake.connect()``); ``tables`` lists those present.
    """
    parts = []
    if "crm_customers" in tables:
        parts.append(_CRM)
    if "events" in tables:
        parts.append(_EVENTS)
    parts += [sql for name, sql in _SINGLES.items() if name in tables]
    if not parts:
        return pd.DataFrame(columns=EDGE_COLUMNS)
    union = "\nUNION ALL\n".join(f"SELECT * FROM ({p})" for p in parts)
    edges = con.sql(
        f"""SELECT src, dst, edge_type, min(source) AS source, 1.0 AS probability, min(observed_at) AS observed_at
            FROM ({union}) GROUP BY src, dst, edge_type ORDER BY src, dst, edge_type"""
    ).df()
    return edges[EDGE_COLUMNS]


def crm_match_records(
    con: duckdb.DuckDBPyConnection, shared_above: int = 3, shared_ids_above: int = 10
) -> pd.DataFrame:
    """CRM accounts renamed to the matcher's roles (ASCII-folded, lower-case), plus the phone, a
    canonical e-mail key (``+tags`` dropped; Gmail dots dropped, as Gmail ignores them) and the
    national id. Phones and e-mail keys found on more than ``shared_above`` accounts (store phones,
    ``test@``) and national ids on more than ``shared_ids_above`` (``000000000``: one person's own id
    sits on each of their re-registrations) are blanked."""
    columns = {row[0] for row in con.sql("DESCRIBE crm_customers").fetchall()}
    national_id = "national_id" if "national_id" in columns else "NULL::VARCHAR"  # lakes before the field
    records = con.sql(
        rf"""SELECT crm_id AS record_id,
                  first_name_key AS first_name,
                  last_name_key AS last_name,
                  strftime(birth_date, '%Y-%m-%d') AS birth_date,
                  nullif(regexp_replace(lower(strip_accents(street)), '[^a-z0-9 ]', '', 'g'), '') AS street,
                  nullif(lower(strip_accents(city)), '') AS city,
                  replace(upper(postcode), ' ', '') AS postcode,
                  phone_e164 AS phone,
                  CASE WHEN email IS NOT NULL THEN
                    CASE WHEN split_part(email, '@', 2) IN ('gmail.com', 'googlemail.com')
                         THEN replace(regexp_replace(split_part(email, '@', 1), '\+.*$', ''), '.', '') || '@gmail.com'
                         ELSE regexp_replace(split_part(email, '@', 1), '\+.*$', '') || '@' || split_part(email, '@', 2)
                    END END AS email_key,
                  {national_id} AS national_id
           FROM crm_customers ORDER BY crm_id"""
    ).df()
    limits = {"phone": shared_above, "email_key": shared_above, "national_id": shared_ids_above}
    for col, limit in limits.items():
        counts = records[col].map(records[col].value_counts())
        records.loc[counts > limit, col] = None
    return records


def probabilistic_edges(
    pairs: pd.DataFrame, observed_at: pd.Timestamp, strong_roles: list[str] | tuple[str, ...] = ()
) -> pd.DataFrame:
    """Matched CRM record pairs → ``probabilistic`` edges carrying their match probability, and
    ``contradicted``: one of ``strong_roles`` speaks against the match (its match weight is
    negative: the values differ beyond a typo) and no personal key agrees (``key_agrees``), so the
    resolver does not take it as strong evidence."""
    if pairs.empty:
        return pd.DataFrame(columns=[*EDGE_COLUMNS, "contradicted"])
    contradicted = pd.Series(False, index=pairs.index)
    for role in strong_roles:
        if f"mw_{role}" in pairs:
            contradicted |= pairs[f"mw_{role}"].fillna(0.0) < 0
    if "key_agrees" in pairs:  # an agreeing national id outweighs a re-keyed name or birth date
        contradicted &= ~pairs["key_agrees"].fillna(False).astype(bool)
    return pd.DataFrame(
        {
            "src": "crm_id:" + pairs["record_id_l"].astype(str),
            "dst": "crm_id:" + pairs["record_id_r"].astype(str),
            "edge_type": "probabilistic",
            "source": "splink",
            "probability": pairs["match_probability"].astype(float),
            "observed_at": observed_at,
            "contradicted": contradicted.to_numpy(dtype=bool),
        }
    )[[*EDGE_COLUMNS, "contradicted"]]
