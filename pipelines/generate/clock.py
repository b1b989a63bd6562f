"""Time zones (vectorized UTC offsets) and daily FX rates."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from pipelines.generate.config import CURRENCIES, DAY_MS, FX_CURRENCIES, FX_MEAN, TIMEZONES, Calendar

HOUR_MS = 3_600_000


class OffsetTable:
    """UTC offset (minutes) of every time zone for every UTC hour of the history (+ margins).

    DST transitions of the zones used here happen on whole UTC hours, so an hourly table is exact.
    """

    def __init__(self, cal: Calendar):
        self.t0 = cal.start_ms - 3 * DAY_MS
        hours = (cal.n_days + 30) * 24
        idx = pd.date_range(pd.Timestamp(self.t0, unit="ms", tz="UTC"), periods=hours, freq="h")
        naive = idx.tz_localize(None)
        self.table = np.stack(
            [
                ((idx.tz_convert(tz).tz_localize(None) - naive) // pd.Timedelta(minutes=1)).to_numpy()
                for tz in TIMEZONES
            ]
        ).astype(np.int16)
        self.std = np.array([int(self.table[i].min()) for i in range(len(TIMEZONES))], dtype=np.int64)

    def offset(self, utc_ms: np.ndarray, tz: np.ndarray) -> np.ndarray:
        """Offset in minutes of zone ``tz`` at instants ``utc_ms``."""
        h = np.clip((np.asarray(utc_ms) - self.t0) // HOUR_MS, 0, self.table.shape[1] - 1)
        return self.table[np.asarray(tz, dtype=np.int64), h]

    def local_to_utc(self, local_ms: np.ndarray, tz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """UTC instant and offset for a local wall-clock time (ambiguous hours resolved to standard)."""
        guess = np.asarray(local_ms) - self.std[tz] * 60_000
        off = self.offset(guess, tz).astype(np.int64)
        utc = np.asarray(local_ms) - off * 60_000
        off2 = self.offset(utc, tz)
        return utc, off2


def local_ms(cal: Calendar, day: np.ndarray) -> np.ndarray:
    """Local wall-clock epoch milliseconds of fractional days since the calendar start."""
    return cal.start_ms + np.round(np.asarray(day) * DAY_MS).astype(np.int64)


def make_fx(rng: np.random.Generator, cal: Calendar, extra_days: int = 7) -> np.ndarray:
    """Daily ``rate_to_base`` per currency (columns in CURRENCIES order, USD = 1)."""
    n = cal.n_days + extra_days
    out = np.ones((n, len(CURRENCIES)))
    for cur in FX_CURRENCIES:
        mu = np.log(FX_MEAN[cur])
        x = np.empty(n)
        x[0] = mu + rng.normal(0, 0.02)
        shocks = rng.normal(0, 0.004, size=n)
        for t in range(1, n):
            x[t] = x[t - 1] + 0.02 * (mu - x[t - 1]) + shocks[t]
        out[:, CURRENCIES.index(cur)] = np.round(np.exp(x), 6)
    return out


def fx_frame(fx: np.ndarray, cal: Calendar) -> pd.DataFrame:
    """``fx_rates.csv`` rows: date, currency, rate_to_base (EUR, GBP, CAD)."""
    days = [cal.start + timedelta(days=i) for i in range(fx.shape[0])]
    frames = [
        pd.DataFrame(
            {
                "date": [d.isoformat() for d in days],
                "currency": cur,
                "rate_to_base": fx[:, CURRENCIES.index(cur)],
            }
        )
        for cur in FX_CURRENCIES
    ]
    df = pd.concat(frames, ignore_index=True)
    return df.sort_values(["date", "currency"], kind="stable").reset_index(drop=True)
