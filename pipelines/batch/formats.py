"""Export file formats (pure: a frame of deliverable members in, the file's bytes out).

Rows are sorted and values written the same way every time, so the same members, scores and
contacts always give byte-identical files (and the same SHA-256). Numbers are written in their
shortest round-trip form (``400`` for 400.0); lines are built column-wise in Arrow, once per
customer for all segments.

- ``hashed_audience``: what ad platforms' customer-match uploads expect: SHA-256 (hex) of the
  e-mail trimmed and lower-cased, and of the phone in E.164 (``+4915123456789``); no customer id.
- ``crm_csv``: an upsert keyed by customer id: the segment and the scores.
- ``webhook_jsonl``: one JSON object per line: customer id, segment, scores, top reasons, and
  the contact the destination's purposes need (e-mail for ``email``, phone for ``sms``).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cip.text import number_text
from pipelines.batch.config import Destination

KEY = "customer_id"
_NON_DIGITS = re.compile(r"[^0-9]")
EXTENSIONS = {"hashed_audience": "csv", "crm_csv": "csv", "webhook_jsonl": "jsonl"}


def normalize_email(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = str(value).strip().lower()
    return text or None


def normalize_phone(value: Any) -> str | None:
    """E.164: ``+`` and digits only (the lake already holds phones in E.164)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    digits = _NON_DIGITS.sub("", str(value))
    return f"+{digits}" if digits else None


def sha256_hex(text: str | None) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest() if text else ""


def hashed_identifiers(frame: pd.DataFrame) -> pd.DataFrame:
    """``email_sha256, phone_sha256`` per row (empty when there is none; a bounced address is left out)."""
    bounced = frame["bounced"].fillna(False).astype(bool).to_numpy() if "bounced" in frame else None
    emails = [normalize_email(v) for v in frame["email"].to_numpy(dtype=object)]
    if bounced is not None:
        emails = [None if b else e for e, b in zip(emails, bounced, strict=True)]
    phones = [normalize_phone(v) for v in frame["phone_e164"].to_numpy(dtype=object)]
    return pd.DataFrame(
        {"email_sha256": [sha256_hex(e) for e in emails], "phone_sha256": [sha256_hex(p) for p in phones]},
        index=frame.index,
    )


def _number(value: Any) -> Any:
    """A score as JSON/CSV writes it: shortest round-trip float, None for missing."""
    if value is None:
        return None
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclass
class Lines:
    """Every deliverable customer's line of one destination, built once for all segments: a
    segment's line is ``head + segment + tail`` (``segment`` as the format writes it), or just
    ``head`` for a hashed audience (no segment, no customer id)."""

    head: pa.Array
    tail: pa.Array | None = None


def lines(
    destination: Destination,
    rows: pd.DataFrame,
    score_columns: Sequence[str],
    reason_columns: Sequence[str] = (),
) -> Lines:
    """Per customer of ``rows`` (contacts, ``customer_id``, scores and reasons), its line without the
    segment, built column-wise in Arrow; :func:`assemble` makes the files."""
    fmt = destination.format
    if fmt == "hashed_audience":
        ids = hashed_identifiers(rows)
        return Lines(_text(ids["email_sha256"] + "," + ids["phone_sha256"]))
    keys = rows[KEY].to_numpy(dtype=object)
    if fmt == "crm_csv":
        tail: list[Any] = []
        for c in score_columns:
            tail += [",", _csv_column(rows[c])]
        return Lines(
            _join(_text([_csv_cell(k) for k in keys]), ","),
            _join(*tail) if tail else _text([""] * len(rows)),
        )
    if fmt == "webhook_jsonl":
        head = _join(f'{{"{KEY}":', _text([_dumps(k) for k in keys]), ',"segment":')
        return Lines(
            head,
            _join(",", _jsonl_tails(destination, rows, score_columns, reason_columns), ""),
        )
    raise ValueError(f"unknown export format {fmt!r}")


def assemble(
    destination: Destination, segment: str, built: Lines, rows: np.ndarray, score_columns: Sequence[str]
) -> bytes:
    """One segment's file from the :func:`lines` of its deliverable members (``rows``: their
    positions, sorted by customer id). Equal inputs give byte-identical files."""
    fmt = destination.format
    take = pa.array(np.asarray(rows, dtype=np.int64), type=pa.int64())
    if fmt == "hashed_audience":
        pieces = pc.unique(pc.take(built.head, take))
        pieces = pc.take(pieces, pc.sort_indices(pieces))  # sorted, deduplicated
        return b"email_sha256,phone_sha256\n" + _joined(_join(pieces, "\n"))
    if fmt == "crm_csv":
        header = ",".join([KEY, "segment", *score_columns]) + "\n"
        label = segment
    elif fmt == "webhook_jsonl":
        header, label = "", _dumps(segment)
    else:
        raise ValueError(f"unknown export format {fmt!r}")
    body = _join(pc.take(built.head, take), label, pc.take(built.tail, take), "\n")
    return header.encode() + _joined(body)


def _join(*parts: Any) -> pa.Array:
    """Element-wise concatenation of large-string arrays and plain strings."""
    large = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*large, pa.scalar("", pa.large_string()))


def _text(values: Any) -> pa.Array:
    return pa.array(values if isinstance(values, list) else list(values), type=pa.large_string())


def _joined(texts: pa.Array) -> bytes:
    """The texts back to back, as UTF-8 bytes (large strings: no 2 GiB limit)."""
    if len(texts) == 0:
        return b""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    if texts.type != pa.large_string():
        texts = pc.cast(texts, pa.large_string())
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int64, count=len(texts) + 1, offset=8 * texts.offset)
    start, end = int(offsets[0]), int(offsets[-1])
    return texts.buffers()[2][start:end].to_pybytes()


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_column(column: pd.Series) -> pa.Array:
    """A score column as CSV cells: numbers in their shortest round-trip form, missing ones empty,
    text quoted where it must be."""
    if column.dtype.kind in "fiu":
        x = column.to_numpy(dtype=float, na_value=np.nan)
        return number_text(x, "", large=True)
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    cells = np.array([_csv_cell(_number(v)) for v in uniques] + [""], dtype=object)
    return _text(cells[codes].tolist())


def _jsonl_tails(
    destination: Destination,
    rows: pd.DataFrame,
    score_columns: Sequence[str],
    reason_columns: Sequence[str],
) -> pa.Array:
    """Per customer: its JSON object after ``customer_id`` and ``segment`` (contacts, scores,
    reasons), closing brace included, assembled column-wise in Arrow. Reasons are already compact
    JSON text and go in as they are; numbers in their shortest round-trip form, missing ones null."""
    if not len(rows):
        return _text([])
    contact = []
    if "email" in destination.purposes:
        contact.append(("email", "email", normalize_email))
    if "sms" in destination.purposes:
        contact.append(("phone", "phone_e164", normalize_phone))
    parts: list[Any] = []
    for i, (name, src, norm) in enumerate(contact):
        text = [_json_text(norm(v)) for v in rows[src].to_numpy(dtype=object)]
        parts += [("," if i else "") + f"{_dumps(name)}:", _text(text)]
    parts.append(("," if contact else "") + '"scores":{')
    for i, c in enumerate(score_columns):
        parts += [("," if i else "") + f"{_dumps(c)}:", _json_column(rows[c])]
    parts.append("}")
    if reason_columns:
        parts.append(',"reasons":{')
        for i, c in enumerate(reason_columns):
            text = pa.array(rows[c].to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
            text = pc.if_else(pc.equal(pc.fill_null(text, ""), ""), "[]", text)  # none: an empty list
            parts += [("," if i else "") + f"{_dumps(c.removeprefix('reasons_'))}:", text]
        parts.append("}")
    parts.append("}")
    return _join(*parts)


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json_text(value: str | None) -> str:
    return "null" if value is None else _dumps(value)


def _json_column(column: pd.Series) -> pa.Array:
    """A score column as JSON values: numbers (shortest round-trip, NaN and infinities as null),
    text as JSON strings."""
    if column.dtype.kind in "fiu":
        x = column.to_numpy(dtype=float, na_value=np.nan)
        return number_text(x, "null", large=True)
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    encoded = np.array([_dumps(_number(v)) for v in uniques] + ["null"], dtype=object)
    return pa.array(encoded[codes], type=pa.large_string())
