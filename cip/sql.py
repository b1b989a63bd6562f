"""Quoting for SQL composed in Python (DuckDB and SQLite share these rules).

Every identifier or literal that is not a fixed keyword — a path, a table or column name, a value
from configuration — goes through these helpers, so a quote in a folder name cannot break a query.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePath


def quote_ident(name: str) -> str:
    """A double-quoted identifier: ``a"b`` → ``"a""b"``."""
    return '"' + str(name).replace('"', '""') + '"'


def quote_literal(value: str | PurePath) -> str:
    """A single-quoted string literal; paths are written with forward slashes: ``it's`` → ``'it''s'``."""
    text = value.as_posix() if isinstance(value, PurePath) else str(value)
    return "'" + text.replace("'", "''") + "'"


def literal_list(values: Iterable[str | PurePath]) -> str:
    """Comma-separated string literals (without brackets), e.g. for ``IN (...)`` or ``[...]``."""
    return ", ".join(quote_literal(v) for v in values)
