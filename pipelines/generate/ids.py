"""Fast, vectorized identifier strings (UUID-like ids and prefixed numbers) built as arrow arrays."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)
#: byte -> its two hex characters packed in a little-endian uint16 (first char in the low byte)
_HEX2 = (
    _HEX[np.arange(256) >> 4].astype(np.uint16) | (_HEX[np.arange(256) & 15].astype(np.uint16) << 8)
).astype("<u2")
_HEX2_UPPER = (
    _HEX_UPPER[np.arange(256) >> 4].astype(np.uint16)
    | (_HEX_UPPER[np.arange(256) & 15].astype(np.uint16) << 8)
).astype("<u2")
#: column of the 33-column [32 hex chars, "-"] matrix for each of the 36 UUID characters
_UUID_LAYOUT = np.array(
    [*range(0, 8), 32, *range(8, 12), 32, *range(12, 16), 32, *range(16, 20), 32, *range(20, 32)]
)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finalizer: a bijective 64-bit mix (uint64 in, uint64 out)."""
    z = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _strings(chars: np.ndarray) -> pa.StringArray:
    """Arrow string array from an (n, width) uint8 matrix of ASCII characters (zero copy)."""
    n, width = chars.shape
    offsets = np.arange(0, width * (n + 1), width, dtype=np.int32 if width * (n + 1) < 2**31 else np.int64)
    data = np.ascontiguousarray(chars).reshape(-1)
    typ = pa.string() if offsets.dtype == np.int32 else pa.large_string()
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def uuid_strings(keys: np.ndarray, salt: int, upper: bool | np.ndarray = False) -> pa.Array:
    """Deterministic UUID-formatted ids (8-4-4-4-12 hex) for integer ``keys``; distinct keys give
    distinct ids (the first 64 bits are a bijection of ``keys`` for a fixed ``salt``)."""
    keys = np.asarray(keys).astype(np.uint64)
    s = np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        h1 = splitmix64(keys ^ splitmix64(np.array([s]))[0])
        h2 = splitmix64(h1 ^ s)
    n = len(keys)
    raw = np.empty((n, 2), dtype=">u8")
    raw[:, 0], raw[:, 1] = h1, h2
    b = raw.view(np.uint8).reshape(n, 16)
    if isinstance(upper, np.ndarray):
        chars = np.where(upper[:, None], _HEX2_UPPER[b].view(np.uint8), _HEX2[b].view(np.uint8))
    else:
        chars = (_HEX2_UPPER if upper else _HEX2)[b].view(np.uint8)
    chars = np.concatenate([chars, np.full((n, 1), ord("-"), dtype=np.uint8)], axis=1)
    out = np.take(chars, _UUID_LAYOUT, axis=1)
    return _strings(out)


def prefixed_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """``prefix`` + zero-padded decimal ``numbers`` (all non-negative, < 10**width)."""
    numbers = np.asarray(numbers).astype(np.int64)
    n = len(numbers)
    pre = np.frombuffer(prefix.encode(), dtype=np.uint8)
    out = np.empty((n, len(pre) + width), dtype=np.uint8)
    out[:, : len(pre)] = pre
    x = numbers.copy()
    for i in range(width - 1, -1, -1):
        out[:, len(pre) + i] = 48 + (x % 10)
        x //= 10
    return _strings(out)


def _civil(days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(year, month, day) of days since 1970-01-01 (proleptic Gregorian, vectorized)."""
    z = days + 719468
    era = np.floor_divide(z, 146097)
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = np.where(mp < 10, mp + 3, mp - 9)
    y = yoe + era * 400 + (m <= 2)
    return y, m, d


def iso_timestamps(utc_ms: np.ndarray, off_min: np.ndarray, zulu: np.ndarray) -> pa.Array:
    """ISO-8601 local time with milliseconds and offset: ``2024-03-02T10:11:12.345+01:00``, or the
    UTC time with ``Z`` where ``zulu`` is true (vectorized, no per-row Python)."""
    utc_ms = np.asarray(utc_ms, dtype=np.int64)
    off = np.where(zulu, 0, np.asarray(off_min, dtype=np.int64))
    local = utc_ms + off * 60_000
    days, rem = np.divmod(local, 86_400_000)
    y, mo, d = _civil(days)
    n = len(local)
    out = np.empty((n, 29), dtype=np.uint8)

    def put(col: int, value: np.ndarray, width: int) -> None:
        v = value.copy()
        for i in range(width - 1, -1, -1):
            out[:, col + i] = 48 + v % 10
            v //= 10

    put(0, y, 4)
    out[:, 4] = ord("-")
    put(5, mo, 2)
    out[:, 7] = ord("-")
    put(8, d, 2)
    out[:, 10] = ord("T")
    put(11, rem // 3_600_000, 2)
    out[:, 13] = ord(":")
    put(14, rem // 60_000 % 60, 2)
    out[:, 16] = ord(":")
    put(17, rem // 1000 % 60, 2)
    out[:, 19] = ord(".")
    put(20, rem % 1000, 3)
    out[:, 23] = np.where(zulu, ord("Z"), np.where(off < 0, ord("-"), ord("+")))
    put(24, np.abs(off) // 60, 2)
    out[:, 26] = ord(":")
    put(27, np.abs(off) % 60, 2)
    lengths = np.where(zulu, 24, 29)
    keep = np.arange(29)[None, :] < lengths[:, None]
    data = out[keep]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64 if data.size >= 2**31 else np.int32)
    typ = pa.large_string() if offsets.dtype == np.int64 else pa.string()
    return pa.Array.from_buffers(
        typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(data))]
    )
