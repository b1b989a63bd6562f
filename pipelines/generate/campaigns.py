"""Monthly campaigns: randomized offers, e-mail engagement and heterogeneous purchase responses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.generate.accounts import Accounts
from pipelines.generate.behaviour import decay
from pipelines.generate.config import OFFER_PROBS, OFFERS, RESPONSE_WINDOW_DAYS, Calendar
from pipelines.generate.people import Persons

EMAIL_TYPES: tuple[str, ...] = ("send", "open", "click", "unsubscribe", "bounce")
EXPOSURE_CHANNELS: tuple[str, ...] = ("email", "app")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def response_probabilities(p: Persons) -> np.ndarray:
    """True P(extra purchase within 14 days | alive, offer), shape (n_persons, 5) in OFFERS order.

    base: frequent, e-mail-responsive buyers respond more. Uplifts are heterogeneous:
    discount_10 helps low spenders (hurts high spenders), free_shipping helps web/app lovers,
    double_points helps loyalty members who like the store, new_arrivals helps fashion/electronics fans.
    """
    base = -3.3 + 0.55 * np.log(p.lam * 60.0 + 1e-3) + 2.0 * (p.email_resp - 0.25)
    low = _sigmoid((np.log(45.0) - np.log(p.spend_mean)) / 0.3)
    online = p.chan_pref[:, 0] + p.chan_pref[:, 1]
    store = p.chan_pref[:, 2]
    fashion_tech = p.cat_pref[:, 0] + p.cat_pref[:, 1]
    uplift = np.stack(
        [
            np.zeros(p.n),
            1.3 * low - 0.6 * (1.0 - low),
            1.5 * online - 0.7,
            1.0 * p.has_store + 0.9 * store - 0.7,
            2.4 * fashion_tech - 0.8,
        ],
        axis=1,
    )
    return _sigmoid(base[:, None] + uplift)


@dataclass
class CampaignLog:
    """Exposures, e-mail events and response purchases of all campaigns."""

    campaign_day: np.ndarray  # local day of each campaign
    exp_campaign: np.ndarray
    exp_acct: np.ndarray
    exp_offer: np.ndarray
    exp_prob: np.ndarray
    exp_t: np.ndarray  # UTC day offset
    exp_channel: np.ndarray
    em_acct: np.ndarray
    em_type: np.ndarray
    em_campaign: np.ndarray
    em_t: np.ndarray
    resp_person: np.ndarray
    resp_t: np.ndarray
    resp_offer: np.ndarray


def run_campaigns(rng: np.random.Generator, p: Persons, acc: Accounts, cal: Calendar) -> CampaignLog:
    """Roughly monthly campaigns to random subsets of consenting accounts, with logged offers."""
    horizon = float(cal.n_days)
    months = cal.month_starts()
    days = np.array([cal.day_of(m) for m in months]) + rng.uniform(2.0, 20.0, size=len(months))
    days = days[days < horizon - 2.0]
    probs = response_probabilities(p)
    suppressed = np.zeros(acc.n, dtype=bool)
    base_ok = acc.consent_email & acc.esp_ok
    exp_parts: list[tuple[np.ndarray, ...]] = []
    em_parts: list[tuple[np.ndarray, ...]] = []
    resp_parts: list[tuple[np.ndarray, ...]] = []
    for k, d in enumerate(days):
        elig = np.flatnonzero(base_ok & ~suppressed & (acc.created < d))
        tgt = elig[rng.random(len(elig)) < rng.uniform(0.25, 0.45)]
        m = len(tgt)
        offer = rng.choice(len(OFFERS), size=m, p=OFFER_PROBS)
        t_exp = np.floor(d) + (14.0 + rng.random(m) * 2.0) / 24.0
        chan = ((acc.signup_channel[tgt] == 1) & (rng.random(m) < 0.4)).astype(np.int8)
        person = acc.person[tgt]
        tau = p.tau[person]
        alive = tau > t_exp
        responded = alive & (rng.random(m) < probs[person, offer])
        eng = decay(t_exp, tau)
        email = chan == 0
        bounce = email & ~alive & (t_exp - tau > 365.0) & (rng.random(m) < 0.08)
        p_open = np.where(alive, np.minimum(0.95, 1.6 * p.email_resp[person] * eng), 0.01)
        opened = email & ~bounce & (responded | (rng.random(m) < p_open))
        t_open = t_exp + rng.exponential(0.5, size=m)
        clicked = opened & (responded | (rng.random(m) < 0.1 + 0.3 * p.email_resp[person] * eng))
        t_click = t_open + rng.exponential(0.004, size=m)
        p_unsub = np.where(alive & (eng > 0.5), 0.004, 0.03)
        unsub = opened & ~responded & (rng.random(m) < p_unsub)
        suppressed[tgt[unsub | bounce]] = True

        exp_parts.append((np.full(m, k), tgt, offer, OFFER_PROBS[offer], t_exp, chan))
        for typ, mask, tt in (
            (0, email, t_exp),
            (1, opened, t_open),
            (2, clicked, t_click),
            (3, unsub, t_click + 0.001),
            (4, bounce, t_exp + 0.0005),
        ):
            sel = np.flatnonzero(mask & (tt < cal.last_t))
            em_parts.append((tgt[sel], np.full(len(sel), typ, np.int8), np.full(len(sel), k), tt[sel]))
        base_t = np.where(clicked, t_click, t_exp)
        t_resp = base_t + rng.random(m) * np.maximum(t_exp + RESPONSE_WINDOW_DAYS - base_t, 0.01)
        ok = np.flatnonzero(responded & (t_resp < np.minimum(tau, cal.last_t)))
        resp_parts.append((person[ok], t_resp[ok], offer[ok]))

    def cat(parts: list[tuple[np.ndarray, ...]], i: int) -> np.ndarray:
        return np.concatenate([x[i] for x in parts]) if parts else np.zeros(0)

    return CampaignLog(
        campaign_day=days,
        exp_campaign=cat(exp_parts, 0).astype(np.int64),
        exp_acct=cat(exp_parts, 1).astype(np.int64),
        exp_offer=cat(exp_parts, 2).astype(np.int8),
        exp_prob=cat(exp_parts, 3),
        exp_t=cat(exp_parts, 4),
        exp_channel=cat(exp_parts, 5).astype(np.int8),
        em_acct=cat(em_parts, 0).astype(np.int64),
        em_type=cat(em_parts, 1).astype(np.int8),
        em_campaign=cat(em_parts, 2).astype(np.int64),
        em_t=cat(em_parts, 3),
        resp_person=cat(resp_parts, 0).astype(np.int64),
        resp_t=cat(resp_parts, 1),
        resp_offer=cat(resp_parts, 2).astype(np.int8),
    )
