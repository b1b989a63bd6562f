"""Behaviour simulation with arrays: purchases, baskets, devices, web/app sessions and their events.

Everything is vectorized over all persons at once: per-person counts are drawn, expanded with
``np.repeat`` and filled in columnwise. Times are fractional local days since the calendar start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cip.categories import CATEGORIES, RAW_SPELLINGS
from pipelines.generate.accounts import KIND_STORE, KIND_WEB, Accounts
from pipelines.generate.config import (
    COUNTRY_CURRENCY_IDX,
    DECAY_SCALE_DAYS,
    DECAY_WINDOW_DAYS,
    PRODUCTS_PER_CATEGORY,
    STORES,
    Calendar,
)
from pipelines.generate.people import Persons

#: Raw category spellings, flattened: spelling id = category * SPELLINGS_PER_CATEGORY + j.
SPELLINGS: tuple[str, ...] = tuple(
    s for c in CATEGORIES for s in (RAW_SPELLINGS[c][0], *RAW_SPELLINGS[c][1:], c)
)
SPELLINGS_PER_CATEGORY = len(RAW_SPELLINGS[CATEGORIES[0]]) + 1
_SPELL_P = np.array([0.45, 0.12, 0.12, 0.11, 0.1, 0.1])
#: Typical product price (USD) per category.
CATEGORY_PRICE = np.array([120.0, 45.0, 60.0, 25.0, 50.0, 12.0, 30.0, 15.0])
#: Local price level relative to USD per currency (USD, CAD, GBP, EUR).
PRICE_LEVEL = np.array([1.0, 1.32, 0.82, 0.95])

# event kinds
EV_IDENTIFY, EV_ALIAS, EV_PAGE, EV_VIEWED, EV_ADDED, EV_CHECKOUT, EV_ORDER = range(7)
TRACK_EVENTS = {
    EV_VIEWED: "Product Viewed",
    EV_ADDED: "Product Added",
    EV_CHECKOUT: "Checkout Started",
    EV_ORDER: "Order Completed",
}
#: page names; the last one is only used for sign-up sessions
PAGES: tuple[str, ...] = ("Home", "Category", "Product", "Search", "Cart", "Account", "Sign Up")
SESS_BROWSE, SESS_ORDER, SESS_SIGNUP = 0, 1, 2


def decay(t: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Engagement multiplier: 1 until 60 days before dropout, then exp(-(t-(tau-60))/20)."""
    x = (np.asarray(t) - (np.asarray(tau) - DECAY_WINDOW_DAYS)) / DECAY_SCALE_DAYS
    return np.exp(-np.clip(x, 0.0, None))


def draw_rows(rng: np.random.Generator, probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """One categorical draw per element of ``rows`` from the probability matrix ``probs[rows]``."""
    cum = np.cumsum(probs, axis=1)
    out = np.empty(len(rows), dtype=np.int64)
    step = 2_000_000
    for s in range(0, len(rows), step):
        r = rows[s : s + step]
        c = cum[r]
        u = rng.random(len(r))[:, None] * c[:, -1:]
        out[s : s + step] = np.minimum((u > c).sum(axis=1), probs.shape[1] - 1)
    return out


def draw_products(rng: np.random.Generator, p: Persons, person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(category, global product id) for each entry of ``person``, by category preference."""
    cat = draw_rows(rng, p.cat_pref, person)
    k = np.minimum((rng.pareto(1.2, size=len(person)) * 25).astype(np.int64), PRODUCTS_PER_CATEGORY - 1)
    return cat, cat * PRODUCTS_PER_CATEGORY + k


def draw_spelling(rng: np.random.Generator, cat: np.ndarray) -> np.ndarray:
    """Raw spelling id for each category (mostly the main spelling, sometimes a variant)."""
    return cat * SPELLINGS_PER_CATEGORY + rng.choice(SPELLINGS_PER_CATEGORY, size=len(cat), p=_SPELL_P)


def catalog_prices(rng: np.random.Generator) -> np.ndarray:
    """USD list price of every product (category-typical, log-normal spread)."""
    base = np.repeat(CATEGORY_PRICE, PRODUCTS_PER_CATEGORY)
    return np.round(base * rng.lognormal(0.0, 0.6, size=len(base)), 0) - 0.01


@dataclass
class PersonAccounts:
    """Per-person lookups into the account table."""

    web_acct: np.ndarray  # account index or -1
    store_acct: np.ndarray
    web_created: np.ndarray  # day, inf if none
    store_created: np.ndarray

    @classmethod
    def build(cls, p: Persons, acc: Accounts) -> PersonAccounts:
        web = np.full(p.n, -1, dtype=np.int64)
        store = np.full(p.n, -1, dtype=np.int64)
        wi = np.flatnonzero(acc.kind == KIND_WEB)
        si = np.flatnonzero(acc.kind == KIND_STORE)
        web[acc.person[wi]] = wi
        store[acc.person[si]] = si
        wc = np.full(p.n, np.inf)
        sc = np.full(p.n, np.inf)
        wc[acc.person[wi]] = acc.created[wi]
        sc[acc.person[si]] = acc.created[si]
        return cls(web, store, wc, sc)


@dataclass
class Devices:
    """Devices (one anonymousId each) and which persons use them."""

    owner: np.ndarray
    chan: np.ndarray  # 0 web, 1 app
    dtype: np.ndarray  # index into DEVICE_TYPES
    shared: np.ndarray  # used by two persons of a household (family tablet)
    mem_device: np.ndarray  # membership rows, sorted by person
    mem_offset: np.ndarray  # (n_persons + 1) offsets into membership rows; first row = primary device

    @property
    def n(self) -> int:
        return len(self.owner)

    def pick(self, rng: np.random.Generator, person: np.ndarray, primary_share: float = 0.45) -> np.ndarray:
        """A device for each entry of ``person`` (the primary device more often)."""
        lo = self.mem_offset[person]
        cnt = self.mem_offset[person + 1] - lo
        k = (rng.random(len(person)) * cnt).astype(np.int64)
        k[rng.random(len(person)) < primary_share] = 0
        return self.mem_device[lo + k]

    def primary(self, person: np.ndarray) -> np.ndarray:
        return self.mem_device[self.mem_offset[person]]


def make_devices(rng: np.random.Generator, p: Persons, min_shared: int = 3) -> Devices:
    """1-3 devices per web-account holder, one for anonymous-only visitors, plus family tablets."""
    web = p.has_web
    n_dev = np.where(web, rng.choice([1, 2, 3], size=p.n, p=[0.5, 0.35, 0.15]), 1)
    owner = np.repeat(np.arange(p.n), n_dev)
    app_share = p.chan_pref[:, 1] / (p.chan_pref[:, 0] + p.chan_pref[:, 1])
    chan = (rng.random(len(owner)) < app_share[owner]).astype(np.int8)
    dtype = np.where(
        chan == 0,
        rng.choice([0, 2, 1], size=len(owner), p=[0.6, 0.3, 0.1]),
        rng.choice([2, 1], size=len(owner), p=[0.8, 0.2]),
    ).astype(np.int8)
    shared = np.zeros(len(owner), dtype=bool)

    # family tablets: households with two web-account holders share one tablet
    wp = np.flatnonzero(web)
    wp = wp[np.lexsort((wp, p.household[wp]))]
    hh = p.household[wp]
    starts = np.flatnonzero(np.r_[True, hh[1:] != hh[:-1]])
    sizes = np.diff(np.r_[starts, len(wp)])
    cand = starts[sizes >= 2]
    pick = rng.random(len(cand)) < 0.3
    if pick.sum() < min(min_shared, len(cand)):
        pick[: min(min_shared, len(cand))] = True
    a = wp[cand[pick]]
    b = wp[cand[pick] + 1]
    tab_ids = len(owner) + np.arange(len(a))
    owner = np.concatenate([owner, a])
    chan = np.concatenate([chan, (rng.random(len(a)) < 0.5).astype(np.int8)])
    dtype = np.concatenate([dtype, np.ones(len(a), dtype=np.int8)])
    shared = np.concatenate([shared, np.ones(len(a), dtype=bool)])

    mem_person = np.concatenate([np.repeat(np.arange(p.n), n_dev), a, b])
    mem_device = np.concatenate([np.arange(int(n_dev.sum())), tab_ids, tab_ids])
    order = np.argsort(mem_person, kind="stable")  # own devices first, so row 0 of a person = primary
    mem_person, mem_device = mem_person[order], mem_device[order]
    offset = np.searchsorted(mem_person, np.arange(p.n + 1))
    return Devices(owner, chan, dtype, shared, mem_device, offset)


@dataclass
class Orders:
    """All purchases (organic and campaign responses)."""

    person: np.ndarray
    t: np.ndarray  # local day
    channel: np.ndarray  # 0 web, 1 app, 2 store
    device: np.ndarray  # -1 for store
    store: np.ndarray  # -1 for online
    offer: np.ndarray  # -1 organic, else the offer that triggered it
    currency: np.ndarray  # index into CURRENCIES

    @property
    def n(self) -> int:
        return len(self.person)


def organic_purchase_times(
    rng: np.random.Generator, p: Persons, cal: Calendar
) -> tuple[np.ndarray, np.ndarray]:
    """First purchase at sign-up, then a Poisson process of rate lambda until dropout / as_of."""
    end = np.minimum(p.tau, cal.last_t)
    dur = np.maximum(end - p.signup, 0.0)
    cnt = rng.poisson(p.lam * dur)
    rep = np.repeat(np.arange(p.n), cnt)
    t = p.signup[rep] + rng.random(len(rep)) * dur[rep]
    return np.concatenate([np.arange(p.n), rep]), np.concatenate([p.signup, t])


def make_orders(
    rng: np.random.Generator,
    p: Persons,
    pa: PersonAccounts,
    dev: Devices,
    cal: Calendar,
    person: np.ndarray,
    t: np.ndarray,
    offer: np.ndarray,
) -> Orders:
    """Decide channel, store / device and time of day of each purchase; drop those after dropout."""
    online_share = p.chan_pref[person, 0] + p.chan_pref[person, 1]
    online = (rng.random(len(person)) < online_share) & (pa.web_created[person] <= t)
    n = len(person)
    # stores: home store mostly, sometimes another store of the same country
    store_country = np.array([s[1] for s in STORES])
    other = np.empty(n, dtype=np.int64)
    for ci in range(5):
        idx = np.flatnonzero(p.country[person] == ci)
        cand = np.flatnonzero(store_country == ci)
        other[idx] = cand[rng.integers(0, len(cand), size=len(idx))]
    store = np.where(rng.random(n) < 0.85, p.home_store[person], other)
    store_t = np.floor(t) + (9.0 + rng.random(n) * 12.0) / 24.0
    t = np.where(online, t, store_t)
    device = np.where(online, dev.pick(rng, person), -1)
    channel = np.where(online, dev.chan[np.maximum(device, 0)], 2).astype(np.int8)
    store = np.where(online, -1, store)
    keep = (t < np.minimum(p.tau[person], cal.last_t)) & (t >= cal.first_t)
    order = np.lexsort((person[keep], t[keep]))
    sel = np.flatnonzero(keep)[order]
    return Orders(
        person=person[sel],
        t=t[sel],
        channel=channel[sel],
        device=device[sel],
        store=store[sel].astype(np.int64),
        offer=offer[sel].astype(np.int8),
        currency=COUNTRY_CURRENCY_IDX[p.country[person[sel]]].astype(np.int8),
    )


@dataclass
class Lines:
    """Basket lines of all orders, grouped by order (``offset`` has n_orders + 1 entries)."""

    order: np.ndarray
    line: np.ndarray  # 1-based
    cat: np.ndarray
    product: np.ndarray
    spelling: np.ndarray
    qty: np.ndarray
    unit_price: np.ndarray  # local currency
    offset: np.ndarray

    def revenue(self) -> np.ndarray:
        """Order totals (local currency), one per order."""
        tot = np.bincount(self.order, weights=self.unit_price * self.qty, minlength=len(self.offset) - 1)
        return np.round(tot, 2)


def make_lines(rng: np.random.Generator, p: Persons, orders: Orders, fx: np.ndarray) -> Lines:
    """1-4 lines per order; order value ~ Gamma(4, spend_mean/4) USD split over the lines."""
    n_lines = rng.choice([1, 2, 3, 4], size=orders.n, p=[0.55, 0.27, 0.12, 0.06])
    order = np.repeat(np.arange(orders.n), n_lines)
    offset = np.concatenate([[0], np.cumsum(n_lines)])
    line = np.arange(len(order)) - offset[order] + 1
    person = orders.person[order]
    cat, product = draw_products(rng, p, person)
    qty = rng.choice([1, 2, 3], size=len(order), p=[0.85, 0.11, 0.04])
    value = rng.gamma(4.0, p.spend_mean[orders.person] / 4.0)
    value = np.where(orders.offer == 1, value * 0.9, value)  # discount_10
    w = rng.gamma(2.0, size=len(order))
    w /= np.bincount(order, weights=w)[order]
    day = np.clip(orders.t.astype(np.int64), 0, fx.shape[0] - 1)
    rate = fx[day, orders.currency][order]
    unit = np.maximum(np.round(value[order] * w / qty / rate, 2), 0.5)
    return Lines(order, line, cat, product, draw_spelling(rng, cat), qty, unit, offset)


@dataclass
class Sessions:
    """Web/app sessions (browse, order, sign-up)."""

    person: np.ndarray
    device: np.ndarray
    t: np.ndarray  # local day of the first event
    kind: np.ndarray  # SESS_*
    order: np.ndarray  # order index for order sessions, else -1
    logged_in: np.ndarray
    identify: np.ndarray

    @property
    def n(self) -> int:
        return len(self.person)


def browse_rate(p: Persons) -> np.ndarray:
    """Baseline browsing sessions per day, tied to purchase rate and online preference."""
    online = p.chan_pref[:, 0] + p.chan_pref[:, 1]
    return np.where(p.has_web, 1.0 * p.lam * (0.2 + online) + 1.0 / 300.0, (0.2 + online) / 400.0)


def make_sessions(
    rng: np.random.Generator, p: Persons, pa: PersonAccounts, dev: Devices, orders: Orders, cal: Calendar
) -> Sessions:
    """Browse sessions (thinned by pre-dropout decay), one session per online order, sign-up sessions."""
    end = np.minimum(p.tau, cal.last_t)
    dur = np.maximum(end - p.signup, 0.0)
    cnt = rng.poisson(browse_rate(p) * dur)
    bp = np.repeat(np.arange(p.n), cnt)
    bt = p.signup[bp] + rng.random(len(bp)) * dur[bp]
    keep = rng.random(len(bp)) < decay(bt, p.tau[bp])
    bp, bt = bp[keep], bt[keep]
    bdev = dev.pick(rng, bp)
    early_shared = dev.shared[bdev] & (bt < pa.web_created[bp])
    bdev = np.where(early_shared, dev.primary(bp), bdev)

    online = np.flatnonzero(orders.channel < 2)
    wacc = np.flatnonzero(pa.web_acct >= 0)
    person = np.concatenate([bp, orders.person[online], wacc])
    device = np.concatenate([bdev, orders.device[online], dev.primary(wacc)])
    order_t = np.maximum(orders.t[online] - 0.004, pa.web_created[orders.person[online]])
    t = np.concatenate([bt, order_t, pa.web_created[wacc]])
    kind = np.concatenate(
        [np.full(len(bp), SESS_BROWSE), np.full(len(online), SESS_ORDER), np.full(len(wacc), SESS_SIGNUP)]
    ).astype(np.int8)
    order = np.concatenate([np.full(len(bp), -1), online, np.full(len(wacc), -1)])
    can_login = pa.web_created[person] <= t + 1e-9
    logged_in = can_login & ((kind != SESS_BROWSE) | dev.shared[device] | (rng.random(len(person)) < 0.7))

    # identify on sign-up, on the first logged-in session of every device, and on some later logins
    srt = np.lexsort((t, device, person))
    li = srt[logged_in[srt]]
    first = np.ones(len(li), dtype=bool)
    first[1:] = (person[li][1:] != person[li][:-1]) | (device[li][1:] != device[li][:-1])
    identify = logged_in & (rng.random(len(person)) < 0.25)
    identify[li[first]] = True
    identify |= kind == SESS_SIGNUP
    ordr = np.lexsort((kind, t))
    return Sessions(
        person[ordr], device[ordr], t[ordr], kind[ordr], order[ordr], logged_in[ordr], identify[ordr]
    )


@dataclass
class Events:
    """Segment events, columnar. ``msg`` numbers are unique and ordered by session then position."""

    session: np.ndarray
    kind: np.ndarray
    ts_local: np.ndarray  # local wall-clock epoch ms
    page: np.ndarray  # page name id (page events)
    cat: np.ndarray
    product: np.ndarray
    spelling: np.ndarray
    price: np.ndarray
    qty: np.ndarray

    @property
    def n(self) -> int:
        return len(self.session)


def expand_events(
    rng: np.random.Generator,
    p: Persons,
    s: Sessions,
    orders: Orders,
    lines: Lines,
    prices_usd: np.ndarray,
    cal: Calendar,
) -> Events:
    """Turn sessions into events: identify/alias, pages, product views/adds, checkout, order."""
    n = s.n
    browse = s.kind == SESS_BROWSE
    is_order = s.kind == SESS_ORDER
    n_lines = np.where(is_order, np.diff(lines.offset)[np.maximum(s.order, 0)], 0)
    c_alias = (s.kind == SESS_SIGNUP).astype(np.int64)
    c_ident = s.identify.astype(np.int64)
    c_pages = np.where(s.kind == SESS_SIGNUP, 1, 1 + rng.poisson(np.where(browse, 0.7, 0.4)))
    c_views = np.where(browse, rng.poisson(1.0, size=n), n_lines)
    c_adds = np.where(browse, (c_views > 0) & (rng.random(n) < 0.3), n_lines).astype(np.int64)
    c_chk = np.where(browse, (c_adds > 0) & (rng.random(n) < 0.35), is_order).astype(np.int64)
    c_ord = is_order.astype(np.int64)
    bounds = np.cumsum(np.stack([c_alias, c_ident, c_pages, c_views, c_adds, c_chk, c_ord]), axis=0)
    counts = bounds[-1]
    sess = np.repeat(np.arange(n), counts)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(sess)) - start[sess]
    kind_order = np.array(
        [EV_ALIAS, EV_IDENTIFY, EV_PAGE, EV_VIEWED, EV_ADDED, EV_CHECKOUT, EV_ORDER], dtype=np.int8
    )
    slot = np.zeros(len(sess), dtype=np.int8)
    for j in range(len(bounds) - 1):
        slot += pos >= bounds[j][sess]
    kind = kind_order[slot]
    m = len(sess)

    # timestamps: session start plus cumulative gaps of a few seconds to a minute
    gaps = (2000 + rng.exponential(35000, size=m)).astype(np.int64)
    gaps[start] = 0
    cum = np.cumsum(gaps)
    cum -= cum[start][sess]
    ts_local = cal.start_ms + np.round(s.t[sess] * 86_400_000).astype(np.int64) + cum

    # products: order sessions use the basket lines, browse sessions draw by preference
    person = s.person[sess]
    cat, product = draw_products(rng, p, person)
    spelling = draw_spelling(rng, cat)
    cur = COUNTRY_CURRENCY_IDX[p.country[person]]
    price = np.round(prices_usd[product] * PRICE_LEVEL[cur], 0) - 0.01
    qty = np.ones(m, dtype=np.int64)
    ordsess = is_order[sess]
    first_view = bounds[2][sess]
    li = np.flatnonzero(ordsess & ((kind == EV_VIEWED) | (kind == EV_ADDED)))
    k = pos[li] - first_view[li]
    k = np.where(kind[li] == EV_ADDED, k - n_lines[sess[li]], k)
    lidx = lines.offset[s.order[sess[li]]] + k
    cat[li], product[li], spelling[li] = lines.cat[lidx], lines.product[lidx], lines.spelling[lidx]
    price[li], qty[li] = lines.unit_price[lidx], lines.qty[lidx]
    # browse adds repeat the product viewed just before
    ba = np.flatnonzero(~ordsess & (kind == EV_ADDED))
    src = ba - c_views[sess[ba]]
    cat[ba], product[ba], spelling[ba], price[ba] = cat[src], product[src], spelling[src], price[src]
    # checkout value: order revenue or the added product's price
    ck = np.flatnonzero(kind == EV_CHECKOUT)
    rev = lines.revenue()
    price[ck] = np.where(ordsess[ck], rev[np.maximum(s.order[sess[ck]], 0)], price[ck - 1])
    oc = np.flatnonzero(kind == EV_ORDER)
    price[oc] = rev[s.order[sess[oc]]]

    # page names: landing page, then a mix; sign-up sessions land on the sign-up page
    page = rng.choice(6, size=m, p=[0.2, 0.25, 0.3, 0.1, 0.08, 0.07]).astype(np.int8)
    landing = pos == bounds[1][sess]
    page[landing] = rng.choice([0, 1, 2], size=int(landing.sum()), p=[0.4, 0.3, 0.3])
    page[(s.kind[sess] == SESS_SIGNUP) & (kind == EV_PAGE)] = 6
    return Events(
        sess, kind, ts_local, page, cat.astype(np.int8), product, spelling.astype(np.int16), price, qty
    )
