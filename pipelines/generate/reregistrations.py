"""Both sides of the identity guards: persons with 3-6 CRM records, households sharing a landline.

Real CRMs hold several records of one person (re-registrations, store + web + call-centre sign-ups,
imports, a record opened again after a move) and households that give one home phone on every
member's record. The first must come out as one customer however many records there are; the
second must stay several customers although the records share a phone and an address.

* :func:`reregistrations` returns *extra* CRM accounts (dormant: no orders or events are attached to
  them) for a share of the persons who already have one; each carries its own typos and layouts, some
  a new address (the person moved), some no e-mail or phone. Together with the person's existing
  accounts, the person then has 3-6 records.
* :func:`share_household_landlines` rewrites the phone of some household members' accounts to the
  number of the household's first member.

Both draw from their own random stream, so the rest of the world is unchanged by them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.generate.accounts import KIND_STORE, KIND_WEB, Accounts, _choice, _person_fields
from pipelines.generate.config import COUNTRIES, Calendar
from pipelines.generate.messy import BOOL_SPELLINGS, messy_email
from pipelines.generate.people import Persons
from pipelines.generate.phones import format_phone

#: Share of the persons with a CRM account who re-registered until they hold 3-6 records.
REREGISTERED_SHARE = 0.03
#: Share of extra records opened at a new address (the person moved).
MOVED_SHARE = 0.3
#: Share of households (two or more members with an account) whose members give one landline.
LANDLINE_HOUSEHOLD_SHARE = 0.15


def reregistrations(rng: np.random.Generator, p: Persons, acc: Accounts, cal: Calendar) -> Accounts:
    """Extra CRM accounts so that some persons hold 3-6 records (see the module docstring)."""
    have = np.bincount(acc.person, minlength=p.n)
    cand = np.flatnonzero(have > 0)
    chosen = np.sort(rng.choice(cand, size=int(round(REREGISTERED_SHARE * len(cand))), replace=False))
    target = rng.integers(3, 7, size=len(chosen))
    extra = np.maximum(target - have[chosen], 1)
    person = np.repeat(chosen, extra)
    n = len(person)

    kind = np.where(rng.random(n) < 0.5, KIND_STORE, KIND_WEB).astype(np.int8)
    signup_channel = np.where(kind == KIND_STORE, 2, (rng.random(n) < 0.4).astype(np.int8)).astype(np.int8)
    active_end = np.minimum(p.tau[person], float(cal.n_days))
    created = np.minimum(p.signup[person] + rng.random(n) * (active_end - p.signup[person]), cal.last_t)
    updated = np.minimum(created + rng.exponential(150.0, size=n), cal.last_t)
    crm_num = np.empty(n, dtype=np.int64)
    crm_num[np.argsort(created, kind="stable")] = int(acc.crm_num.max()) + 1 + np.arange(n)

    # a store sign-up gets a new loyalty card (the old one was lost or forgotten)
    loyalty_num = np.zeros(n, dtype=np.int64)
    st = np.flatnonzero(kind == KIND_STORE)
    loyalty_num[st] = int(acc.loyalty_num.max()) + 3 + np.arange(len(st)) * 3 + rng.integers(0, 3, len(st))
    cnames = np.array(COUNTRIES, dtype=object)[p.country[person]]
    first, last, birth, street, city, postcode = _person_fields(rng, p, person, cnames)
    moved = np.flatnonzero(rng.random(n) < MOVED_SHARE)
    if len(moved):
        donors = _same_country_donors(rng, p, person[moved])
        _, _, _, d_street, d_city, d_postcode = _person_fields(rng, p, donors, cnames[moved])
        street[moved], city[moved], postcode[moved] = d_street, d_city, d_postcode

    email_mode = _choice(rng, n, [0.5, 0.2, 0.3])  # canonical, alternative, none
    email = np.where(email_mode == 1, p.email_alt[person], p.email[person]).astype(object)
    ecase, espace = _choice(rng, n, [0.85, 0.05, 0.10]), _choice(rng, n, [0.94, 0.02, 0.02, 0.02])
    for i in np.flatnonzero((ecase > 0) | (espace > 0)).tolist():
        email[i] = messy_email(email[i], int(ecase[i]), int(espace[i]))
    email[email_mode == 2] = None
    style = _choice(rng, n, [0.25, 0.2, 0.15, 0.2, 0.1, 0.1])
    phone = np.array(
        [
            format_phone(c, v, a, s)
            for c, v, a, s in zip(
                cnames.tolist(),
                p.phone_nsn[person].tolist(),
                p.phone_alen[person].tolist(),
                style.tolist(),
                strict=True,
            )
        ],
        dtype=object,
    )
    phone[rng.random(n) < 0.4] = None

    def consent(prob: float) -> tuple[np.ndarray, np.ndarray]:
        val = rng.random(n) < prob
        unknown = rng.random(n) < 0.08
        raw = BOOL_SPELLINGS[(~val).astype(np.int64), rng.integers(0, 6, size=n)]
        raw[unknown] = None
        return val & ~unknown, raw

    consent_email, ce_raw = consent(0.72)
    _, cs_raw = consent(0.4)
    _, cp_raw = consent(0.6)
    no = np.zeros(n, dtype=bool)
    return Accounts(
        person=person.astype(np.int64),
        kind=kind,
        signup_channel=signup_channel,
        created=created,
        updated=updated,
        crm_num=crm_num,
        loyalty_num=loyalty_num,
        consent_email=consent_email,
        esp_ok=email_mode != 2,
        hard_pair=no,
        store_phone_trap=no.copy(),
        placeholder=no.copy(),
        flagged_invalid=no.copy(),
        fields={
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": phone,
            "birth_date": birth,
            "street": street,
            "city": city,
            "postcode": postcode,
            "country": cnames,
            "consent_email": ce_raw,
            "consent_sms": cs_raw,
            "consent_profiling": cp_raw,
        },
    )


def _same_country_donors(rng: np.random.Generator, p: Persons, movers: np.ndarray) -> np.ndarray:
    """Another person of the same country per mover, whose address becomes the mover's new one."""
    out = np.empty(len(movers), dtype=np.int64)
    for c in np.unique(p.country[movers]).tolist():
        pool = np.flatnonzero(p.country == c)
        idx = np.flatnonzero(p.country[movers] == c)
        pick = pool[rng.integers(0, len(pool), size=len(idx))]
        clash = pick == movers[idx]
        pick[clash] = pool[(np.searchsorted(pool, pick[clash]) + 1) % len(pool)]
        out[idx] = pick
    return out


def share_household_landlines(rng: np.random.Generator, p: Persons, acc: Accounts) -> np.ndarray:
    """Give some households one phone: members' accounts carry the first member's number.

    Rewrites ``acc.fields["phone"]`` in place and returns the mask of rewritten accounts. Accounts of
    a duplicate pair that shares no identifier, and store-phone trap rows, are left alone.
    """
    hh = p.household[acc.person]
    by_household = pd.DataFrame({"hh": hh, "person": acc.person}).groupby("hh")["person"]
    owner = by_household.transform("min").to_numpy()
    households = np.unique(hh[by_household.transform("nunique").to_numpy() >= 2])
    picked = households[rng.random(len(households)) < LANDLINE_HOUSEHOLD_SHARE]
    rewrite = (
        np.isin(hh, picked)
        & (acc.person != owner)
        & ~acc.hard_pair
        & ~acc.store_phone_trap
        & (rng.random(acc.n) < 0.7)
    )
    cnames = np.array(COUNTRIES, dtype=object)[p.country[owner]]
    style = _choice(rng, acc.n, [0.25, 0.2, 0.15, 0.2, 0.1, 0.1])
    for i in np.flatnonzero(rewrite).tolist():
        o = int(owner[i])
        acc.fields["phone"][i] = format_phone(
            cnames[i], int(p.phone_nsn[o]), int(p.phone_alen[o]), int(style[i])
        )
    return rewrite


def concat_accounts(a: Accounts, b: Accounts) -> Accounts:
    """One :class:`Accounts` with the rows of ``a`` then ``b``."""
    return Accounts(
        **{
            name: np.concatenate([getattr(a, name), getattr(b, name)])
            for name in Accounts.__dataclass_fields__
            if name != "fields"
        },
        fields={k: np.concatenate([a.fields[k], b.fields[k]]) for k in a.fields},
    )
