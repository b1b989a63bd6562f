"""Per-source standardization: SQL over the validated table ``v`` (accepted rows only), using
lookup tables built from the Python rules over distinct values. Each node returns
``{lake table: SELECT}``; the caller writes the results."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

from pipelines.ingest import rules


@dataclass(frozen=True)
class Context:
    base_currency: str
    default_country: str


OK = "(SELECT * FROM v WHERE _reason IS NULL)"


def _names(con: duckdb.DuckDBPyConnection, cols: list[str]) -> None:
    union = " UNION ".join(f"SELECT v_{c} AS raw FROM v WHERE v_{c} IS NOT NULL" for c in cols)
    rules.register_lookup(con, "name_map", union, rules.name_lookup)


def _categories(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    rules.register_lookup(con, "category_map", sql, rules.category_lookup)


def fx_rates(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, str]:
    return {
        "fx_rates": f"SELECT p_date AS date, upper(v_currency) AS currency, p_rate_to_base AS rate_to_base, _row FROM {OK}"
    }


def crm_customers(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, str]:
    _names(con, ["first_name", "last_name"])
    rules.register_lookup(
        con,
        "phone_map",
        "SELECT v_phone AS raw, upper(v_country) AS region FROM v WHERE v_phone IS NOT NULL",
        rules.phone_lookup,
    )
    rules.register_lookup(
        con,
        "birth_map",
        "SELECT v_birth_date AS raw, upper(v_country) AS country FROM v WHERE v_birth_date IS NOT NULL",
        rules.birth_date_lookup,
    )
    rules.register_lookup(
        con, "street_map", "SELECT v_street AS raw FROM v UNION SELECT v_city FROM v", rules.address_lookup
    )
    rules.register_lookup(con, "postcode_map", "SELECT v_postcode AS raw FROM v", rules.postcode_lookup)
    rules.register_lookup(
        con,
        "flag_map",
        "SELECT v_consent_email AS raw FROM v UNION SELECT v_consent_sms FROM v UNION SELECT v_consent_profiling FROM v",
        rules.flag_lookup,
    )
    return {
        "crm_customers": f"""
        SELECT o.v_crm_id AS crm_id, fn.name AS first_name, ln.name AS last_name,
               fn.name_key AS first_name_key, ln.name_key AS last_name_key,
               o.p_email AS email, o.v_email AS email_raw, o.flag_invalid_email AS email_invalid,
               ph.e164 AS phone_e164, o.v_phone AS phone_raw, (o.v_phone IS NOT NULL AND ph.e164 IS NULL) AS phone_invalid,
               bd.value AS birth_date, o.v_birth_date AS birth_date_raw,
               (o.v_birth_date IS NOT NULL AND bd.value IS NULL) AS birth_date_invalid,
               st.value AS street, ct.value AS city, pc.value AS postcode, upper(o.v_country) AS country,
               upper(o.v_loyalty_id) AS loyalty_id, o.v_signup_channel AS signup_channel,
               o.p_created_at AS created_at, o.p_updated_at AS updated_at,
               ce.value::BOOLEAN AS consent_email, cs.value::BOOLEAN AS consent_sms, cp.value::BOOLEAN AS consent_profiling,
               o._row
        FROM {OK} o
        LEFT JOIN name_map fn ON fn.raw = o.v_first_name
        LEFT JOIN name_map ln ON ln.raw = o.v_last_name
        LEFT JOIN phone_map ph ON ph.raw = o.v_phone AND ph.region = upper(o.v_country)
        LEFT JOIN birth_map bd ON bd.raw = o.v_birth_date AND bd.country = upper(o.v_country)
        LEFT JOIN street_map st ON st.raw = o.v_street
        LEFT JOIN street_map ct ON ct.raw = o.v_city
        LEFT JOIN postcode_map pc ON pc.raw = o.v_postcode
        LEFT JOIN flag_map ce ON ce.raw = o.v_consent_email
        LEFT JOIN flag_map cs ON cs.raw = o.v_consent_sms
        LEFT JOIN flag_map cp ON cp.raw = o.v_consent_profiling
        """
    }


def pos_transactions(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, str]:
    _categories(con, "SELECT v_category AS raw FROM v WHERE v_category IS NOT NULL")
    amount = "p_quantity * p_unit_price"
    base, joins = rules.to_base("o.amount", "o.currency", "o._fx_date", "r")
    return {
        "pos_lines": f"""
        SELECT o.v_transaction_id AS transaction_id, o.p_line_number::BIGINT AS line_number, o.v_store_id AS store_id,
               o.v_store_country AS store_country, o.p_transaction_time AS ts, o.v_transaction_time AS ts_local,
               o.v_store_timezone AS store_timezone, upper(o.v_loyalty_id) AS loyalty_id, o.v_product_id AS product_id,
               coalesce(c.category, 'unknown') AS category, o.v_category AS category_raw,
               o.p_quantity::BIGINT AS quantity, o.p_unit_price AS unit_price, o.currency, o.amount,
               {base} AS amount_base, o._row
        FROM (SELECT *, {amount} AS amount, p_currency AS currency, p_transaction_time::DATE AS _fx_date FROM {OK}) o
        {joins}
        LEFT JOIN category_map c ON c.raw = o.v_category
        """
    }


def events(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, str]:
    _names(con, ["first_name", "last_name"])
    _categories(
        con,
        "SELECT v_category AS raw FROM v WHERE v_category IS NOT NULL UNION SELECT category FROM products",
    )
    rules.register_lookup(
        con,
        "phone_map",
        f"SELECT v_phone AS raw, '{ctx.default_country}' AS region FROM v WHERE v_phone IS NOT NULL",
        rules.phone_lookup,
    )
    base, joins = rules.to_base("o.p_revenue", "o.p_currency", "o._fx_date", "r")
    events_sql = f"""
        SELECT o.v_message_id AS message_id, o.v_type AS type, o.v_event AS event, o.p_timestamp AS ts,
               o.v_anonymous_id AS anonymous_id, o.v_user_id AS user_id, o.v_previous_id AS previous_id,
               o.v_device_id AS device_id, o.v_device_type AS device_type, lower(o.v_channel) AS channel,
               o.v_name AS page_name, o.v_page_path AS page_path,
               o.p_email AS email, o.v_email AS email_raw, o.flag_invalid_email AS email_invalid,
               ph.e164 AS phone_e164, o.v_phone AS phone_raw, fn.name AS first_name, ln.name AS last_name,
               CASE WHEN o._is_order THEN o.v_order_id END AS order_id,
               CASE WHEN o._is_order THEN o.p_revenue END AS revenue,
               CASE WHEN o._is_order THEN o.p_currency END AS currency,
               CASE WHEN o._is_order THEN {base} END AS revenue_base,
               o.v_product_id AS product_id, c.category AS category, o.p_price AS price, o._row
        FROM (SELECT *, coalesce(v_event = 'Order Completed', FALSE) AS _is_order, p_timestamp::DATE AS _fx_date FROM {OK}) o
        {joins}
        LEFT JOIN phone_map ph ON ph.raw = o.v_phone
        LEFT JOIN name_map fn ON fn.raw = o.v_first_name
        LEFT JOIN name_map ln ON ln.raw = o.v_last_name
        LEFT JOIN category_map c ON c.raw = o.v_category
        """
    lbase, ljoins = rules.to_base("l.amount", "l.currency", "l._fx_date", "lr")
    lines_sql = f"""
        SELECT l.order_id, l.message_id, l.line_number, l.ts, l.user_id, l.anonymous_id, l.channel, l.product_id,
               coalesce(c.category, 'unknown') AS category, l.category AS category_raw, l.quantity, l.price, l.currency,
               l.amount, {lbase} AS amount_base, l._row
        FROM (SELECT o.v_order_id AS order_id, o.v_message_id AS message_id, p.line_number::BIGINT AS line_number,
                     o.p_timestamp AS ts, o.p_timestamp::DATE AS _fx_date, o.v_user_id AS user_id,
                     o.v_anonymous_id AS anonymous_id, lower(o.v_channel) AS channel, p.product_id, p.category,
                     coalesce(try_cast(p.quantity AS BIGINT), 1) AS quantity, try_cast(p.price AS DOUBLE) AS price,
                     o.p_currency AS currency, coalesce(try_cast(p.quantity AS BIGINT), 1) * try_cast(p.price AS DOUBLE) AS amount,
                     o._row
              FROM products p JOIN {OK} o ON o._row = p._row
              WHERE o.v_event = 'Order Completed') l
        {ljoins}
        LEFT JOIN category_map c ON c.raw = l.category
        """
    return {"events": events_sql, "order_lines": lines_sql}


def email_events(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, str]:
    return {
        "email_events": f"""SELECT p_email AS email, v_email AS email_raw, v_event_type AS event_type,
                                   v_campaign_id AS campaign_id, p_timestamp AS ts, _row FROM {OK}"""
    }


def campaign_exposures(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, str]:
    return {
        "campaign_exposures": f"""SELECT v_exposure_id AS exposure_id, v_campaign_id AS campaign_id, v_crm_id AS crm_id,
                                         v_offer AS offer, p_assignment_probability AS assignment_probability,
                                         p_exposed_at AS exposed_at, v_channel AS channel, _row FROM {OK}"""
    }


#: Source name → standardization node.
NODES: dict[str, Callable[[duckdb.DuckDBPyConnection, Context], dict[str, str]]] = {
    "fx_rates": fx_rates,
    "crm_customers": crm_customers,
    "pos_transactions": pos_transactions,
    "events": events,
    "email_events": email_events,
    "campaign_exposures": campaign_exposures,
}
