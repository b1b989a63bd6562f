"""One customer's row of a derived lake table (``profiles``, ``traits``, ``scores``), from memory.

The table is read once (Arrow) with an index ``customer_id -> row`` and read again when the stage
that writes it replaces the file; a missing table is simply empty (``cip score`` may never have run).
"""

from __future__ import annotations

import math
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cip.lake import Lake

KEY = "customer_id"


class LakeRows:
    def __init__(self, lake: Lake, table: str, columns: list[str] | None = None) -> None:
        self.lake, self.table, self.columns = lake, table, columns
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._data: pa.Table | None = None
        self._index: dict[str, int] = {}
        self.reload_if_changed()

    @property
    def path(self) -> Path:
        return self.lake.derived_path(self.table)

    @property
    def exists(self) -> bool:
        return self._data is not None

    def reload_if_changed(self) -> bool:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            changed = self._data is not None
            with self._lock:
                self._data, self._index, self._stamp = None, {}, None
            return changed
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return False
        schema = pq.read_schema(self.path)
        cols = [c for c in self.columns if c in schema.names] if self.columns else None
        if cols is not None and KEY not in cols:
            cols = [KEY, *cols]
        data = pq.read_table(self.path, columns=cols)
        index = {k: i for i, k in enumerate(data[KEY].to_pylist())}
        with self._lock:
            self._data, self._index, self._stamp = data, index, stamp
        return True

    def row(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's row as JSON-ready values (the last one if the key repeats)."""
        with self._lock:
            data, i = self._data, self._index.get(customer_id)
        if data is None or i is None:
            return None
        return {name: plain(data.column(name)[i].as_py()) for name in data.column_names}

    def value(self, customer_id: str, column: str) -> Any:
        with self._lock:
            data, i = self._data, self._index.get(customer_id)
        if data is None or i is None or column not in data.column_names:
            return None
        return plain(data.column(column)[i].as_py())


def plain(v: Any) -> Any:
    """JSON-ready: NaN → None, dates as ISO text."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v
