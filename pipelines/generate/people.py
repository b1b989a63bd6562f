"""Latent persons: households, canonical identities and behavioural traits (the ground truth)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cip.categories import CATEGORIES
from pipelines.generate import pools
from pipelines.generate.config import (
    AGE_BANDS,
    COUNTRIES,
    COUNTRY_CALLING_CODE,
    COUNTRY_WEIGHTS,
    N_CATEGORIES,
    STORES,
    Calendar,
)
from pipelines.generate.messy import email_token
from pipelines.generate.phones import store_phones, valid_pool

#: Account types: which CRM accounts a person has.
ACCT_NONE, ACCT_STORE, ACCT_WEB, ACCT_BOTH = 0, 1, 2, 3
ACCT_TYPE_PROBS = np.array([0.40, 0.12, 0.18, 0.30])
#: Dirichlet concentration of (web, app, store) preference per account type.
CHAN_ALPHA = np.array([[0.6, 0.3, 3.0], [0.5, 0.3, 3.0], [2.0, 1.5, 0.6], [1.2, 0.9, 1.3]])
CATEGORY_POPULARITY = np.array([1.2, 1.3, 1.0, 0.9, 0.8, 1.1, 0.6, 0.7])


@dataclass
class CityTable:
    """All cities of all countries, flattened (index = global city id)."""

    country: np.ndarray
    name: np.ndarray
    tier: np.ndarray
    prefix: np.ndarray
    tz: np.ndarray

    @classmethod
    def build(cls) -> CityTable:
        rows = [(ci, *city) for ci, c in enumerate(COUNTRIES) for city in pools.CITIES[c]]
        return cls(
            country=np.array([r[0] for r in rows], dtype=np.int8),
            name=np.array([r[1] for r in rows], dtype=object),
            tier=np.array([r[2] for r in rows], dtype=np.int8),
            prefix=np.array([r[3] for r in rows], dtype=object),
            tz=np.array([r[4] for r in rows], dtype=np.int8),
        )


@dataclass
class Persons:
    """Column arrays, one entry per latent person (index = person number, ``P`` id = index + 1)."""

    n: int
    country: np.ndarray  # int8 index into COUNTRIES
    city: np.ndarray  # global city index
    tz: np.ndarray  # int8 index into TIMEZONES
    household: np.ndarray  # int64 household number
    first_name: np.ndarray
    last_name: np.ndarray
    birth: np.ndarray  # datetime64[D]
    email: np.ndarray  # canonical
    email_alt: np.ndarray  # a second address used on some accounts
    is_gmail: np.ndarray
    phone_nsn: np.ndarray
    phone_alen: np.ndarray
    street_no: np.ndarray
    street_name: np.ndarray
    street_type: np.ndarray
    postcode: np.ndarray
    signup: np.ndarray  # days since calendar start (first activity)
    tau: np.ndarray  # dropout, days since calendar start (may exceed the history)
    lam: np.ndarray  # purchases per day while alive
    spend_mean: np.ndarray  # USD per order
    cat_pref: np.ndarray  # (n, 8)
    chan_pref: np.ndarray  # (n, 3) web, app, store
    email_resp: np.ndarray
    age_band: np.ndarray
    city_tier: np.ndarray
    acct_type: np.ndarray
    web_is_app: np.ndarray  # the web account was opened in the app
    home_store: np.ndarray

    @property
    def has_store(self) -> np.ndarray:
        return (self.acct_type == ACCT_STORE) | (self.acct_type == ACCT_BOTH)

    @property
    def has_web(self) -> np.ndarray:
        return (self.acct_type == ACCT_WEB) | (self.acct_type == ACCT_BOTH)

    def person_ids(self) -> np.ndarray:
        return np.array([f"P{i + 1:07d}" for i in range(self.n)], dtype=object)

    def phone_e164(self) -> np.ndarray:
        cc = np.array(COUNTRY_CALLING_CODE)[self.country]
        return np.array(
            [f"+{c}{v}" for c, v in zip(cc.tolist(), self.phone_nsn.tolist(), strict=True)], dtype=object
        )


def household_sizes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Household number of each of ``n`` person slots (sizes 1-4, about 30% live with others)."""
    sizes = rng.choice([1, 2, 3, 4], size=n, p=[0.70, 0.20, 0.07, 0.03])
    hh = np.repeat(np.arange(n), sizes)[:n]
    return hh


def _draw_categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row of a (rows, k) probability matrix (inverse CDF, vectorized)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs))[:, None] * cum[:, -1:]
    return np.minimum((u > cum).sum(axis=1), probs.shape[1] - 1)


def _names(rng: np.random.Generator, country: np.ndarray, hh: np.ndarray, hh_country: np.ndarray):
    """First names per person (distinct within a household) and last names per household."""
    n = len(country)
    last = np.empty(len(hh_country), dtype=object)
    for ci, c in enumerate(COUNTRIES):
        idx = np.flatnonzero(hh_country == ci)
        pool = np.array(pools.LAST_NAMES[c], dtype=object)
        last[idx] = pool[rng.integers(0, len(pool), size=len(idx))]
    female = rng.random(n) < 0.5
    first = np.empty(n, dtype=object)
    for _ in range(6):
        todo = (
            np.ones(n, dtype=bool) if _ == 0 else pd.DataFrame({"h": hh, "f": first}).duplicated().to_numpy()
        )
        if not todo.any():
            break
        for ci, c in enumerate(COUNTRIES):
            for g, pool in enumerate(pools.FIRST_NAMES[c]):
                idx = np.flatnonzero(todo & (country == ci) & (female == (g == 0)))
                arr = np.array(pool, dtype=object)
                first[idx] = arr[rng.integers(0, len(arr), size=len(idx))]
    return first, last[hh]


def _postcodes(rng: np.random.Generator, city: np.ndarray, cities: CityTable) -> np.ndarray:
    """Canonical postcode per household, in the country's format, prefixed by the city's code."""
    n = len(city)
    out = np.empty(n, dtype=object)
    letters = np.array(list("ABCEGHJKLMNPRSTVWXYZ"))
    d = rng.integers(0, 10, size=(n, 4))
    lt = letters[rng.integers(0, len(letters), size=(n, 3))]
    district = rng.integers(1, 21, size=n)
    for i in range(n):
        c = COUNTRIES[cities.country[city[i]]]
        p = cities.prefix[city[i]]
        if c == "US":
            out[i] = f"{p}{d[i, 0]}{d[i, 1]}"
        elif c == "CA":
            out[i] = f"{p}{d[i, 0]}{lt[i, 0]} {d[i, 1]}{lt[i, 1]}{d[i, 2]}"
        elif c == "GB":
            out[i] = f"{p}{district[i]} {d[i, 0]}{lt[i, 1]}{lt[i, 2]}"
        elif c == "DE":
            out[i] = f"{p}{d[i, 0]}{d[i, 1]}{d[i, 2]}"
        else:
            out[i] = f"{p}{district[i]:02d}" if p == "750" else f"{p}{d[i, 0]}{d[i, 1]}"
    return out


_STYLE_P = np.array([0.30, 0.18, 0.12, 0.08, 0.14, 0.08, 0.10])


def _locals(first_tok: np.ndarray, last_tok: np.ndarray, byear: np.ndarray, style: np.ndarray) -> list[str]:
    out = []
    for f, last, y, s in zip(first_tok, last_tok, byear.tolist(), style.tolist(), strict=True):
        if s == 0:
            out.append(f"{f}.{last}")
        elif s == 1:
            out.append(f"{f}{last}")
        elif s == 2:
            out.append(f"{f[:1]}{last}")
        elif s == 3:
            out.append(f"{f}_{last}")
        elif s == 4:
            out.append(f"{f}.{last}{y % 100:02d}")
        elif s == 5:
            out.append(f"{last}.{f}")
        else:
            out.append(f"{f}{y}")
    return out


def mailbox_key(email: str) -> str:
    """Loose identity of a mailbox: no dots and no ``+tag`` in the local part (gmail rules, applied to all)."""
    local, _, domain = email.partition("@")
    return local.split("+", 1)[0].replace(".", "") + "@" + domain


def unique_emails(local: list[str], domain: np.ndarray, taken: set[str]) -> np.ndarray:
    """Join local parts and domains, appending digits where a mailbox key is already taken."""
    out = np.empty(len(local), dtype=object)
    for i, (loc, dom) in enumerate(zip(local, domain.tolist(), strict=True)):
        email = f"{loc}@{dom}"
        key = mailbox_key(email)
        bump = 2
        while key in taken:
            email = f"{loc}{bump}@{dom}"
            key = mailbox_key(email)
            bump += 1
        taken.add(key)
        out[i] = email
    return out


def make_persons(rng: np.random.Generator, n: int, cal: Calendar) -> Persons:
    """Draw ``n`` latent persons with households, canonical identities and behavioural traits."""
    cities = CityTable.build()
    slot_hh = household_sizes(rng, n)
    n_hh = int(slot_hh.max()) + 1
    hh = slot_hh[rng.permutation(n)]  # members of a household are not adjacent person ids
    hh_country = rng.choice(len(COUNTRIES), size=n_hh, p=COUNTRY_WEIGHTS).astype(np.int8)
    hh_city = np.empty(n_hh, dtype=np.int16)
    for ci in range(len(COUNTRIES)):
        idx = np.flatnonzero(hh_country == ci)
        cand = np.flatnonzero(cities.country == ci)
        w = np.array([4.0, 2.0, 1.0])[cities.tier[cand] - 1]
        hh_city[idx] = rng.choice(cand, size=len(idx), p=w / w.sum())
    country = hh_country[hh]
    city = hh_city[hh]
    first, last = _names(rng, country, hh, hh_country)

    # addresses per household
    hh_street_no = np.where(
        hh_country == 0, rng.integers(1, 9999, size=n_hh), rng.integers(1, 180, size=n_hh)
    )
    hh_street_name = np.empty(n_hh, dtype=object)
    hh_street_type = np.empty(n_hh, dtype=np.int8)
    for ci, c in enumerate(COUNTRIES):
        idx = np.flatnonzero(hh_country == ci)
        names = np.array(pools.STREET_NAMES[c], dtype=object)
        hh_street_name[idx] = names[rng.integers(0, len(names), size=len(idx))]
        hh_street_type[idx] = rng.integers(0, len(pools.STREET_TYPES[c]), size=len(idx))
    hh_postcode = _postcodes(rng, hh_city, cities)

    # birth dates (adults 18-85 at as_of)
    age_days = (18 + rng.beta(2.0, 3.2, size=n) * 67) * 365.25
    as_of = np.datetime64(cal.as_of, "D")
    birth = as_of - age_days.astype(np.int64)
    age_years = (as_of - birth).astype(np.int64) / 365.25
    age_band = np.searchsorted(np.array([25, 35, 45, 55, 65]), age_years, side="right").astype(np.int8)

    # e-mails
    first_tok = pd.Series(first).map({v: email_token(v) for v in set(first)}).to_numpy()
    last_tok = pd.Series(last).map({v: email_token(v) for v in set(last)}).to_numpy()
    byear = birth.astype("datetime64[Y]").astype(np.int64) + 1970
    domain = np.empty(n, dtype=object)
    for ci, c in enumerate(COUNTRIES):
        idx = np.flatnonzero(country == ci)
        doms = pools.EMAIL_DOMAINS[c]
        p = np.array([w for _, w in doms])
        domain[idx] = np.array([d for d, _ in doms], dtype=object)[
            rng.choice(len(doms), size=len(idx), p=p / p.sum())
        ]
    style = rng.choice(len(_STYLE_P), size=n, p=_STYLE_P)
    taken: set[str] = set()
    email = unique_emails(_locals(first_tok, last_tok, byear, style), domain, taken)
    alt_style = (style + rng.integers(1, len(_STYLE_P), size=n)) % len(_STYLE_P)
    alt_domain = np.array(pools.SECONDARY_DOMAINS, dtype=object)[
        rng.integers(0, len(pools.SECONDARY_DOMAINS), size=n)
    ]
    email_alt = unique_emails(_locals(first_tok, last_tok, byear, alt_style), alt_domain, taken)

    # phones: distinct valid numbers per country, never a store's number
    store_nsn, _ = store_phones()
    store_country = np.array([s[1] for s in STORES])
    phone_nsn = np.zeros(n, dtype=np.int64)
    phone_alen = np.zeros(n, dtype=np.int8)
    for ci, c in enumerate(COUNTRIES):
        idx = np.flatnonzero(country == ci)
        if len(idx):
            nsn, alen = valid_pool(c, rng, len(idx), exclude=set(store_nsn[store_country == ci].tolist()))
            phone_nsn[idx], phone_alen[idx] = nsn, alen

    # behaviour
    horizon = float(cal.n_days)
    acct_type = rng.choice(4, size=n, p=ACCT_TYPE_PROBS).astype(np.int8)
    chan_pref = rng.gamma(CHAN_ALPHA[acct_type])
    chan_pref /= chan_pref.sum(axis=1, keepdims=True)
    alpha = CATEGORY_POPULARITY / CATEGORY_POPULARITY.sum() * 3.0
    cat_pref = rng.gamma(np.broadcast_to(alpha, (n, N_CATEGORIES)))
    cat_pref = np.maximum(cat_pref, 1e-6)
    cat_pref /= cat_pref.sum(axis=1, keepdims=True)
    signup = cal.first_t + rng.random(n) * (horizon - 1.5)
    lam = rng.gamma(1.5, 1.0 / (1.5 * 80.0), size=n) * np.array([0.8, 1.1, 1.0, 1.25])[acct_type]
    hazard = rng.gamma(2.0, 1.0 / (2.0 * 650.0), size=n)
    tau = signup + rng.exponential(1.0, size=n) / hazard
    spend_mean = rng.gamma(3.0, 55.0 / 3.0, size=n) + 5.0
    email_resp = rng.beta(2.0, 6.0, size=n)
    web_is_app = rng.random(n) < chan_pref[:, 1] / (chan_pref[:, 0] + chan_pref[:, 1])

    # home store: a store of the country in the same time zone when there is one
    store_country = np.array([s[1] for s in STORES])
    store_tz = np.array([s[3] for s in STORES])
    tz = cities.tz[city]
    home_store = np.zeros(n, dtype=np.int16)
    for ci in range(len(COUNTRIES)):
        for t in np.unique(tz[country == ci]):
            idx = np.flatnonzero((country == ci) & (tz == t))
            cand = np.flatnonzero((store_country == ci) & (store_tz == t))
            if len(cand) == 0:
                cand = np.flatnonzero(store_country == ci)
            home_store[idx] = cand[rng.integers(0, len(cand), size=len(idx))]

    return Persons(
        n=n,
        country=country,
        city=city,
        tz=tz,
        household=hh.astype(np.int64),
        first_name=first,
        last_name=last,
        birth=birth,
        email=email,
        email_alt=email_alt,
        is_gmail=domain == "gmail.com",
        phone_nsn=phone_nsn,
        phone_alen=phone_alen,
        street_no=hh_street_no[hh],
        street_name=hh_street_name[hh],
        street_type=hh_street_type[hh],
        postcode=hh_postcode[hh],
        signup=signup,
        tau=tau,
        lam=lam,
        spend_mean=spend_mean,
        cat_pref=cat_pref,
        chan_pref=chan_pref,
        email_resp=email_resp,
        age_band=age_band,
        city_tier=cities.tier[city],
        acct_type=acct_type,
        web_is_app=web_is_app,
        home_store=home_store,
    )


def persons_frame(p: Persons, cal: Calendar) -> pd.DataFrame:
    """Ground-truth table of persons (``truth/persons.parquet``)."""
    start = pd.Timestamp(cal.start)
    df = pd.DataFrame(
        {
            "person_id": p.person_ids(),
            "household_id": np.array([f"H{h + 1:07d}" for h in p.household.tolist()], dtype=object),
            "country": np.array(COUNTRIES, dtype=object)[p.country],
            "first_name": p.first_name,
            "last_name": p.last_name,
            "birth_date": pd.to_datetime(p.birth).date,
            "email": p.email,
            "phone_e164": p.phone_e164(),
            "signup_date": (start + pd.to_timedelta(np.floor(p.signup), unit="D")).date,
            "lam": p.lam,
            "dropout_at": start
            + pd.to_timedelta(np.minimum(p.tau, 365.0 * 200) * 86400.0, unit="s").round("s"),
            "spend_mean": p.spend_mean,
        }
    )
    for k, c in enumerate(CATEGORIES):
        df[f"cat_pref_{c}"] = p.cat_pref[:, k]
    for k, c in enumerate(("web", "app", "store")):
        df[f"chan_pref_{c}"] = p.chan_pref[:, k]
    df["email_resp"] = p.email_resp
    df["age_band"] = np.array(AGE_BANDS, dtype=object)[p.age_band]
    df["city_tier"] = p.city_tier.astype(np.int8)
    return df
