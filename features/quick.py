"""One customer's served features, read straight from the SQLite online store without Feast.

``cip features show`` is interactive: importing Feast alone takes about three seconds (its
modules are type-checked as they load), far more than the read. When the configured online
store is SQLite (``features/feature_store.yaml``), this module reads the rows Feast's store
holds itself: one statement over the tables of the service's views, the ``Value`` protobufs
decoded by hand (scalars and timestamps: the kinds the catalogue declares), and the request-time
features computed by the same formula as the on-demand view. The names and their order come from
the catalogue (:func:`features.catalog.service_features`), which is what the FeatureService is
built from; ``tests/test_online_store.py`` holds the values to Feast's own read.

Nothing is created: the file is opened read-only, and a missing store is an error that says
which command makes it. Any other online store returns None here (the caller then opens Feast).
"""

from __future__ import annotations

import os
import sqlite3
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cip.errors import MissingInputError
from cip.settings import CoreSettings
from features import catalog as cat
from features.paths import REPO_DIR

#: Online store types whose file this module reads.
SQLITE_TYPES = frozenset({"sqlite", "features.online_store.CipSqliteOnlineStore"})
#: Feast writes a missing timestamp as this ``unix_timestamp_val``.
NULL_TIMESTAMP = -(2**63)


@dataclass
class OnlineRow:
    """One customer's features of one service, in the service's order."""

    values: dict[str, Any]  # the join key first, then every served feature
    found: bool  # the online store holds a row of the customer in at least one view
    snapshot_ts: datetime | None  # event time of the customer's batch rows (the snapshot)
    request_ts: datetime  # the clock of the request-time features


@dataclass(frozen=True)
class OnlineConfig:
    project: str
    path: Path | None  # the SQLite file; None when the online store is not SQLite
    versioned: bool


def online_config(settings: CoreSettings) -> OnlineConfig:
    """The online store of ``feature_store.yaml``, with ``${CIP_FEAST_DIR}`` read as the settings'
    features folder (as ``features.store`` exports it for Feast)."""
    import yaml

    from features.paths import DATA_DIR_ENV, feature_data_dir

    config = yaml.safe_load((REPO_DIR / "feature_store.yaml").read_text()) or {}
    online = config.get("online_store") or {}
    if isinstance(online, str):
        online = {"type": online}
    registry = config.get("registry") or {}
    versioned = bool(isinstance(registry, dict) and registry.get("enable_online_feature_view_versioning"))
    project = str(config.get("project", cat.PROJECT))
    if online.get("type", "sqlite") not in SQLITE_TYPES:
        return OnlineConfig(project, None, versioned)
    folder = str(Path(feature_data_dir(settings)).resolve())
    raw = str(online.get("path", "data/online.db"))
    raw = raw.replace("${" + DATA_DIR_ENV + "}", folder).replace("$" + DATA_DIR_ENV, folder)
    path = Path(os.path.expanduser(os.path.expandvars(raw)))
    return OnlineConfig(project, path if path.is_absolute() else REPO_DIR / path, versioned)


def entity_key(customer_id: str) -> bytes:
    """Feast's v3 serialized key of one customer (as ``features.online.entity_keys``)."""
    from features.online import entity_keys

    return entity_keys([customer_id])[0]


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[i]
        result |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return result, i
        shift += 7


def _signed(value: int, bits: int = 64) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


class UnsupportedValue(ValueError):
    """A value kind this reader does not decode (lists, maps…): Feast's own read answers instead."""


def decode_value(data: bytes | None) -> Any:
    """A serialized ``feast.types.Value`` as the Python value Feast's ``to_dict`` gives."""
    if not data:
        return None
    tag, i = _varint(data, 0)
    field, wire = tag >> 3, tag & 7
    if wire == 0:
        raw, _ = _varint(data, i)
        if field in (3, 4):  # int32_val, int64_val
            return _signed(raw, 32 if field == 3 else 64)
        if field == 7:  # bool_val
            return bool(raw)
        if field == 8:  # unix_timestamp_val
            secs = _signed(raw)
            return None if secs == NULL_TIMESTAMP else datetime.fromtimestamp(secs, tz=UTC)
        if field == 19:  # null_val
            return None
    elif wire == 1 and field == 5:  # double_val
        return struct.unpack_from("<d", data, i)[0]
    elif wire == 5 and field == 6:  # float_val
        return struct.unpack_from("<f", data, i)[0]
    elif wire == 2 and field in (1, 2):  # bytes_val, string_val
        size, i = _varint(data, i)
        chunk = bytes(data[i : i + size])
        return chunk.decode() if field == 2 else chunk
    raise UnsupportedValue(f"value with field {field} (wire type {wire})")


def event_time(raw: Any) -> datetime:
    """A row's ``event_ts`` as Feast's SQLite store returns it (naive UTC stored as local time)."""
    if isinstance(raw, str):
        ts = datetime.fromisoformat(raw)
    else:
        ts = raw if isinstance(raw, datetime) else datetime.fromtimestamp(int(raw))
    return ts.astimezone(UTC) if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def days_between(request_ts: datetime, value: datetime | None) -> float | None:
    """``request_ts - value`` in days, exactly as the on-demand view computes it: both go through
    Feast's ``unix_timestamp_val`` (whole seconds), rounded to four decimals."""
    if value is None:
        return None
    now = int(request_ts.timestamp())
    then = float(int(value.timestamp()))
    return round((now - then) / 86400.0 * 10000.0) / 10000.0


def _views_read(service: str) -> list[str]:
    """Views with an online table the service needs: its batch and stream views, and the views of
    the request-time features' inputs."""
    names = [v for v in cat.SERVICES[service] if cat.VIEWS[v].kind != "on_demand"]
    if cat.RECENCY.name in cat.SERVICES[service]:
        names += [cat.FEATURES[src].view for src, _ in cat.ON_DEMAND_DAYS.values()]
    return list(dict.fromkeys(names))


def read_online(
    settings: CoreSettings, service: str, customer_id: str, request_ts: datetime
) -> OnlineRow | None:
    """``service``'s features of one customer from the SQLite online store; None when the online
    store is not SQLite or holds a value kind this reader does not decode."""
    config = online_config(settings)
    if config.path is None:
        return None
    if not config.path.exists():
        raise MissingInputError(
            f"no online store at {config.path}",
            fix="run `cip features build` and `cip features materialize` first",
        )
    cat.service_features(service)  # an unknown name stops here, with the known ones listed
    views = _views_read(service)
    tables = {v: f"{config.project}_{v}" for v in views}
    if config.versioned:
        return None  # versioned table names: Feast's read resolves them
    con = sqlite3.connect(f"{config.path.as_uri()}?mode=ro", uri=True)
    try:
        present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        missing = [t for t in tables.values() if t not in present]
        if missing:
            raise MissingInputError(
                f"the online store {config.path} has no table {', '.join(missing)}",
                fix="run `cip features materialize` (it applies the definitions first)",
            )
        served = cat.service_features(service)
        wanted = list(dict.fromkeys([*served, *(src for src, _ in cat.ON_DEMAND_DAYS.values())]))
        marks = ", ".join("?" * len(wanted))
        sql = " UNION ALL ".join(
            f'SELECT {i}, feature_name, value, event_ts FROM "{t}" WHERE entity_key = ? AND feature_name IN ({marks})'
            for i, t in enumerate(tables.values())
        )
        rows = con.execute(sql, [entity_key(customer_id), *wanted] * len(tables)).fetchall()
    finally:
        con.close()
    names = list(tables)
    found: dict[str, Any] = {}
    stamps: dict[str, datetime] = {}
    try:
        for index, name, value, ts in rows:
            found[name] = decode_value(value)
            stamps[names[index]] = event_time(ts)
    except UnsupportedValue:
        return None
    values: dict[str, Any] = {cat.JOIN_KEY: customer_id}
    for feature in served:
        spec = cat.ON_DEMAND_DAYS.get(feature)
        values[feature] = days_between(request_ts, found.get(spec[0])) if spec else found.get(feature)
    batch = [stamps[v.name] for v in cat.BATCH_VIEWS if v.name in stamps]
    return OnlineRow(
        values=values, found=bool(rows), snapshot_ts=max(batch) if batch else None, request_ts=request_ts
    )
