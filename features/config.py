"""Knobs of the feature store (snapshot cadence and history, materialization chunking)."""

from __future__ import annotations

from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict, Field

from pipelines.profiles.config import ProfileSettings


class FeatureConfig(BaseModel):
    """Snapshot grid and materialization settings (``settings.features``)."""

    model_config = ConfigDict(extra="forbid")

    cadence_days: int = Field(7, ge=1, description="Days between two snapshots.")
    history_days: int = Field(182, ge=0, description="How far back snapshots go from the latest one.")
    anchor_weekday: int = Field(
        0, ge=0, le=6, description="Weekday (0 = Monday) the weekly grid is aligned to, so dates are stable."
    )
    include_as_of: bool = Field(
        True, description="Also snapshot the day after the last activity, so the online store is fresh."
    )
    label_cadence_months: int = Field(
        3,
        ge=1,
        description="Months between two long-history snapshots (first day of a month, UTC): the cutoffs "
        "models train and are tested on.",
    )
    label_history_months: int = Field(
        27,
        ge=0,
        description="How far back the long-history snapshots go (0: none). Long label windows (a year "
        "of spend) need cutoffs more than a year before the last activity.",
    )
    ttl_days: int = Field(
        14,
        ge=1,
        description="Feast TTL of the batch views: how old a snapshot may be when joined to a label "
        "(keep above the cadence; small values also keep point-in-time joins cheap).",
    )
    chunk_customers: int = Field(25_000, ge=100, description="Customers per materialization chunk.")
    workers: int = Field(2, ge=1, description="Processes that encode online rows while the writer writes.")

    def snapshot_dates(self, last_activity: date, first_activity: date | None = None) -> list[date]:
        """The snapshot grid ending at the day after ``last_activity``.

        Weekly (``cadence_days``) dates aligned to ``anchor_weekday``, going back ``history_days``, plus
        the as-of date itself when ``include_as_of``. Dates before ``first_activity`` are dropped.
        """
        as_of = last_activity + timedelta(days=1)
        if self.cadence_days == 7:
            end = as_of - timedelta(days=(as_of.weekday() - self.anchor_weekday) % 7)
        else:
            end = date.fromordinal(as_of.toordinal() - (as_of.toordinal() % self.cadence_days))
        start = as_of - timedelta(days=self.history_days)
        dates = []
        d = end
        while d >= start:
            dates.append(d)
            d -= timedelta(days=self.cadence_days)
        if self.include_as_of and as_of not in dates:
            dates.append(as_of)
        dates = sorted(set(dates) | set(self.month_dates(as_of)))
        if first_activity is not None:
            dates = [d for d in dates if d > first_activity]
        return dates

    def month_dates(self, as_of: date) -> list[date]:
        """First days of months, every ``label_cadence_months`` back from the month of ``as_of``
        (``as_of`` included when it is a first of month), covering ``label_history_months``."""
        if self.label_history_months == 0:
            return []
        out: list[date] = []
        k0 = as_of.year * 12 + as_of.month - 1
        for back in range(0, self.label_history_months + 1, self.label_cadence_months):
            y, m = divmod(k0 - back, 12)
            out.append(date(y, m + 1, 1))
        return sorted(out)


class FeatureSettings(ProfileSettings):
    """The settings the feature stage reads: core paths, its ``features`` section and the profiles
    section it builds on (RFM bins of the traits)."""

    features: FeatureConfig = Field(default_factory=FeatureConfig)
