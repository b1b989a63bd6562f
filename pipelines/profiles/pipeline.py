"""`cip profiles`: golden records and resolved activity tables (traits are taken from the feature
snapshots: ``features.traits``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from cip.errors import MissingInputError
from cip.lake import Lake
from pipelines.profiles.activity import UNATTRIBUTED_SQL, build_activity
from pipelines.profiles.config import ProfileSettings
from pipelines.profiles.golden import build_profiles

Progress = Callable[[str, int, int], None]


@dataclass
class ProfilesRun:
    customers: int
    tables: dict[str, int]
    unattributed: dict[str, int]


def default_as_of(lake: Lake) -> date:
    """The last day with activity in the lake (traits are as of the end of that day)."""
    con = lake.connect(["events", "pos_lines"])
    parts = [f"SELECT max(ts) AS t FROM {t}" for t in ("events", "pos_lines") if lake.has(t)]
    if not parts:
        return date.today()
    latest = con.sql(" UNION ALL ".join(parts)).df()["t"].max()
    return pd.Timestamp(latest).date()


def run(
    settings: ProfileSettings, *, as_of: date | None = None, progress: Progress | None = None
) -> ProfilesRun:
    lake = Lake(settings.lake_dir)
    if not lake.has("identity_map"):
        raise MissingInputError("identity_map does not exist", fix="run `cip identity run` first")
    step = progress or (lambda *_: None)
    tables = set(lake.table_names())
    con = lake.connect()
    step("golden records", 0, 2)
    profiles = build_profiles(
        con, settings.profiles, has_events="events" in tables, has_crm="crm_customers" in tables
    )
    counts: dict[str, int] = {}
    step("resolved activity", 1, 2)
    for name, relation in build_activity(con, tables).items():
        table = relation.to_arrow_table()
        lake.write_derived(name, table)
        counts[name] = table.num_rows
    unattributed = {}
    if "pos_lines" in tables:
        unattributed = {k: int(con.execute(sql).fetchall()[0][0]) for k, sql in UNATTRIBUTED_SQL.items()}
    lake.write_derived("profiles", profiles)
    counts["profiles"] = len(profiles)
    step("done", 2, 2)
    return ProfilesRun(customers=len(profiles), tables=counts, unattributed=unattributed)
