"""Per-source standardization: SQL over the validated table ``v`` (accepted rows only), using
lookup tables built from the Python rules over distinct values. Each node returns
``{lake table: SELECT}``; the caller writes the results.

JSON-lines sources may also have a one-pass plan (:class:`StreamPlan`, run by ``stream.py``):
the same columns, selected from the validation view over every line, with the looked-up
columns finished afterwards in Arrow. Both forms share their column lists below."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb

from cip.contracts import EVENTS
from pipelines.ingest import rules


@dataclass(frozen=True)
class Context:
    base_currency: str
    default_country: str


@dataclass(frozen=True)
class Lookup:
    """A column finished after the one-pass query: the query leaves the trimmed raw value of
    ``source`` in ``column``; ``build`` (a ``rules`` builder, cached under ``cache``) maps each
    distinct value to its ``value`` output. ``kind="email"`` also fills ``<column>_invalid``."""

    column: str
    source: str
    build: Callable
    cache: str
    value: str = "value"
    region: str | None = None  # constant second key of the lookup
    region_column: str | None = None  # or a per-row one (phones: the region of the locale)
    kind: str = "value"


@dataclass(frozen=True)
class Conversion:
    """A base-currency column filled after the one-pass query, for rows with an amount:
    ``amount`` in ``currency`` at the UTC date of ``at`` (the rule of :func:`rules.to_base`)."""

    column: str
    amount: str
    currency: str
    at: str


@dataclass(frozen=True)
class StreamPlan:
    """A JSON-lines source standardized in one pass (see ``stream.py``). ``main`` selects one row
    per line from the validation view ``v`` (every row, with ``_reason``, ``_field``, ``_empty``
    and the items list ``_items``); ``lookups`` finish its columns; each of ``children`` is a
    SELECT over ``items`` (one row per item of the accepted rows: their ``item_columns``, the
    ``item`` and its 1-based ``line_number``) and ``item_category_map``."""

    table: str
    main: str
    lookups: tuple[Lookup, ...] = ()
    children: dict[str, str] = field(default_factory=dict)
    conversions: tuple[Conversion, ...] = ()
    currency_column: str | None = None
    item_columns: tuple[str, ...] = ()


OK = "(SELECT * FROM v WHERE _reason IS NULL)"
_EVENT_FIELDS = [f.name for f in EVENTS.fields]


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
               upper(o.v_loyalty_id) AS loyalty_id,
               nullif(upper(regexp_replace(o.v_national_id, '[^0-9A-Za-z]', '', 'g')), '') AS national_id,
               o.v_signup_channel AS signup_channel,
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


#: The ``events`` table's columns; ``{...}`` are the looked-up ones (joins in the generic path,
#: raw values finished by lookups in the one-pass path).
_EVENT_COLUMNS = """
    o.v_message_id AS message_id, o.v_type AS type, o.v_event AS event, o.p_timestamp AS ts,
    o.v_anonymous_id AS anonymous_id, o.v_user_id AS user_id, o.v_previous_id AS previous_id,
    o.v_device_id AS device_id, o.v_device_type AS device_type, lower(o.v_channel) AS channel, o.v_locale AS locale,
    o.v_name AS page_name, o.v_page_path AS page_path,
    {email} AS email, o.v_email AS email_raw, {email_invalid} AS email_invalid,
    {phone} AS phone_e164, o.v_phone AS phone_raw, {first_name} AS first_name, {last_name} AS last_name,
    CASE WHEN o._is_order THEN o.v_order_id END AS order_id,
    CASE WHEN o._is_order THEN o.p_revenue END AS revenue,
    CASE WHEN o._is_order THEN o.p_currency END AS currency,
    CASE WHEN o._is_order THEN {base} END AS revenue_base,
    o.v_product_id AS product_id, {category} AS category, o.p_price AS price, o._row"""
#: The looked-up columns: (generic path: joined value, one-pass path: raw value the lookups finish).
_EVENT_LOOKED_UP = {
    "email": ("o.p_email", "o.v_email"),
    "email_invalid": ("o.flag_invalid_email", "NULL::BOOLEAN"),
    "phone": ("ph.e164", "o.v_phone"),
    "first_name": ("fn.name", "o.v_first_name"),
    "last_name": ("ln.name", "o.v_last_name"),
    "category": ("c.category", "o.v_category"),
}


def _event_columns(*, one_pass: bool, base: str) -> str:
    return _EVENT_COLUMNS.format(base=base, **{k: v[one_pass] for k, v in _EVENT_LOOKED_UP.items()})


_EVENT_ROWS = "(SELECT *, coalesce(v_event = 'Order Completed', FALSE) AS _is_order, p_timestamp::DATE AS _fx_date FROM {rows}) o"
#: Order rows with their items, the input of :func:`_order_lines`.
_ORDERS = """SELECT o.v_order_id AS order_id, o.v_message_id AS message_id, o.p_timestamp AS ts, o.v_user_id AS user_id,
                    o.v_anonymous_id AS anonymous_id, lower(o.v_channel) AS channel, o.p_currency AS currency,
                    o._products AS _items, o._row
             FROM {rows} o WHERE o.v_event = 'Order Completed'"""


#: The order columns each order line carries (besides its ``item`` and ``line_number``).
ORDER_LINE_PARENT = ("order_id", "message_id", "ts", "user_id", "anonymous_id", "channel", "currency", "_row")


def _unnested(orders: str) -> str:
    """One row per item of each order in ``orders`` (columns as :data:`_ORDERS`): the order's
    columns, ``item`` and its 1-based ``line_number``."""
    return f"SELECT *, unnest(_items) AS item, generate_subscripts(_items, 1) AS line_number FROM ({orders}) WHERE len(_items) > 0"


def _order_lines(items: str, category_map: str) -> str:
    """Order lines from ``items`` (rows as :func:`_unnested` gives them)."""
    base, joins = rules.to_base("l.amount", "l.currency", "l._fx_date", "lr")
    quantity = "coalesce(try_cast(item.quantity AS BIGINT), 1)"
    return f"""
        SELECT l.order_id, l.message_id, l.line_number, l.ts, l.user_id, l.anonymous_id, l.channel, l.product_id,
               coalesce(c.category, 'unknown') AS category, l.category AS category_raw, l.quantity, l.price, l.currency,
               l.amount, {base} AS amount_base, l._row
        FROM (SELECT order_id, message_id, line_number::BIGINT AS line_number, ts, ts::DATE AS _fx_date, user_id,
                     anonymous_id, channel, item.product_id AS product_id, item.category AS category,
                     {quantity} AS quantity, try_cast(item.price AS DOUBLE) AS price, currency,
                     {quantity} * try_cast(item.price AS DOUBLE) AS amount, _row
              FROM ({items})) l
        {joins}
        LEFT JOIN {category_map} c ON c.raw = l.category
        ORDER BY l._row, l.line_number"""


def _phone_region(ctx: Context, row: str = "") -> str:
    """Where an event's phone without a calling code is read: its device locale's region."""
    return rules.locale_region(f"{row}v_locale", ctx.default_country)


def events(con: duckdb.DuckDBPyConnection, ctx: Context) -> dict[str, str]:
    _names(con, ["first_name", "last_name"])
    _categories(
        con,
        """SELECT v_category AS raw FROM v WHERE v_category IS NOT NULL
           UNION SELECT item.category FROM (SELECT unnest(_products) AS item FROM v WHERE len(_products) > 0)""",
    )
    rules.register_lookup(
        con,
        "phone_map",
        f"SELECT v_phone AS raw, {_phone_region(ctx)} AS region FROM v WHERE v_phone IS NOT NULL",
        rules.phone_lookup,
    )
    base, joins = rules.to_base("o.p_revenue", "o.p_currency", "o._fx_date", "r")
    columns = _event_columns(one_pass=False, base=base)
    events_sql = f"""
        SELECT {columns}
        FROM {_EVENT_ROWS.format(rows=OK)}
        {joins}
        LEFT JOIN phone_map ph ON ph.raw = o.v_phone AND ph.region = {_phone_region(ctx, "o.")}
        LEFT JOIN name_map fn ON fn.raw = o.v_first_name
        LEFT JOIN name_map ln ON ln.raw = o.v_last_name
        LEFT JOIN category_map c ON c.raw = o.v_category
        """
    return {
        "events": events_sql,
        "order_lines": _order_lines(_unnested(_ORDERS.format(rows=OK)), "category_map"),
    }


def events_stream(ctx: Context) -> StreamPlan:
    """``events`` and ``order_lines`` in one pass (see ``stream.py``)."""
    columns = _event_columns(one_pass=True, base="NULL::DOUBLE")
    empty = " AND ".join(f"o.v_{name} IS NULL" for name in _EVENT_FIELDS) + " AND o._products IS NULL"
    main = f"""
        SELECT {columns}, o._reason, o._field,
               CASE WHEN o._reason IS NOT NULL THEN {empty} END AS _empty,
               CASE WHEN o._is_order THEN o._products END AS _items,
               CASE WHEN o.v_phone IS NOT NULL THEN {_phone_region(ctx, "o.")} END AS _phone_region
        FROM {_EVENT_ROWS.format(rows="v")}"""
    names = "name_map:name_lookup"
    return StreamPlan(
        table="events",
        main=main,
        lookups=(
            Lookup("email", "email_raw", rules.email_lookup, "email_map", kind="email"),
            Lookup(
                "phone_e164",
                "phone_raw",
                rules.phone_lookup,
                "phone_map:phone_lookup",
                "e164",
                region_column="_phone_region",
            ),
            Lookup("first_name", "first_name", rules.name_lookup, names, "name"),
            Lookup("last_name", "last_name", rules.name_lookup, names, "name"),
            Lookup("category", "category", rules.category_lookup, "category_map:category_lookup", "category"),
        ),
        children={"order_lines": _order_lines("SELECT * FROM items", "item_category_map")},
        item_columns=ORDER_LINE_PARENT,
        conversions=(Conversion("revenue_base", "revenue", "currency", "ts"),),
        currency_column="currency",
    )


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


#: Source name → one-pass plan (JSON-lines sources whose files can take ``stream.py``).
STREAM_NODES: dict[str, Callable[[Context], StreamPlan]] = {"events": events_stream}

#: Source name → standardization node.
NODES: dict[str, Callable[[duckdb.DuckDBPyConnection, Context], dict[str, str]]] = {
    "fx_rates": fx_rates,
    "crm_customers": crm_customers,
    "pos_transactions": pos_transactions,
    "events": events,
    "email_events": email_events,
    "campaign_exposures": campaign_exposures,
}
