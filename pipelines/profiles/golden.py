"""Golden records: one row per customer, each field chosen by its survivorship rule (DuckDB SQL)."""

from __future__ import annotations

import duckdb
import pandas as pd

from cip.sql import literal_list, quote_ident
from pipelines.profiles.config import ProfileConfig, SurvivorshipRule

#: Candidate values: every CRM account and every identify call, attached to its customer.
CANDIDATES_SQL = """
CREATE OR REPLACE TEMP TABLE candidates AS
{crm_part}
{events_part}
"""

CRM_PART = """
SELECT m.customer_id, 'crm:' || c.signup_channel AS source, c.updated_at AS observed_at,
       c.first_name, c.last_name, c.email, c.phone_e164, c.birth_date, c.street, c.city, c.postcode,
       c.country, c.loyalty_id, c.consent_email, c.consent_sms, c.consent_profiling
FROM crm_customers c JOIN identity_map m ON m.node = 'crm_id:' || c.crm_id
"""

#: A lake without CRM records (e.g. store sales only): no candidates from CRM, same columns.
NO_CRM_PART = """
SELECT NULL::VARCHAR AS customer_id, NULL::VARCHAR AS source, NULL::TIMESTAMPTZ AS observed_at,
       NULL::VARCHAR AS first_name, NULL::VARCHAR AS last_name, NULL::VARCHAR AS email,
       NULL::VARCHAR AS phone_e164, NULL::DATE AS birth_date, NULL::VARCHAR AS street,
       NULL::VARCHAR AS city, NULL::VARCHAR AS postcode, NULL::VARCHAR AS country,
       NULL::VARCHAR AS loyalty_id, NULL::BOOLEAN AS consent_email, NULL::BOOLEAN AS consent_sms,
       NULL::BOOLEAN AS consent_profiling
WHERE false
"""

EVENTS_PART = """
UNION ALL
SELECT m.customer_id, 'events:identify', e.ts, e.first_name, e.last_name, e.email, e.phone_e164,
       NULL::DATE, NULL, NULL, NULL, NULL, NULL, NULL::BOOLEAN, NULL::BOOLEAN, NULL::BOOLEAN
FROM events e JOIN identity_map m
  ON m.node = CASE WHEN e.user_id IS NOT NULL THEN 'crm_id:' || e.user_id ELSE 'anonymous_id:' || e.anonymous_id END
WHERE e.type = 'identify'
"""


def _order_by(rule: SurvivorshipRule) -> str:
    tie = ", ".join(quote_ident(f) for f in rule.fields)
    if rule.strategy == "most_recent":
        return f"observed_at DESC, source, {tie}"
    if rule.strategy == "most_frequent":
        return f"freq DESC, observed_at DESC, {tie}"
    if rule.strategy == "non_null_first":
        return f"observed_at ASC, source, {tie}"
    listing = "[" + literal_list(rule.priority) + "]"
    return f"coalesce(nullif(list_position({listing}, source), 0), 999), observed_at DESC, {tie}"


def survivor_sql(rule: SurvivorshipRule, alias: str) -> str:
    """The winning candidate per customer for one rule, with the source it came from."""
    cols = ", ".join(f'"{f}"' for f in rule.fields)
    return f"""
    SELECT customer_id, {cols}, source AS "{alias}_source", observed_at AS "{alias}_observed_at" FROM (
      SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY {_order_by(rule)}) AS rn
      FROM (SELECT customer_id, {cols}, source, observed_at,
                   count(*) OVER (PARTITION BY customer_id, {cols}) AS freq
            FROM candidates WHERE "{rule.fields[0]}" IS NOT NULL))
    WHERE rn = 1"""


def build_profiles(
    con: duckdb.DuckDBPyConnection, config: ProfileConfig, has_events: bool, has_crm: bool = True
) -> pd.DataFrame:
    """Golden record per customer. ``con`` has views ``identity_map``, ``crm_customers`` (if
    ``has_crm``) and ``events`` (if ``has_events``)."""
    con.execute(
        CANDIDATES_SQL.format(
            crm_part=CRM_PART if has_crm else NO_CRM_PART, events_part=EVENTS_PART if has_events else ""
        )
    )
    selects, joins = [], []
    for i, rule in enumerate(config.survivorship):
        alias = (
            rule.fields[0] if len(rule.fields) == 1 else "address" if "street" in rule.fields else f"group{i}"
        )
        cols = ", ".join(f'r{i}."{f}"' for f in rule.fields)
        selects.append(f'{cols}, r{i}."{alias}_source"')
        joins.append(f"LEFT JOIN ({survivor_sql(rule, alias)}) r{i} USING (customer_id)")
    base = """SELECT customer_id, min(first_seen) AS first_seen, count(*) AS n_identifiers,
                     count(*) FILTER (WHERE node_type = 'crm_id') AS n_crm_ids,
                     count(*) FILTER (WHERE node_type = 'anonymous_id') AS n_anonymous_ids,
                     count(*) FILTER (WHERE node_type = 'email') AS n_emails
              FROM identity_map GROUP BY customer_id"""
    sql = f"SELECT b.*, {', '.join(selects)} FROM ({base}) b {' '.join(joins)} ORDER BY customer_id"
    return con.sql(sql).df()
