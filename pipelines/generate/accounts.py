"""CRM accounts: zero, one or two per person, with messy identity fields and deliberate traps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.generate import pools
from pipelines.generate.config import COUNTRIES, PLACEHOLDER_EMAILS, STORES, Calendar
from pipelines.generate.messy import (
    BOOL_SPELLINGS,
    format_birth_date,
    format_street,
    gmail_variant,
    malformed_email,
    messy_email,
    messy_name,
    messy_postcode,
    recase,
    stray_spaces,
)
from pipelines.generate.people import ACCT_BOTH, CityTable, Persons
from pipelines.generate.phones import format_phone, store_phones

KIND_STORE, KIND_WEB = 0, 1
HARD_PAIR_SHARE = 0.27


@dataclass
class Accounts:
    """One entry per clean CRM account row (flagged rows included; planted rows are not here)."""

    person: np.ndarray
    kind: np.ndarray  # KIND_STORE / KIND_WEB
    signup_channel: np.ndarray  # index into CHANNELS (web, app, store)
    created: np.ndarray  # local days since calendar start
    updated: np.ndarray
    crm_num: np.ndarray
    loyalty_num: np.ndarray  # 0 = none
    consent_email: np.ndarray  # latent consent (True only when the raw value says yes)
    esp_ok: np.ndarray  # e-mail usable by the ESP (present, valid, not a placeholder)
    hard_pair: np.ndarray  # row belongs to a duplicate pair that shares no exact identifier
    store_phone_trap: np.ndarray
    placeholder: np.ndarray
    flagged_invalid: np.ndarray
    fields: dict[str, np.ndarray]  # raw CSV string columns (None = blank)

    @property
    def n(self) -> int:
        return len(self.person)

    def crm_ids(self) -> np.ndarray:
        return np.array([f"C{v}" for v in self.crm_num.tolist()], dtype=object)


def _choice(rng: np.random.Generator, n: int, p: list[float]) -> np.ndarray:
    return rng.choice(len(p), size=n, p=np.asarray(p) / np.sum(p))


def _messy_names(rng: np.random.Generator, names: np.ndarray) -> np.ndarray:
    n = len(names)
    accent = _choice(rng, n, [0.6, 0.25, 0.15])
    case = _choice(rng, n, [0.88, 0.06, 0.04, 0.02])
    spaces = _choice(rng, n, [0.94, 0.015, 0.015, 0.015, 0.015])
    typo_kind = _choice(rng, n, [0.95, 0.025, 0.025]) - 1
    typo_pos = rng.random(n)
    codes, uniq = pd.factorize(names)
    accented = np.array([not u.isascii() for u in uniq], dtype=bool)[codes]
    out = names.copy()
    for i in np.flatnonzero(
        ((accent > 0) & accented) | (case > 0) | (spaces > 0) | (typo_kind >= 0)
    ).tolist():
        out[i] = messy_name(
            names[i], int(accent[i]), int(case[i]), int(spaces[i]), int(typo_kind[i]), float(typo_pos[i])
        )
    return out


def make_accounts(rng: np.random.Generator, p: Persons, cal: Calendar, n_flagged: int) -> Accounts:
    """Build the CRM account rows of all persons (store and web sign-ups), traps included."""
    horizon = float(cal.n_days)
    store_persons = np.flatnonzero(p.has_store)
    web_persons = np.flatnonzero(p.has_web)
    person = np.concatenate([store_persons, web_persons])
    kind = np.concatenate([np.zeros(len(store_persons), np.int8), np.ones(len(web_persons), np.int8)])
    n = len(person)
    signup_channel = np.where(kind == KIND_STORE, 2, p.web_is_app[person].astype(np.int8))

    # creation times: the first account at sign-up, the second one later while the person is active
    both = p.acct_type[person] == ACCT_BOTH
    store_first = rng.random(len(p.acct_type)) < p.chan_pref[:, 2] / (
        p.chan_pref[:, 2] + p.chan_pref[:, 0] + p.chan_pref[:, 1]
    )
    is_first = ~both | (store_first[person] == (kind == KIND_STORE))
    active_end = np.minimum(p.tau[person], horizon)
    later = p.signup[person] + rng.random(n) * (active_end - p.signup[person])
    created = np.where(is_first, p.signup[person], later)
    store_tod = (9.0 + rng.random(n) * 11.0) / 24.0
    created = np.where(kind == KIND_STORE, np.floor(created) + store_tod, created)
    created = np.minimum(created, cal.last_t)
    updated = np.minimum(created + rng.exponential(150.0, size=n), cal.last_t)

    order = np.lexsort((person, created))
    crm_num = np.empty(n, dtype=np.int64)
    crm_num[order] = 10_000_001 + np.arange(n)
    loyalty_num = np.zeros(n, dtype=np.int64)
    st = order[kind[order] == KIND_STORE]
    loyalty_num[st] = 200_000_001 + np.arange(len(st)) * 3 + rng.integers(0, 3, size=len(st))

    # duplicate pairs and which of them share no exact identifier
    hard_person = rng.random(p.n) < HARD_PAIR_SHARE
    hard = both & hard_person[person]
    is_store = kind == KIND_STORE

    # ---- e-mail -----------------------------------------------------------------------------
    canon = p.email[person]
    email = canon.copy()
    u = rng.random(n)
    missing = np.where(is_store, u < 0.2, u < 0.04) & ~both
    placeholder = is_store & ~both & (u >= 0.2) & (u < 0.23)
    hs = hard & is_store
    hard_mode = _choice(rng, n, [0.45, 0.15, 0.40])  # missing, placeholder, alternative address
    missing |= hs & (hard_mode == 0)
    placeholder |= hs & (hard_mode == 1)
    alt = hs & (hard_mode == 2)
    email[alt] = p.email_alt[person[alt]]
    # gmail users sometimes give the same mailbox with dots / +tag on one of their two accounts
    side = rng.random(p.n) < 0.5
    gvar = both & ~hard & p.is_gmail[person] & (rng.random(p.n) < 0.4)[person] & (side[person] == is_store)
    gmode = rng.integers(1, 4, size=n)
    tags = np.array(pools.GMAIL_TAGS, dtype=object)[rng.integers(0, len(pools.GMAIL_TAGS), size=n)]
    for i in np.flatnonzero(gvar):
        email[i] = gmail_variant(email[i], int(gmode[i]), tags[i])
    ph_pick = np.array(PLACEHOLDER_EMAILS, dtype=object)[rng.integers(0, len(PLACEHOLDER_EMAILS), size=n)]
    email[placeholder] = ph_pick[placeholder]
    # flagged-but-kept malformed addresses: single store accounts only
    flag_cand = np.flatnonzero(is_store & ~both & ~missing & ~placeholder)
    flagged = np.zeros(n, dtype=bool)
    flagged[rng.choice(flag_cand, size=min(n_flagged, len(flag_cand)), replace=False)] = True
    bad_kind = rng.integers(0, 3, size=n)
    for i in np.flatnonzero(flagged):
        email[i] = malformed_email(email[i], int(bad_kind[i]))
    ecase = _choice(rng, n, [0.85, 0.05, 0.10])
    espace = _choice(rng, n, [0.94, 0.02, 0.02, 0.02])
    email_raw = email.copy()
    for i in np.flatnonzero((ecase > 0) | (espace > 0)).tolist():
        email_raw[i] = messy_email(email[i], int(ecase[i]), int(espace[i]))
    email_raw[missing] = None

    cnames = np.array(COUNTRIES, dtype=object)[p.country[person]]
    phone_raw, trap = _phones(rng, p, person, cnames, is_store, hard)
    first_raw, last_raw, birth_raw, street_raw, city_raw, postcode_raw = _person_fields(
        rng, p, person, cnames
    )

    # ---- consents -----------------------------------------------------------------------------
    def consent(prob: float) -> tuple[np.ndarray, np.ndarray]:
        val = rng.random(n) < prob
        unknown = rng.random(n) < 0.08
        sty = rng.integers(0, 6, size=n)
        raw = BOOL_SPELLINGS[(~val).astype(np.int64), sty]
        raw[unknown] = None
        return val & ~unknown, raw

    consent_email, ce_raw = consent(0.72)
    _, cs_raw = consent(0.4)
    _, cp_raw = consent(0.6)
    ce_raw[placeholder] = np.where(rng.random(int(placeholder.sum())) < 0.5, "false", None)
    consent_email &= ~placeholder
    esp_ok = ~missing & ~placeholder & ~flagged

    fields = {
        "first_name": first_raw,
        "last_name": last_raw,
        "email": email_raw,
        "phone": phone_raw,
        "birth_date": birth_raw,
        "street": street_raw,
        "city": city_raw,
        "postcode": postcode_raw,
        "country": cnames,
        "consent_email": ce_raw,
        "consent_sms": cs_raw,
        "consent_profiling": cp_raw,
    }
    return Accounts(
        person=person.astype(np.int64),
        kind=kind,
        signup_channel=signup_channel.astype(np.int8),
        created=created,
        updated=updated,
        crm_num=crm_num,
        loyalty_num=loyalty_num,
        consent_email=consent_email,
        esp_ok=esp_ok,
        hard_pair=hard,
        store_phone_trap=trap,
        placeholder=placeholder,
        flagged_invalid=flagged,
        fields=fields,
    )


def _phones(
    rng: np.random.Generator,
    p: Persons,
    person: np.ndarray,
    cnames: np.ndarray,
    is_store: np.ndarray,
    hard: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw phone per account (styles, gaps, the store-phone trap) and the trap mask."""
    n = len(person)
    ph_missing = rng.random(n) < 0.15
    hard_side = rng.random(p.n) < 0.5
    ph_missing |= hard & (hard_side[person] == is_store)
    style = _choice(rng, n, [0.25, 0.2, 0.15, 0.2, 0.1, 0.1])
    phone_raw = np.array(
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
    # clerk typed the store's phone number instead of the customer's
    store_phone_nsn, store_phone_alen = store_phones()
    sloppy = np.array([s[4] for s in STORES])[p.home_store[person]]
    trap_cand = np.flatnonzero(is_store & sloppy & ~hard)
    n_trap = min(len(trap_cand), max(8, int(0.04 * is_store.sum())))
    trap = np.zeros(n, dtype=bool)
    trap[rng.choice(trap_cand, size=n_trap, replace=False)] = True
    for i in np.flatnonzero(trap):
        s = int(p.home_store[person[i]])
        phone_raw[i] = format_phone(
            cnames[i], int(store_phone_nsn[s]), int(store_phone_alen[s]), int(style[i])
        )
    ph_missing &= ~trap
    phone_raw[ph_missing] = None
    return phone_raw, trap


def _person_fields(
    rng: np.random.Generator, p: Persons, person: np.ndarray, cnames: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Raw first and last name, birth date, street, city and postcode per account (typos, layouts)."""
    n = len(person)
    first_raw = _messy_names(rng, p.first_name[person])
    last_raw = _messy_names(rng, p.last_name[person])
    first_raw[rng.random(n) < 0.01] = None
    birth = p.birth[person]
    y = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    m = birth.astype("datetime64[M]").astype(np.int64) % 12 + 1
    d = (birth - birth.astype("datetime64[M]")).astype(np.int64) + 1
    iso = rng.random(n) < 0.3
    birth_raw = np.array(
        [
            format_birth_date(c, a, b, e, i)
            for c, a, b, e, i in zip(
                cnames.tolist(), y.tolist(), m.tolist(), d.tolist(), iso.tolist(), strict=True
            )
        ],
        dtype=object,
    )
    birth_raw[rng.random(n) < 0.05] = None
    abbrev = rng.random(n) < 0.35
    scase = _choice(rng, n, [0.92, 0.04, 0.04])
    street_raw = np.array(
        [
            recase(format_street(c, no, nm, pools.STREET_TYPES[c][t], ab), cs)
            for c, no, nm, t, ab, cs in zip(
                cnames.tolist(),
                p.street_no[person].tolist(),
                p.street_name[person].tolist(),
                p.street_type[person].tolist(),
                abbrev.tolist(),
                scase.tolist(),
                strict=True,
            )
        ],
        dtype=object,
    )
    cities = CityTable.build()
    city_raw = _messy_names(rng, cities.name[p.city[person]])
    pmode = _choice(rng, n, [0.85, 0.10, 0.05])
    pspace = _choice(rng, n, [0.97, 0.0, 0.03])
    postcode_raw = p.postcode[person].copy()
    for i in np.flatnonzero((pmode > 0) | (pspace > 0)).tolist():
        postcode_raw[i] = stray_spaces(
            messy_postcode(cnames[i], postcode_raw[i], int(pmode[i])), int(pspace[i])
        )
    return first_raw, last_raw, birth_raw, street_raw, city_raw, postcode_raw
