"""Public entry point: ``generate_world`` writes the raw sources and the ground truth of a synthetic world."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np

from pipelines.generate.accounts import Accounts, make_accounts
from pipelines.generate.behaviour import (
    Devices,
    Orders,
    PersonAccounts,
    catalog_prices,
    expand_events,
    make_devices,
    make_lines,
    make_orders,
    make_sessions,
    organic_purchase_times,
)
from pipelines.generate.campaigns import CampaignLog, response_probabilities, run_campaigns
from pipelines.generate.clock import OffsetTable, fx_frame, make_fx
from pipelines.generate.config import Calendar, planted_count, stage_rng, today
from pipelines.generate.ids import prefixed_ids
from pipelines.generate.outputs import write_campaign_files, write_crm, write_event_files, write_pos
from pipelines.generate.people import Persons, make_persons, persons_frame
from pipelines.generate.reregistrations import concat_accounts, reregistrations, share_household_landlines
from pipelines.generate.truth import (
    label_cutoffs,
    labels_frame,
    offer_response_frame,
    write_json,
    write_record_links,
)
from pipelines.generate.writers import duck

Progress = Callable[[str, float], None]


def generate_world(
    out_dir: Path,
    n_customers: int = 100_000,
    seed: int = 42,
    as_of: date | None = None,
    progress: Progress | None = None,
) -> dict:
    """Generate a messy multi-channel customer world with ground truth.

    Writes ``out_dir/raw/`` (the raw folder of docs/sources.md) and ``out_dir/truth/``. The
    history ends on ``as_of`` (default: today, UTC), so the world's clock is the real one.
    Output is byte-identical for the same (n_customers, seed, as_of). Returns a summary with the
    row count of every raw file, total rows and the elapsed seconds.
    """
    as_of = as_of or today()
    t_start = time.perf_counter()
    report = progress or (lambda stage, frac: None)
    out_dir = Path(out_dir)
    raw, truth = out_dir / "raw", out_dir / "truth"
    shutil.rmtree(raw / "events", ignore_errors=True)
    raw.mkdir(parents=True, exist_ok=True)
    truth.mkdir(parents=True, exist_ok=True)
    cal = Calendar.ending(as_of)
    k = planted_count(n_customers)

    report("persons", 0.0)
    p = make_persons(stage_rng(seed, "persons"), n_customers, cal)
    report("accounts", 0.15)
    acc = make_accounts(stage_rng(seed, "accounts"), p, cal, n_flagged=k)
    landline = share_household_landlines(stage_rng(seed, "landlines"), p, acc)
    # dormant re-registrations: CRM rows only (orders, events and campaigns use `acc`)
    crm_acc = concat_accounts(acc, reregistrations(stage_rng(seed, "reregistrations"), p, acc, cal))
    pacc = PersonAccounts.build(p, acc)
    dev = make_devices(stage_rng(seed, "devices"), p)
    fx = make_fx(stage_rng(seed, "fx"), cal)
    report("campaigns", 0.25)
    camp = run_campaigns(stage_rng(seed, "campaigns"), p, acc, cal)
    report("purchases", 0.3)
    rng_b = stage_rng(seed, "purchases")
    op, ot = organic_purchase_times(rng_b, p, cal)
    person = np.concatenate([op, camp.resp_person])
    t = np.concatenate([ot, camp.resp_t])
    offer = np.concatenate([np.full(len(op), -1), camp.resp_offer])
    orders = make_orders(rng_b, p, pacc, dev, cal, person, t, offer)
    del person, t, offer, op, ot
    lines = make_lines(rng_b, p, orders, fx)
    report("sessions", 0.4)
    sessions = make_sessions(stage_rng(seed, "sessions"), p, pacc, dev, orders, cal)
    events = expand_events(
        stage_rng(seed, "events"), p, sessions, orders, lines, catalog_prices(stage_rng(seed, "catalog")), cal
    )
    offsets = OffsetTable(cal)

    counts: dict[str, int] = {}
    planted: dict[str, dict[str, int]] = {}
    fx_frame(fx, cal).to_csv(raw / "fx_rates.csv", index=False, float_format="%.6f", lineterminator="\n")
    counts["fx_rates.csv"] = int(fx.shape[0] * 3)

    with duck(out_dir / ".duckdb_tmp") as con:
        report("events", 0.5)
        ev_links, ev_counts, planted["events"] = write_event_files(
            con, seed, k, p, acc, pacc, dev, orders, lines, sessions, events, offsets, raw
        )
        counts.update(ev_counts)
        del events, sessions
        report("pos", 0.7)
        pos_links, counts["pos_transactions.csv"], planted["pos_transactions"] = write_pos(
            con, stage_rng(seed, "pos"), k, p, pacc, acc, orders, lines, cal, raw
        )
        report("crm", 0.8)
        counts["crm_customers.csv"], planted["crm_customers"] = write_crm(
            con, stage_rng(seed, "crm-out"), k, p, crm_acc, offsets, cal, raw
        )
        report("email", 0.85)
        email_links, exp_links, n_email, n_exp, pe, px = write_campaign_files(
            con, stage_rng(seed, "campaign-out"), k, acc, camp, cal, raw
        )
        counts["email_events.csv"], counts["campaign_exposures.csv"] = n_email, n_exp
        planted["email_events"], planted["campaign_exposures"] = pe, px
        report("truth", 0.9)
        write_record_links(
            [
                ("crm", prefixed_ids("C", crm_acc.crm_num, 8), crm_acc.person, None),
                ev_links,
                pos_links,
                email_links,
                exp_links,
            ],
            truth / "record_links.parquet",
        )

    planted_errors, counts, n_events = _write_truth(
        truth,
        p,
        crm_acc,
        dev,
        orders,
        camp,
        cal,
        counts,
        planted,
        landline_rows=int(landline.sum()),
        seed=seed,
        n_customers=n_customers,
        as_of=as_of,
    )
    elapsed = time.perf_counter() - t_start
    report("done", 1.0)
    return {
        "out_dir": str(out_dir),
        "seed": seed,
        "n_customers": n_customers,
        "as_of": as_of.isoformat(),
        "files": counts,
        "rows": int(sum(counts.values())),
        "events": n_events,
        "planted": planted_errors,
        "seconds": round(elapsed, 2),
    }


def _write_truth(
    truth: Path,
    p: Persons,
    acc: Accounts,
    dev: Devices,
    orders: Orders,
    camp: CampaignLog,
    cal: Calendar,
    counts: dict[str, int],
    planted: dict[str, dict[str, int]],
    *,
    landline_rows: int,
    seed: int,
    n_customers: int,
    as_of: date,
) -> tuple[dict, dict[str, int], int]:
    """Labels, persons, offer responses, planted-error counts and ``world.json`` under ``truth/``.

    Returns the planted errors, the raw files' row counts (sorted) and the number of events."""
    cutoffs = label_cutoffs(as_of)
    persons_frame(p, cal).to_parquet(truth / "persons.parquet", index=False)
    labels_frame(p, cal, cutoffs).to_parquet(truth / "labels.parquet", index=False)
    offer_response_frame(p, response_probabilities(p)).to_parquet(
        truth / "offer_response.parquet", index=False
    )
    planted_errors = {
        "quarantine": planted,
        "flagged": {"crm_customers": {"invalid_email": int(acc.flagged_invalid.sum())}},
    }
    write_json(planted_errors, truth / "planted_errors.json")
    counts = dict(sorted(counts.items()))
    n_events = sum(v for f, v in counts.items() if f.startswith("events/"))
    per_person = np.bincount(acc.person, minlength=p.n)
    both = per_person >= 2
    world = {
        "seed": seed,
        "n_customers": n_customers,
        "as_of": as_of.isoformat(),
        "history_start": cal.start.isoformat(),
        "cutoffs": [c.isoformat() for c in cutoffs],
        "base_currency": "USD",
        "row_counts": counts,
        "events_total": n_events,
        "stats": {
            "crm_accounts": acc.n,
            "persons_with_account": int((np.bincount(acc.person, minlength=p.n) > 0).sum()),
            "persons_with_two_accounts": int(both.sum()),
            "persons_with_3_to_6_accounts": int(((per_person >= 3) & (per_person <= 6)).sum()),
            "household_landline_rows": int(landline_rows),
            "duplicate_pairs_without_shared_identifier": int(acc.hard_pair.sum() // 2),
            "store_phone_trap_rows": int(acc.store_phone_trap.sum()),
            "placeholder_email_rows": int(acc.placeholder.sum()),
            "shared_devices": int(dev.shared.sum()),
            "orders": orders.n,
            "campaigns": len(camp.campaign_day),
            "alive_at_as_of": int((p.tau > cal.n_days).sum()),
        },
    }
    write_json(world, truth / "world.json")
    return planted_errors, counts, n_events
