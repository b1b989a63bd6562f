"""Raw source writers: turn the simulated world into the files of docs/sources.md (plus truth links).

Each ``write_*`` function formats one source with DuckDB from arrow tables, interleaves the planted
bad rows and returns the truth links of its clean records as (source, keys, person numbers).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.generate import planted as plant
from pipelines.generate.accounts import KIND_WEB, Accounts
from pipelines.generate.behaviour import (
    EV_ALIAS,
    EV_IDENTIFY,
    EV_ORDER,
    Devices,
    Events,
    Lines,
    Orders,
    PersonAccounts,
    Sessions,
)
from pipelines.generate.campaigns import CampaignLog
from pipelines.generate.clock import OffsetTable, local_ms
from pipelines.generate.config import (
    COUNTRY_CURRENCY_IDX,
    CURRENCIES,
    DAY_MS,
    DEVICE_LOCALE_SECOND_SHARE,
    DEVICE_LOCALES,
    DEVICE_NO_LOCALE_SHARE,
    Calendar,
    stage_rng,
)
from pipelines.generate.ids import iso_timestamps, prefixed_ids, uuid_strings
from pipelines.generate.people import Persons
from pipelines.generate.sources import (
    CRM_COLUMNS,
    EMAIL_COLUMNS,
    EXPOSURE_COLUMNS,
    POS_COLUMNS,
    arrow_table,
    crm_sql,
    email_sql,
    exposure_sql,
    pos_sql,
)
from pipelines.generate.writers import (
    device_json_sql,
    month_bounds,
    products_json_sql,
    write_csv,
    write_events,
)

Links = tuple[str, pa.Array | Callable[[int, int], pa.Array], np.ndarray, np.ndarray | None]


def salt(seed: int, name: str) -> int:
    """Per-seed salt of one id namespace."""
    return zlib.crc32(f"{seed}:{name}".encode())


def device_locales(seed: int, owner_country: np.ndarray) -> pa.Array:
    """The ``context.locale`` of each device (null where it reports none), from its owner's
    country; drawn from a stage generator of its own, so other draws do not move."""
    rng = stage_rng(seed, "device_locale")
    u = rng.random(len(owner_country))
    table = np.array(DEVICE_LOCALES, dtype=object)
    loc = table[owner_country, (u < DEVICE_LOCALE_SECOND_SHARE).astype(np.int64)]
    loc[rng.random(len(owner_country)) < DEVICE_NO_LOCALE_SHARE] = None
    return pa.array(loc, pa.string())


def write_event_files(
    con: duckdb.DuckDBPyConnection,
    seed: int,
    k: int,
    p: Persons,
    acc: Accounts,
    pacc: PersonAccounts,
    dev: Devices,
    orders: Orders,
    lines: Lines,
    s: Sessions,
    ev: Events,
    offsets: OffsetTable,
    raw: Path,
) -> tuple[Links, dict[str, int], dict[str, int]]:
    """Order events by UTC time and write the monthly JSONL files; returns (links, counts, planted)."""
    person = s.person[ev.session]
    utc, off = offsets.local_to_utc(ev.ts_local, p.tz[person])
    order = np.lexsort((np.arange(ev.n), utc))
    utc, off, person = utc[order], off[order], person[order]
    sess = ev.session[order]
    device = s.device[sess]
    kind = ev.kind[order]
    chan = dev.chan[device]
    web_acct = pacc.web_acct[person]
    uid = np.where(s.logged_in[sess], acc.crm_num[np.maximum(web_acct, 0)], 0)
    order_idx = np.where(kind == EV_ORDER, s.order[sess], -1)
    del sess

    # per-device, per-account and per-order JSON fragments, computed once
    dev_ids = np.arange(dev.n, dtype=np.int64)
    anon = uuid_strings(dev_ids, salt(seed, "anon"))
    con.register(
        "dev_src",
        pa.table(
            {
                "dev": dev_ids,
                "anon": anon,
                "devid": uuid_strings(dev_ids, salt(seed, "device"), upper=dev.chan == 1),
                "chan": dev.chan,
                "dtype": dev.dtype,
                "loc": device_locales(seed, p.country[dev.owner]),
            }
        ),
    )
    devpart = con.sql(device_json_sql()).to_arrow_table().column("devpart").combine_chunks()
    con.unregister("dev_src")
    f = acc.fields
    traits = np.full(acc.n, None, dtype=object)
    for i in np.flatnonzero(acc.kind == KIND_WEB).tolist():
        vals = {
            "email": f["email"][i],
            "phone": f["phone"][i],
            "firstName": f["first_name"][i],
            "lastName": f["last_name"][i],
        }
        vals = {key: (v.strip() if isinstance(v, str) and key != "phone" else v) for key, v in vals.items()}
        traits[i] = '"traits":' + json.dumps(vals, ensure_ascii=False, separators=(",", ":"))
    traits_arr = pa.array(traits, pa.string())
    online = np.flatnonzero(orders.channel < 2)
    opos = np.full(orders.n, -1, dtype=np.int64)
    opos[online] = np.arange(len(online))
    li = np.flatnonzero(opos[lines.order] >= 0)
    con.register(
        "lines_src",
        pa.table(
            {
                "pos": opos[lines.order[li]],
                "line": lines.line[li],
                "product": lines.product[li],
                "spelling": lines.spelling[li],
                "price": lines.unit_price[li],
                "qty": lines.qty[li],
            }
        ),
    )
    products = con.sql(products_json_sql()).to_arrow_table().column("products").combine_chunks()
    con.unregister("lines_src")

    def masked(idx: np.ndarray) -> pa.Array:
        return pa.array(np.maximum(idx, 0), mask=idx < 0)

    msg_salt = salt(seed, "message")

    def month_tables():
        for label, a, b in bounds:
            sl = slice(a, b)
            kd = kind[sl]
            dv = device[sl]
            msg = np.arange(a, b, dtype=np.int64)
            oi = order_idx[sl]
            yield (
                label,
                pa.table(
                    {
                        "msg": msg,
                        "mid": uuid_strings(msg, msg_salt),
                        "tss": iso_timestamps(utc[sl], off[sl], chan[sl] == 0),
                        "uid": uid[sl],
                        "kind": kd,
                        "page": ev.page[order[sl]],
                        "cat": ev.cat[order[sl]],
                        "product": ev.product[order[sl]].astype(np.int32),
                        "spelling": ev.spelling[order[sl]],
                        "price": np.round(ev.price[order[sl]], 2),
                        "qty": ev.qty[order[sl]].astype(np.int16),
                        "cur": COUNTRY_CURRENCY_IDX[p.country[person[sl]]],
                        "order_num": np.where(oi >= 0, 100_000_001 + oi, 0),
                        "devpart": devpart.take(dv),
                        "anon": anon.take(masked(np.where(kd == EV_ALIAS, dv, -1))),
                        "traits": traits_arr.take(masked(np.where(kd == EV_IDENTIFY, web_acct[sl], -1))),
                        "products": products.take(masked(np.where(oi >= 0, opos[np.maximum(oi, 0)], -1))),
                    }
                ),
            )

    bounds = month_bounds(utc)
    labels = [m[0] for m in bounds]
    month_ms = [int(np.datetime64(m, "ms").astype(np.int64)) for m in labels]
    bad, planted_counts = plant.planted_events(
        stage_rng(seed, "planted-events"), seed, k, labels, month_ms, list(CURRENCIES)
    )
    counts = write_events(con, month_tables(), bad, raw / "events")
    logged_devices = np.zeros(dev.n, dtype=bool)
    logged_devices[device[uid > 0]] = True
    resolvable = (uid > 0) | logged_devices[device]
    links = (
        "event",
        lambda a, b: uuid_strings(np.arange(a, b, dtype=np.int64), msg_salt),
        person,
        resolvable,
    )
    return links, counts, planted_counts


_EMAIL_RE = re.compile(r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$")


def _valid_or_blank_email(df: pd.DataFrame) -> np.ndarray:
    """Rows whose e-mail is blank or valid (planted copies must not carry a second problem)."""
    return np.array(
        [v is None or v != v or bool(_EMAIL_RE.match(str(v).strip().lower())) for v in df["email"]]
    )


def _text(v: object) -> str | None:
    """Cell value as text, ``None`` for missing."""
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return str(v)


def _interleave(
    con: duckdb.DuckDBPyConnection,
    rng: np.random.Generator,
    view: str,
    clean_sql: str,
    n_clean: int,
    k: int,
    breakers: dict,
    columns: tuple[str, ...],
    path: Path,
    eligible: Callable[[pd.DataFrame], np.ndarray] | None = None,
) -> tuple[int, dict[str, int], np.ndarray]:
    """Write clean rows plus planted copies (each right after the row it copies); returns the count,
    planted counts and the sorted ``ord`` of planted rows."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS {clean_sql}")
    pick = np.unique(rng.choice(n_clean, size=min(n_clean, 6 * k), replace=False))
    con.register("pick_rows", pa.table({"ord": pick.astype(np.float64)}))
    sample = con.execute(f"SELECT v.* FROM {view} v JOIN pick_rows USING (ord) ORDER BY ord").df()
    con.unregister("pick_rows")
    if eligible is not None:
        sample = sample[eligible(sample)].reset_index(drop=True)
    bad, counts = plant.planted_table(rng, sample, k, breakers)
    bad["ord"] = bad["ord"] + 0.5
    bad = bad.drop(columns="_reason")
    bad_cols = {c: pa.array([_text(v) for v in bad[c].tolist()], pa.string()) for c in columns}
    bad_tbl = pa.table({**bad_cols, "ord": pa.array(bad["ord"].to_numpy(np.float64))})
    con.register("planted_rows", bad_tbl)
    cols = ", ".join(columns)
    write_csv(
        con,
        f"SELECT {cols} FROM (SELECT {cols}, ord FROM {view} UNION ALL SELECT {cols}, ord FROM planted_rows) ORDER BY ord",
        path,
    )
    con.unregister("planted_rows")
    return n_clean + len(bad), counts, np.sort(bad["ord"].to_numpy(np.float64))


def write_pos(
    con: duckdb.DuckDBPyConnection,
    rng: np.random.Generator,
    k: int,
    p: Persons,
    pacc: PersonAccounts,
    acc: Accounts,
    orders: Orders,
    lines: Lines,
    cal: Calendar,
    raw: Path,
) -> tuple[Links, int, dict[str, int]]:
    """``pos_transactions.csv``: one row per line of each store sale; loyalty card scanned ~60%."""
    store_orders = np.flatnonzero(orders.channel == 2)
    txn = np.full(orders.n, -1, dtype=np.int64)
    txn[store_orders] = 1_000_000_001 + np.arange(len(store_orders))
    person = orders.person[store_orders]
    sacct = pacc.store_acct[person]
    scanned = (
        (sacct >= 0)
        & (pacc.store_created[person] <= orders.t[store_orders])
        & (rng.random(len(store_orders)) < 0.6)
    )
    loyalty = np.zeros(orders.n, dtype=np.int64)
    loyalty[store_orders] = np.where(scanned, acc.loyalty_num[np.maximum(sacct, 0)], 0)
    li = np.flatnonzero(txn[lines.order] >= 0)  # lines are grouped by order, orders sorted by time
    o = lines.order[li]
    src = pa.table(
        {
            "rid": np.arange(len(li), dtype=np.int64),
            "txn": txn[o],
            "line": lines.line[li].astype(np.int16),
            "store": orders.store[o].astype(np.int16),
            "local_ms": local_ms(cal, orders.t[o]),
            "loyalty_num": loyalty[o],
            "product": lines.product[li].astype(np.int32),
            "spelling": lines.spelling[li],
            "qty": lines.qty[li].astype(np.int16),
            "unit_price": lines.unit_price[li],
            "currency": orders.currency[o],
        }
    )
    con.register("pos_src", src)
    n_rows, counts, _ = _interleave(
        con,
        rng,
        "pos_fmt",
        pos_sql(),
        len(li),
        k,
        plant.pos_breakers(),
        POS_COLUMNS,
        raw / "pos_transactions.csv",
    )
    con.unregister("pos_src")
    links = ("pos", prefixed_ids("T", txn[store_orders], 10), person, loyalty[store_orders] > 0)
    return links, n_rows, counts


def write_crm(
    con: duckdb.DuckDBPyConnection,
    rng: np.random.Generator,
    k: int,
    p: Persons,
    acc: Accounts,
    offsets: OffsetTable,
    cal: Calendar,
    raw: Path,
) -> tuple[int, dict[str, int]]:
    """``crm_customers.csv`` sorted by crm_id (creation order), planted rows interleaved."""
    order = np.argsort(acc.crm_num)
    tz = p.tz[acc.person[order]]
    c_utc, c_off = offsets.local_to_utc(local_ms(cal, acc.created[order]), tz)
    u_utc, u_off = offsets.local_to_utc(local_ms(cal, acc.updated[order]), tz)
    cols = {
        "rid": np.arange(acc.n, dtype=np.int64),
        "crm_num": acc.crm_num[order],
        "loyalty_num": acc.loyalty_num[order],
        "signup_channel": acc.signup_channel[order],
        "created_ms": c_utc,
        "created_off": c_off.astype(np.int32),
        "updated_ms": u_utc,
        "updated_off": u_off.astype(np.int32),
    }
    for name, arr in acc.fields.items():
        cols[name] = arr[order]
    con.register("crm_src", arrow_table(cols))
    n_rows, counts, _ = _interleave(
        con,
        rng,
        "crm_fmt",
        crm_sql(),
        acc.n,
        k,
        plant.crm_breakers(),
        CRM_COLUMNS,
        raw / "crm_customers.csv",
        _valid_or_blank_email,
    )
    con.unregister("crm_src")
    return n_rows, counts


def write_campaign_files(
    con: duckdb.DuckDBPyConnection,
    rng: np.random.Generator,
    k: int,
    acc: Accounts,
    camp: CampaignLog,
    cal: Calendar,
    raw: Path,
) -> tuple[Links, Links, int, int, dict[str, int], dict[str, int]]:
    """``email_events.csv`` and ``campaign_exposures.csv`` (time ordered, planted rows interleaved)."""
    em_ts = cal.start_ms + np.round(camp.em_t * DAY_MS).astype(np.int64)
    eo = np.lexsort((camp.em_type, camp.em_acct, em_ts))
    src = pa.table(
        {
            "rid": np.arange(len(eo), dtype=np.int64),
            "email": pa.array(acc.fields["email"][camp.em_acct[eo]], pa.string()),
            "etype": camp.em_type[eo],
            "campaign": camp.em_campaign[eo],
            "ts": em_ts[eo],
        }
    )
    con.register("email_src", src)
    n_email, pe, bad_ord = _interleave(
        con,
        rng,
        "email_fmt",
        email_sql(),
        len(eo),
        k,
        plant.email_breakers(),
        EMAIL_COLUMNS,
        raw / "email_events.csv",
    )
    con.unregister("email_src")
    rid = np.arange(len(eo))
    line_no = rid + 1 + np.searchsorted(bad_ord, rid, side="left")
    email_links = (
        "email",
        pa.array(line_no.astype(np.int64)).cast(pa.string()),
        acc.person[camp.em_acct[eo]],
        None,
    )

    x_ts = cal.start_ms + np.round(camp.exp_t * DAY_MS).astype(np.int64)
    xo = np.lexsort((camp.exp_acct, x_ts))
    exp_num = 100_000_001 + np.arange(len(xo), dtype=np.int64)
    src = pa.table(
        {
            "rid": np.arange(len(xo), dtype=np.int64),
            "exp_num": exp_num,
            "campaign": camp.exp_campaign[xo],
            "crm_num": acc.crm_num[camp.exp_acct[xo]],
            "offer": camp.exp_offer[xo],
            "prob": camp.exp_prob[xo],
            "ts": x_ts[xo],
            "channel": camp.exp_channel[xo],
        }
    )
    con.register("exposure_src", src)
    n_exp, px, _ = _interleave(
        con,
        rng,
        "exposure_fmt",
        exposure_sql(),
        len(xo),
        k,
        plant.exposure_breakers(),
        EXPOSURE_COLUMNS,
        raw / "campaign_exposures.csv",
    )
    con.unregister("exposure_src")
    exp_links = ("exposure", prefixed_ids("E", exp_num, 9), acc.person[camp.exp_acct[xo]], None)
    return email_links, exp_links, n_email, n_exp, pe, px
