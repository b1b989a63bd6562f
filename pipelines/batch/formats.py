"""Export file formats (pure: a frame of deliverable members in, the file's bytes out).

Rows are sorted and values written the same way every time, so the same members, scores and
contacts always give byte-identical files (and the same SHA-256).

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
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.batch.config import Destination

KEY = "customer_id"
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
    digits = "".join(ch for ch in str(value) if ch.isdigit())
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


def render(
    destination: Destination,
    segment: str,
    members: pd.DataFrame,
    score_columns: Sequence[str],
    reason_columns: Sequence[str] = (),
) -> bytes:
    """The file for one segment and destination. ``members``: deliverable customers with their
    contacts (:func:`pipelines.batch.consent.contacts` columns), scores and reasons."""
    rows = members.sort_values(KEY, kind="stable")
    pieces = prepare(destination, rows, score_columns, reason_columns)
    return assemble(destination, segment, rows[KEY].to_numpy(dtype=object), pieces, score_columns)


def prepare(
    destination: Destination,
    rows: pd.DataFrame,
    score_columns: Sequence[str],
    reason_columns: Sequence[str] = (),
) -> np.ndarray:
    """Per customer of ``rows``, the part of its line that does not depend on the segment (text),
    so that a customer in many segments is formatted once; :func:`assemble` makes the files."""
    fmt = destination.format
    if fmt == "hashed_audience":
        ids = hashed_identifiers(rows)
        return (ids["email_sha256"] + "," + ids["phone_sha256"]).to_numpy(dtype=object)
    if fmt == "crm_csv":
        if not score_columns or not len(rows):
            return np.full(len(rows), "", dtype=object)
        text = rows[list(score_columns)].to_csv(index=False, header=False, lineterminator="\n")
        lines = np.array(text.split("\n")[:-1], dtype=object)
        if len(score_columns) == 1:  # the csv module writes a lone empty field as ""
            lines[lines == '""'] = ""
        return lines
    if fmt == "webhook_jsonl":
        return _jsonl_tails(destination, rows, score_columns, reason_columns)
    raise ValueError(f"unknown export format {fmt!r}")


def assemble(
    destination: Destination,
    segment: str,
    keys: np.ndarray,
    pieces: np.ndarray,
    score_columns: Sequence[str],
) -> bytes:
    """One segment's file from its deliverable members' keys and :func:`prepare` pieces, both
    sorted by customer id. Equal inputs give byte-identical files."""
    fmt = destination.format
    if fmt == "hashed_audience":
        seen: dict[str, None] = dict.fromkeys(sorted(pieces))  # sorted, deduplicated
        return ("email_sha256,phone_sha256\n" + "".join(f"{p}\n" for p in seen)).encode()
    if fmt == "crm_csv":
        head = ",".join([KEY, "segment", *score_columns])
        sep = "," if score_columns else ""
        body = "".join(f"{_csv_cell(k)},{segment}{sep}{p}\n" for k, p in zip(keys, pieces, strict=True))
        return (head + "\n" + body).encode()
    if fmt == "webhook_jsonl":
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        middle = f',"segment":{dumps(segment)},'
        return "".join(
            f'{{"{KEY}":{dumps(k)}{middle}{p}\n' for k, p in zip(keys, pieces, strict=True)
        ).encode()
    raise ValueError(f"unknown export format {fmt!r}")


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    if any(ch in text for ch in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _jsonl_tails(
    destination: Destination,
    rows: pd.DataFrame,
    score_columns: Sequence[str],
    reason_columns: Sequence[str],
) -> np.ndarray:
    """Per customer: its JSON object after ``customer_id`` and ``segment`` (contacts, scores,
    reasons), closing brace included, assembled column-wise in Arrow. Reasons are already compact
    JSON text and go in as they are; numbers in their shortest round-trip form, missing ones null."""
    if not len(rows):
        return np.empty(0, dtype=object)
    contact = []
    if "email" in destination.purposes:
        contact.append(("email", "email", normalize_email))
    if "sms" in destination.purposes:
        contact.append(("phone", "phone_e164", normalize_phone))
    parts: list[Any] = []
    for i, (name, src, norm) in enumerate(contact):
        text = [_json_text(norm(v)) for v in rows[src].to_numpy(dtype=object)]
        parts += [("," if i else "") + f"{_dumps(name)}:", pa.array(text, type=pa.string())]
    parts.append(("," if contact else "") + '"scores":{')
    for i, c in enumerate(score_columns):
        parts += [("," if i else "") + f"{_dumps(c)}:", _json_column(rows[c])]
    parts.append("}")
    if reason_columns:
        parts.append(',"reasons":{')
        for i, c in enumerate(reason_columns):
            text = pa.array(rows[c].to_numpy(dtype=object), type=pa.string(), from_pandas=True)
            text = pc.if_else(pc.equal(pc.fill_null(text, ""), ""), "[]", text)  # none: an empty list
            parts += [("," if i else "") + f"{_dumps(c.removeprefix('reasons_'))}:", text]
        parts.append("}")
    parts.append("}")
    return np.asarray(pc.binary_join_element_wise(*parts, "").to_pylist(), dtype=object)


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json_text(value: str | None) -> str:
    return "null" if value is None else _dumps(value)


def _json_column(column: pd.Series) -> pa.Array:
    """A score column as JSON values: numbers (shortest round-trip, NaN and infinities as null),
    text as JSON strings."""
    if column.dtype.kind in "fiu":
        x = column.to_numpy(dtype=float, na_value=np.nan)
        text = pc.cast(pa.array(x, mask=~np.isfinite(x)), pa.string())
        return pc.fill_null(text, "null")
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), use_na_sentinel=True)
    encoded = np.array([_dumps(_number(v)) for v in uniques] + ["null"], dtype=object)
    return pa.array(encoded[codes], type=pa.string())


def _raw(reasons: Any) -> str:
    """Reasons as stored (compact JSON text); none is an empty list."""
    return reasons if isinstance(reasons, str) and reasons else "[]"
