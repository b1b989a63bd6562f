"""Raw source tables: arrow tables of the clean rows plus the SQL that formats them as in docs/sources.md.

Each ``*_sql`` returns a query over registered arrow tables whose columns are exactly the documented
columns (all text) plus ``ord`` (row position), so planted rows can be interleaved by ``ord``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from cip.contracts import CAMPAIGN_EXPOSURES, CRM_CUSTOMERS, EMAIL_EVENTS, POS_TRANSACTIONS
from pipelines.generate.behaviour import SPELLINGS
from pipelines.generate.campaigns import EMAIL_TYPES, EXPOSURE_CHANNELS
from pipelines.generate.config import CHANNELS, CURRENCIES, OFFERS
from pipelines.generate.writers import sql_list, store_columns

#: Column order of each raw file: read from the source contracts (declared once, in cip/contracts.py).
#: A retailer's CRM rarely holds a national id: the generated export leaves that optional column out.
CRM_COLUMNS = tuple(f.name for f in CRM_CUSTOMERS.fields if f.name != "national_id")
POS_COLUMNS = tuple(f.name for f in POS_TRANSACTIONS.fields)
EMAIL_COLUMNS = tuple(f.name for f in EMAIL_EVENTS.fields)
EXPOSURE_COLUMNS = tuple(f.name for f in CAMPAIGN_EXPOSURES.fields)


def arrow_table(cols: dict[str, np.ndarray]) -> pa.Table:
    """Arrow table from numpy columns (object arrays become nullable strings)."""
    out = {}
    for k, v in cols.items():
        out[k] = pa.array(v, type=pa.string()) if v.dtype == object else pa.array(v)
    return pa.table(out)


def crm_sql() -> str:
    ch = sql_list(CHANNELS)
    return f"""
    SELECT 'C' || crm_num AS crm_id, first_name, last_name, email, phone, birth_date, street, city, postcode,
           country, CASE WHEN loyalty_num > 0 THEN 'L' || loyalty_num END AS loyalty_id,
           {ch}[signup_channel + 1] AS signup_channel, isosec(created_ms, created_off) AS created_at,
           isosec(updated_ms, updated_off) AS updated_at, consent_email, consent_sms, consent_profiling,
           CAST(rid AS DOUBLE) AS ord
    FROM crm_src"""


def pos_sql() -> str:
    st = store_columns()
    return f"""
    SELECT 'T' || txn AS transaction_id, CAST(line AS VARCHAR) AS line_number, {st["id"]}[store + 1] AS store_id,
           {st["country"]}[store + 1] AS store_country, {st["tz"]}[store + 1] AS store_timezone,
           strftime(epoch_ms(local_ms), '%Y-%m-%d %H:%M:%S') AS transaction_time,
           CASE WHEN loyalty_num > 0 THEN 'L' || loyalty_num END AS loyalty_id,
           printf('SKU%05d', product) AS product_id, {sql_list(SPELLINGS)}[spelling + 1] AS category,
           CAST(qty AS VARCHAR) AS quantity, printf('%.2f', unit_price) AS unit_price,
           {sql_list(CURRENCIES)}[currency + 1] AS currency, CAST(rid AS DOUBLE) AS ord
    FROM pos_src"""


def email_sql() -> str:
    return f"""
    SELECT email, {sql_list(EMAIL_TYPES)}[etype + 1] AS event_type, printf('K%04d', campaign + 1) AS campaign_id,
           utcsec(ts) AS timestamp, CAST(rid AS DOUBLE) AS ord
    FROM email_src"""


def exposure_sql() -> str:
    return f"""
    SELECT 'E' || exp_num AS exposure_id, printf('K%04d', campaign + 1) AS campaign_id, 'C' || crm_num AS crm_id,
           {sql_list(OFFERS)}[offer + 1] AS offer, CAST(prob AS VARCHAR) AS assignment_probability,
           utcsec(ts) AS exposed_at, {sql_list(EXPOSURE_CHANNELS)}[channel + 1] AS channel, CAST(rid AS DOUBLE) AS ord
    FROM exposure_src"""
