"""Numbers as text, column-wise in Arrow (JSON reasons, export files)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def number_text(x: np.ndarray, missing: str, large: bool = False) -> pa.Array:
    """Each float in its shortest round-trip form (``3`` for 3.0, ``0.00001`` for 1e-05); NaN and
    infinities as ``missing``. ``large``: Arrow large strings (no 2 GiB limit per array)."""
    x = np.asarray(x, dtype=float)
    text = pc.cast(pa.array(x, mask=~np.isfinite(x)), pa.large_string() if large else pa.string())
    return pc.fill_null(text, missing)
