"""BTYD baselines for the model benchmarks: BG/NBD (+ Gamma-Gamma) fitted with ``lifetimes``.

Shared by ``bench_models.py`` (synthetic world, per test cutoff) and ``cdnow.py`` (real data).
Time is measured in days relative to a cutoff (day 0 = the cutoff day, not observed); purchases on the
same day are merged into one transaction, as is usual for BTYD models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


def rfm(
    orders: pd.DataFrame, cutoff: pd.Timestamp, key: str = "customer_id", amount: str = "amount"
) -> pd.DataFrame:
    """Per customer with an order before ``cutoff``: ``frequency`` (repeat purchase days), ``recency``
    (days from the first to the last purchase day), ``T`` (days from the first purchase day to the
    last day before the cutoff) and ``monetary_value`` (mean spend of the repeat purchase days; 0 without repeats)."""
    ts = pd.to_datetime(orders["ts"], utc=True)
    cut = pd.Timestamp(cutoff)
    cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
    before = (ts < cut).to_numpy()
    o = pd.DataFrame(
        {
            key: orders[key].to_numpy()[before],
            # whole days before the cutoff: -1 = the day before it
            "day": np.floor((ts[before] - cut).dt.total_seconds().to_numpy() / 86400.0).astype(np.int64),
            "amount": orders[amount].to_numpy(dtype=float)[before],
        }
    )
    daily = o.groupby([key, "day"], sort=True)["amount"].sum().reset_index()
    g = daily.groupby(key, sort=True)
    first = g["day"].min()
    last = g["day"].max()
    n = g.size()
    total = g["amount"].sum()
    first_amount = daily.drop_duplicates(key, keep="first").set_index(key)["amount"]
    freq = (n - 1).astype(float)
    repeat_spend = total - first_amount.reindex(total.index)
    monetary = np.where(freq > 0, repeat_spend / freq.where(freq > 0, 1.0), 0.0)
    return pd.DataFrame(
        {
            "frequency": freq,
            "recency": (last - first).astype(float),
            # lifetimes' convention with observation_period_end = the day before the cutoff
            "T": (-first - 1).astype(float),
            "monetary_value": np.clip(monetary, 0.0, None),
            "first_amount": first_amount.reindex(total.index).to_numpy(),
            "total_spend": total,
        }
    )


@dataclass
class Btyd:
    """A fitted BG/NBD (transactions) and Gamma-Gamma (spend per transaction) pair."""

    bgf: object
    ggf: object | None

    def p_alive(self, x: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.bgf.conditional_probability_alive(x["frequency"], x["recency"], x["T"]), float)

    def expected_purchases(self, x: pd.DataFrame, days: float) -> np.ndarray:
        return np.asarray(
            self.bgf.conditional_expected_number_of_purchases_up_to_time(
                days, x["frequency"], x["recency"], x["T"]
            ),
            float,
        )

    def p_no_purchase(self, x: pd.DataFrame, days: float) -> np.ndarray:
        """P(no purchase in the next ``days``): dead, or alive with no Poisson event in the window.

        Given alive, the purchase rate's posterior is Gamma(r + x, alpha + T), and a customer only drops
        out right after a purchase, so P(0 | alive) = ((alpha + T) / (alpha + T + days)) ** (r + x)."""
        p = self.bgf.params_
        alive = self.p_alive(x)
        a_t = p["alpha"] + x["T"].to_numpy(float)
        zero = (a_t / (a_t + days)) ** (p["r"] + x["frequency"].to_numpy(float))
        return (1.0 - alive) + alive * zero

    def expected_value(self, x: pd.DataFrame) -> np.ndarray:
        """Gamma-Gamma expected spend per transaction (the population mean without repeats)."""
        if self.ggf is None:
            return np.full(len(x), float(x.loc[x["frequency"] > 0, "monetary_value"].mean()))
        return np.asarray(
            self.ggf.conditional_expected_average_profit(x["frequency"], x["monetary_value"]), float
        )

    def expected_spend(self, x: pd.DataFrame, days: float) -> np.ndarray:
        return self.expected_purchases(x, days) * self.expected_value(x)


def fit_btyd(x: pd.DataFrame, penalizer: float = 0.0, gamma_gamma: bool = True) -> Btyd:
    """Fit BG/NBD on every customer and Gamma-Gamma on those with repeat purchases (retrying with a
    small penalizer if the unpenalized fit does not converge)."""
    import warnings

    from lifetimes import BetaGeoFitter, GammaGammaFitter

    bgf = None
    for pen in (penalizer, 1e-3, 1e-2):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                bgf = BetaGeoFitter(penalizer_coef=pen).fit(x["frequency"], x["recency"], x["T"])
            break
        except Exception:  # noqa: BLE001 - lifetimes raises ConvergenceError or numeric errors
            bgf = None
    if bgf is None:
        raise RuntimeError("BG/NBD did not converge")
    ggf = None
    if gamma_gamma:
        rep = x[(x["frequency"] > 0) & (x["monetary_value"] > 0)]
        for pen in (penalizer, 1e-3, 1e-2):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    ggf = GammaGammaFitter(penalizer_coef=pen).fit(rep["frequency"], rep["monetary_value"])
                break
            except Exception:  # noqa: BLE001
                ggf = None
    return Btyd(bgf, ggf)
