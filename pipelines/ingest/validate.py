"""Contract validation compiled to one DuckDB query: every row gets at most one reason (the first
rule it breaks, in the contract's field order) plus typed, parsed values of its fields.

Input: a table ``raw`` of VARCHAR columns named after the contract's fields, plus ``_row`` and,
for JSON sources, ``_malformed``. Output columns: ``_row``, ``v_<field>`` (trimmed, blank → NULL),
``p_<field>`` (parsed value for typed fields), ``_reason``, ``_field``, ``flag_invalid_<field>``.
Emails are normalized by the Python rule through the ``email_map`` table (see ``rules.py``);
repeated keys are found beforehand into ``dup_rows`` (see :func:`duplicate_rows_sql`).
"""

from __future__ import annotations

from cip.contracts import Contract, Field
from cip.sql import literal_list, quote_ident, quote_literal
from pipelines.ingest import rules


def _trimmed(col: str) -> str:
    """``col`` trimmed, blank → NULL. ``trim`` (it strips Unicode space separators) runs only
    where it can change something: a value that is empty, starts or ends with a space, or holds
    non-ASCII characters; the cheap byte tests let most values through untouched."""
    return (
        f"CASE WHEN {col} = '' OR starts_with({col}, ' ') OR ends_with({col}, ' ') OR strlen({col}) <> length({col}) "
        f"THEN nullif(trim({col}), '') ELSE {col} END"
    )


def _cond(f: Field) -> str:
    if f.when is None:
        return "TRUE"
    col, value = f.when
    return f"(v_{col} = {quote_literal(value)})"


def duplicate_rows_sql(contract: Contract, source: str = "raw") -> str:
    """Rows of ``source`` whose unique key already appeared earlier in the file (table ``dup_rows``)."""
    if not contract.unique:
        return "SELECT NULL::BIGINT AS _row WHERE FALSE"
    key = f"nullif(trim(\"{contract.unique}\"), '')"
    return f"""SELECT _row FROM (
                 SELECT _row, row_number() OVER (PARTITION BY k ORDER BY _row) AS rn
                 FROM (SELECT _row, {key} AS k FROM {source})
                 WHERE k IN (SELECT {key} FROM {source} GROUP BY ALL HAVING count(*) > 1))
               WHERE rn > 1"""


def validation_sql(contract: Contract, *, currencies: set[str], now_sql: str, deferred: bool = False) -> str:
    """SQL selecting validated rows from ``raw``. ``now_sql`` is a TIMESTAMPTZ literal: the
    ingestion time plus the future tolerance. ``deferred`` leaves out the checks that need the
    whole file or a lookup (flag-only e-mails, duplicate keys); the caller applies them after."""
    values = [f"{_trimmed(f'raw.{quote_ident(f.name)}')} AS v_{f.name}" for f in contract.fields]
    parsed: list[str] = []
    checks: list[tuple[str, str, str]] = []  # (condition, reason, field)
    flags: list[str] = []
    joins: list[str] = []
    if contract.format == "jsonl":
        checks.append(("_malformed", "malformed_json", "line"))
    for group in contract.require_any:
        cond = " AND ".join(f"v_{c} IS NULL" for c in group)
        checks.append((f"({cond})", "missing_required", "|".join(group)))
    for f in contract.fields:
        v, p, applies = f"v_{f.name}", f"p_{f.name}", _cond(f)
        present = f"({v} IS NOT NULL AND {applies})"
        if f.required:
            checks.append((f"({v} IS NULL AND {applies})", "missing_required", f.name))
        if f.kind == "timestamp":
            parsed.append(f"{rules.utc_timestamp(v)} AS {p}")
            checks.append((f"({present} AND {p} IS NULL)", "invalid_timestamp", f.name))
            checks.append((f"({present} AND {p} > {now_sql})", "future_timestamp", f.name))
        elif f.kind == "local_timestamp":
            tz = f"v_{contract.extra['timezone_field']}"
            parsed.append(f"{rules.local_to_utc(v, tz)} AS {p}")
            checks.append((f"({present} AND {p} IS NULL)", "invalid_timestamp", f.name))
            checks.append((f"({present} AND {p} > {now_sql})", "future_timestamp", f.name))
        elif f.kind == "date":
            parsed.append(f"try_strptime({v}, '%Y-%m-%d')::DATE AS {p}")
            checks.append((f"({present} AND {p} IS NULL)", "invalid_timestamp", f.name))
        elif f.kind == "amount":
            parsed.append(f"{rules.amount(v)} AS {p}")
            checks.append((f"({present} AND coalesce({p} < 0, TRUE))", "invalid_amount", f.name))
        elif f.kind == "probability":  # e.g. a randomizer's logged assignment probability
            parsed.append(f"{rules.amount(v)} AS {p}")
            checks.append(
                (f"({present} AND NOT coalesce({p} > 0 AND {p} <= 1, FALSE))", "invalid_probability", f.name)
            )
        elif f.kind == "int":
            parsed.append(f"try_cast({v} AS DOUBLE) AS {p}")
            checks.append(
                (f"({present} AND NOT coalesce({p} >= 1 AND {p} = floor({p}), FALSE))", "invalid_int", f.name)
            )
        elif f.kind == "currency":
            parsed.append(f"upper({v}) AS {p}")
            listing = literal_list(sorted(currencies)) or "NULL"
            checks.append((f"({present} AND upper({v}) NOT IN ({listing}))", "unknown_currency", f.name))
        elif f.kind == "enum":
            listing = literal_list(f.values or ())
            checks.append((f"({present} AND {v} NOT IN ({listing}))", "invalid_value", f.name))
        elif f.kind == "email" and deferred:
            if f.on_invalid != "flag":
                raise ValueError(f"field {f.name}: only flag-only e-mails can be checked after the query")
        elif f.kind == "email":
            joins.append(
                f"LEFT JOIN email_map em_{f.name} ON em_{f.name}.raw = {_trimmed(f'raw.{quote_ident(f.name)}')}"
            )
            parsed.append(f"CASE WHEN em_{f.name}_valid THEN em_{f.name}_email END AS {p}")
            values.append(f"em_{f.name}.email AS em_{f.name}_email, em_{f.name}.valid AS em_{f.name}_valid")
            bad = f"({present} AND NOT coalesce(em_{f.name}_valid, FALSE))"
            if f.on_invalid == "quarantine":
                checks.append((bad, "invalid_email", f.name))
            else:
                flags.append(f"{bad} AS flag_invalid_{f.name}")
    if contract.unique and not deferred:
        key = f"v_{contract.unique}"
        checks.append(
            (f"({key} IS NOT NULL AND _row IN (SELECT _row FROM dup_rows))", "duplicate_key", contract.unique)
        )
    which = "CASE " + " ".join(f"WHEN {c} THEN {i + 1}" for i, (c, _, _) in enumerate(checks)) + " END"
    reasons = "[" + literal_list(r for _, r, _ in checks) + "]"
    fields = "[" + literal_list(n for _, _, n in checks) + "]"
    malformed = "raw._malformed, raw._products" if contract.format == "jsonl" else "FALSE AS _malformed"
    stage1 = f"SELECT raw._row, {malformed}, {', '.join(values)} FROM raw {' '.join(joins)}"
    stage2 = f"SELECT *, {', '.join(parsed) if parsed else 'NULL AS _none'} FROM ({stage1})"
    extra = (", " + ", ".join(flags)) if flags else ""
    stage3 = f"SELECT *, {which} AS _check{extra} FROM ({stage2})"
    return (
        f"SELECT * EXCLUDE (_check), {reasons}[_check] AS _reason, {fields}[_check] AS _field FROM ({stage3})"
    )
