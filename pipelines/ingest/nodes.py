"""Per-source standardization nodes: validated raw frame in → standardized tables out (pure)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from cip.categories import UNKNOWN_CATEGORY
from pipelines.ingest import standardize as std
from pipelines.ingest.readers import ROW
from pipelines.ingest.validate import Validation


@dataclass(frozen=True)
class Context:
    """What standardization needs beyond the rows themselves."""

    fx: pd.DataFrame
    base_currency: str
    default_country: str


def _ok(frame: pd.DataFrame, v: Validation) -> tuple[pd.DataFrame, Callable[[str], pd.Series]]:
    mask = v.ok.to_numpy()
    rows = frame.loc[mask]

    def parsed(name: str) -> pd.Series:
        return v.parsed[name].loc[mask]

    return rows, parsed


def fx_rates(frame: pd.DataFrame, v: Validation, ctx: Context, **_: object) -> dict[str, pd.DataFrame]:
    rows, parsed = _ok(frame, v)
    out = pd.DataFrame(
        {
            "date": parsed("date").dt.date,
            "currency": std.blank_to_na(rows["currency"]).str.upper(),
            "rate_to_base": parsed("rate_to_base"),
            ROW: rows[ROW],
        }
    )
    return {"fx_rates": out}


def crm_customers(frame: pd.DataFrame, v: Validation, ctx: Context, **_: object) -> dict[str, pd.DataFrame]:
    rows, parsed = _ok(frame, v)
    country = std.blank_to_na(rows["country"]).str.upper()
    phone_raw = std.blank_to_na(rows["phone"])
    phone = std.normalize_phone(phone_raw, country)
    birth_raw = std.blank_to_na(rows["birth_date"])
    birth = std.parse_birth_date(birth_raw, country)
    first = std.normalize_name(rows["first_name"])
    last = std.normalize_name(rows["last_name"])
    out = pd.DataFrame(
        {
            "crm_id": std.blank_to_na(rows["crm_id"]),
            "first_name": first,
            "last_name": last,
            "first_name_key": std.ascii_key(first),
            "last_name_key": std.ascii_key(last),
            "email": parsed("email"),
            "email_raw": std.blank_to_na(rows["email"]),
            "email_invalid": v.flags["invalid_email"].loc[rows.index],
            "phone_e164": phone,
            "phone_raw": phone_raw,
            "phone_invalid": phone_raw.notna() & phone.isna(),
            "birth_date": birth,
            "birth_date_raw": birth_raw,
            "birth_date_invalid": birth_raw.notna() & birth.isna(),
            "street": std.normalize_address(rows["street"]),
            "city": std.normalize_address(rows["city"]),
            "postcode": std.normalize_postcode(rows["postcode"]),
            "country": country,
            "loyalty_id": std.blank_to_na(rows["loyalty_id"]).str.upper(),
            "signup_channel": std.blank_to_na(rows["signup_channel"]),
            "created_at": parsed("created_at"),
            "updated_at": parsed("updated_at"),
            "consent_email": std.parse_flag(rows["consent_email"]),
            "consent_sms": std.parse_flag(rows["consent_sms"]),
            "consent_profiling": std.parse_flag(rows["consent_profiling"]),
            ROW: rows[ROW],
        }
    )
    return {"crm_customers": out}


def pos_transactions(frame: pd.DataFrame, v: Validation, ctx: Context, **_: object) -> dict[str, pd.DataFrame]:
    rows, parsed = _ok(frame, v)
    ts = parsed("transaction_time")
    quantity = parsed("quantity").astype("int64")
    unit_price = parsed("unit_price")
    currency = parsed("currency")
    amount = quantity * unit_price
    category = std.map_category(rows["category"])
    out = pd.DataFrame(
        {
            "transaction_id": std.blank_to_na(rows["transaction_id"]),
            "line_number": parsed("line_number").astype("int64"),
            "store_id": std.blank_to_na(rows["store_id"]),
            "store_country": std.blank_to_na(rows["store_country"]),
            "ts": ts,
            "ts_local": std.blank_to_na(rows["transaction_time"]),
            "store_timezone": std.blank_to_na(rows["store_timezone"]),
            "loyalty_id": std.blank_to_na(rows["loyalty_id"]).str.upper(),
            "product_id": std.blank_to_na(rows["product_id"]),
            "category": category,
            "category_raw": std.blank_to_na(rows["category"]),
            "quantity": quantity,
            "unit_price": unit_price,
            "currency": currency,
            "amount": amount,
            "amount_base": std.to_base_currency(amount, currency, ts, ctx.fx, ctx.base_currency),
            ROW: rows[ROW],
        }
    )
    return {"pos_lines": out}


def events(
    frame: pd.DataFrame, v: Validation, ctx: Context, products: pd.DataFrame | None = None, **_: object
) -> dict[str, pd.DataFrame]:
    rows, parsed = _ok(frame, v)
    ts = parsed("timestamp")
    currency = parsed("currency")
    revenue = parsed("revenue")
    is_order = (rows["event"] == "Order Completed").fillna(False)
    phone_raw = std.blank_to_na(rows["phone"])
    first = std.normalize_name(rows["first_name"])
    last = std.normalize_name(rows["last_name"])
    out = pd.DataFrame(
        {
            "message_id": std.blank_to_na(rows["message_id"]),
            "type": rows["type"],
            "event": std.blank_to_na(rows["event"]),
            "ts": ts,
            "anonymous_id": std.blank_to_na(rows["anonymous_id"]),
            "user_id": std.blank_to_na(rows["user_id"]),
            "previous_id": std.blank_to_na(rows["previous_id"]),
            "device_id": std.blank_to_na(rows["device_id"]),
            "device_type": std.blank_to_na(rows["device_type"]),
            "channel": std.blank_to_na(rows["channel"]).str.lower(),
            "page_name": std.blank_to_na(rows["name"]),
            "page_path": std.blank_to_na(rows["page_path"]),
            "email": parsed("email"),
            "email_raw": std.blank_to_na(rows["email"]),
            "email_invalid": v.flags["invalid_email"].loc[rows.index],
            "phone_e164": std.normalize_phone(phone_raw, ctx.default_country),
            "phone_raw": phone_raw,
            "first_name": first,
            "last_name": last,
            "order_id": std.blank_to_na(rows["order_id"]).where(is_order),
            "revenue": revenue.where(is_order),
            "currency": currency.where(is_order),
            "revenue_base": std.to_base_currency(revenue, currency.fillna(ctx.base_currency), ts, ctx.fx, ctx.base_currency).where(is_order),
            "product_id": std.blank_to_na(rows["product_id"]),
            "category": std.map_category(rows["category"]).where(rows["category"].notna()),
            "price": parsed("price"),
            ROW: rows[ROW],
        }
    )
    tables = {"events": out}
    lines = pd.DataFrame()
    if products is not None and not products.empty:
        orders = out.loc[out["order_id"].notna(), [ROW, "message_id", "order_id", "ts", "user_id", "anonymous_id", "channel", "currency"]]
        lines = products.merge(orders, on=ROW, how="inner")
    if not lines.empty:
        quantity = pd.to_numeric(lines["quantity"], errors="coerce").fillna(1).astype("int64")
        price = std.parse_amount(lines["price"])
        amount = quantity * price
        category = std.map_category(lines["category"])
        tables["order_lines"] = pd.DataFrame(
            {
                "order_id": lines["order_id"].astype("string"),
                "message_id": lines["message_id"].astype("string"),
                "line_number": lines["line_number"].astype("int64"),
                "ts": lines["ts"],
                "user_id": lines["user_id"].astype("string"),
                "anonymous_id": lines["anonymous_id"].astype("string"),
                "channel": lines["channel"].astype("string"),
                "product_id": lines["product_id"].astype("string"),
                "category": category.where(category != UNKNOWN_CATEGORY, UNKNOWN_CATEGORY),
                "category_raw": lines["category"].astype("string"),
                "quantity": quantity,
                "price": price,
                "currency": lines["currency"].astype("string"),
                "amount": amount,
                "amount_base": std.to_base_currency(amount, lines["currency"].astype("string"), lines["ts"], ctx.fx, ctx.base_currency),
                ROW: lines[ROW],
            }
        )
    return tables


def email_events(frame: pd.DataFrame, v: Validation, ctx: Context, **_: object) -> dict[str, pd.DataFrame]:
    rows, parsed = _ok(frame, v)
    out = pd.DataFrame(
        {
            "email": parsed("email"),
            "email_raw": std.blank_to_na(rows["email"]),
            "event_type": rows["event_type"],
            "campaign_id": std.blank_to_na(rows["campaign_id"]),
            "ts": parsed("timestamp"),
            ROW: rows[ROW],
        }
    )
    return {"email_events": out}


def campaign_exposures(frame: pd.DataFrame, v: Validation, ctx: Context, **_: object) -> dict[str, pd.DataFrame]:
    rows, parsed = _ok(frame, v)
    out = pd.DataFrame(
        {
            "exposure_id": std.blank_to_na(rows["exposure_id"]),
            "campaign_id": std.blank_to_na(rows["campaign_id"]),
            "crm_id": std.blank_to_na(rows["crm_id"]),
            "offer": rows["offer"],
            "assignment_probability": parsed("assignment_probability"),
            "exposed_at": parsed("exposed_at"),
            "channel": rows["channel"],
            ROW: rows[ROW],
        }
    )
    return {"campaign_exposures": out}


#: Source name → standardization node.
NODES: dict[str, Callable[..., dict[str, pd.DataFrame]]] = {
    "fx_rates": fx_rates,
    "crm_customers": crm_customers,
    "pos_transactions": pos_transactions,
    "events": events,
    "email_events": email_events,
    "campaign_exposures": campaign_exposures,
}
