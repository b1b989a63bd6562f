"""Constants and the calendar of the synthetic world (countries, stores, offers, reason codes)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from pydantic import BaseModel, Field

from cip.categories import CATEGORIES
from cip.settings import CoreSettings

COUNTRIES: tuple[str, ...] = ("US", "CA", "GB", "DE", "FR")
COUNTRY_WEIGHTS: tuple[float, ...] = (0.45, 0.10, 0.20, 0.15, 0.10)
COUNTRY_CURRENCY: tuple[str, ...] = ("USD", "CAD", "GBP", "EUR", "EUR")
COUNTRY_CALLING_CODE: tuple[int, ...] = (1, 1, 44, 49, 33)
CURRENCIES: tuple[str, ...] = ("USD", "CAD", "GBP", "EUR")
#: Index into CURRENCIES for each country.
COUNTRY_CURRENCY_IDX: np.ndarray = np.array([CURRENCIES.index(c) for c in COUNTRY_CURRENCY], dtype=np.int8)
FX_CURRENCIES: tuple[str, ...] = ("EUR", "GBP", "CAD")
FX_MEAN: dict[str, float] = {"EUR": 1.08, "GBP": 1.27, "CAD": 0.74}

TIMEZONES: tuple[str, ...] = (
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Toronto",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Paris",
)

#: (store_id, country index, city name, timezone index, sloppy clerk: types the store phone)
STORES: tuple[tuple[str, int, str, int, bool], ...] = (
    ("S101", 0, "New York", 0, True),
    ("S102", 0, "Boston", 0, False),
    ("S103", 0, "Chicago", 1, False),
    ("S104", 0, "Dallas", 1, False),
    ("S105", 0, "Los Angeles", 2, True),
    ("S106", 0, "Seattle", 2, False),
    ("S201", 1, "Toronto", 3, True),
    ("S202", 1, "Montreal", 3, False),
    ("S203", 1, "Ottawa", 3, False),
    ("S301", 2, "London", 4, True),
    ("S302", 2, "Manchester", 4, False),
    ("S303", 2, "Birmingham", 4, False),
    ("S304", 2, "Leeds", 4, False),
    ("S401", 3, "Berlin", 5, True),
    ("S402", 3, "Hamburg", 5, False),
    ("S403", 3, "München", 5, False),
    ("S404", 3, "Köln", 5, False),
    ("S501", 4, "Paris", 6, True),
    ("S502", 4, "Lyon", 6, False),
    ("S503", 4, "Marseille", 6, False),
)

CHANNELS: tuple[str, ...] = ("web", "app", "store")
DEVICE_TYPES: tuple[str, ...] = ("desktop", "tablet", "mobile")
#: ``context.locale`` a device reports, per country of its owner (the second is a minority
#: language: French in Canada, English elsewhere); some devices report none.
DEVICE_LOCALES: tuple[tuple[str, str], ...] = (
    ("en-US", "es-US"),
    ("en-CA", "fr-CA"),
    ("en-GB", "pl-GB"),
    ("de-DE", "en-DE"),
    ("fr-FR", "en-FR"),
)
DEVICE_LOCALE_SECOND_SHARE = 0.2
DEVICE_NO_LOCALE_SHARE = 0.08
AGE_BANDS: tuple[str, ...] = ("18-24", "25-34", "35-44", "45-54", "55-64", "65+")
N_CATEGORIES = len(CATEGORIES)
PRODUCTS_PER_CATEGORY = 400

OFFERS: tuple[str, ...] = ("no_offer", "discount_10", "free_shipping", "double_points", "new_arrivals")
OFFER_PROBS: np.ndarray = np.array([0.3, 0.175, 0.175, 0.175, 0.175])
RESPONSE_WINDOW_DAYS = 14.0

PLACEHOLDER_EMAILS: tuple[str, ...] = ("test@test.com", "noemail@example.com", "none@none.com")

EVENT_REASONS: tuple[str, ...] = (
    "malformed_json",
    "missing_required",
    "future_timestamp",
    "invalid_amount",
    "unknown_currency",
)
POS_REASONS: tuple[str, ...] = ("missing_required", "invalid_amount", "unknown_currency", "future_timestamp")
CRM_REASONS: tuple[str, ...] = ("missing_required", "future_timestamp")
EMAIL_REASONS: tuple[str, ...] = ("invalid_email", "missing_required")
EXPOSURE_REASONS: tuple[str, ...] = ("missing_required",)

DAY_MS = 86_400_000
DECAY_WINDOW_DAYS = 60.0
DECAY_SCALE_DAYS = 20.0


@dataclass(frozen=True)
class Calendar:
    """The history window: ``start`` (inclusive) to ``as_of`` (inclusive), local days."""

    start: date
    as_of: date

    @classmethod
    def ending(cls, as_of: date, years: int = 3) -> Calendar:
        """Calendar of ``years`` years ending on ``as_of`` (2026-06-30 -> starts 2023-07-01)."""
        try:
            begin = as_of.replace(year=as_of.year - years)
        except ValueError:  # 29 February
            begin = as_of.replace(year=as_of.year - years, day=28)
        return cls(start=date.fromordinal(begin.toordinal() + 1), as_of=as_of)

    @property
    def n_days(self) -> int:
        """Number of days in the history (both ends included)."""
        return (self.as_of - self.start).days + 1

    @property
    def first_t(self) -> float:
        """Earliest simulated activity (02:24 local on the first day, so UTC stays in the history)."""
        return 0.1

    @property
    def last_t(self) -> float:
        """Latest simulated activity (15:36 local on ``as_of``, so UTC stays on or before ``as_of``)."""
        return self.n_days - 0.35

    @property
    def start_ms(self) -> int:
        """Epoch milliseconds of ``start`` at 00:00 (wall clock, read as UTC)."""
        return int(datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC).timestamp() * 1000)

    def day_of(self, d: date) -> float:
        """Days from ``start`` to the beginning of date ``d``."""
        return float((d - self.start).days)

    def month_starts(self) -> list[date]:
        """First day of every month in the history."""
        out = []
        y, m = self.start.year, self.start.month
        while date(y, m, 1) <= self.as_of:
            out.append(date(y, m, 1))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


def stage_rng(seed: int, stage: str) -> np.random.Generator:
    """Independent, reproducible random generator for one named stage of the generator."""
    return np.random.default_rng([seed, zlib.crc32(stage.encode())])


def planted_count(n_customers: int) -> int:
    """How many bad rows of each kind are planted for a world of ``n_customers``."""
    return max(3, n_customers // 1000)


def today() -> date:
    """Today's date in UTC: the default last day of a generated world."""
    return datetime.now(UTC).date()


class GenerateConfig(BaseModel):
    """Defaults for ``cip generate``."""

    customers: int = 100_000
    as_of: date | None = Field(
        None,
        description="Last day of the generated history (default: today, UTC); pin it to reproduce a world.",
    )


class GenerateSettings(CoreSettings):
    """The settings the generator reads: core paths and seed plus its ``generate`` section."""

    generate: GenerateConfig = GenerateConfig()
