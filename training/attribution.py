"""Per-feature contributions to a LightGBM raw score: exact TreeSHAP or path attribution.

Both methods give, per row, one contribution per feature plus a base value (the last column), and
the row sums to the booster's raw score. They share the base value: each tree's expected output
over its training data (leaves weighted by their data counts), summed over trees.

- ``tree_shap`` (LightGBM ``pred_contrib``): Shapley values of the path-dependent tree model.
  Consistent and exact, and costly: ``O(trees x leaves x depth^2)`` per row, 40–200 times a
  prediction on the champions measured in ``benchmarks/RESULTS.md``.
- ``path`` (Saabas' attribution, as in XGBoost's ``approx_contribs``): each split on a row's path
  credits its feature with the change of the node's expected value. Every leaf's credits are
  computed once per model (:class:`PathTable`), so a row costs a leaf lookup per tree
  (``pred_leaf``, the cost of a prediction) and a sparse sum. It is not a Shapley value: features
  split near the root get less credit than TreeSHAP would give them. ``benchmarks/RESULTS.md``
  records how often its top reasons agree with TreeSHAP's.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

Method = Literal["tree_shap", "path"]
METHODS: tuple[str, ...] = ("tree_shap", "path")
#: Rows per block of :meth:`PathTable.contributions`.
BLOCK_ROWS = 8192


@dataclass(frozen=True)
class PathTable:
    """Every leaf's per-feature credits along its path, for one booster and tree range."""

    #: (leaves of all trees, features), sparse: a leaf credits only the features on its path
    #: (about 10 % of the cells on the champions, where a sparse product is 1-3x faster than a
    #: dense one).
    credits: sp.csr_matrix
    offsets: np.ndarray  # first row of each tree in ``credits``
    base: float  # sum over trees of the tree's expected output

    @classmethod
    def from_booster(cls, booster: Any, num_iteration: int | None = None) -> PathTable:
        dump = booster.dump_model(num_iteration=num_iteration)
        n_features = len(dump["feature_names"])
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        offsets: list[int] = []
        base = 0.0
        first = 0
        for tree in dump["tree_info"]:
            offsets.append(first)
            root = tree["tree_structure"]
            expected = _expected_values(root)
            base += expected[id(root)]
            stack: list[tuple[dict, dict[int, float]]] = [(root, {})]
            while stack:
                node, credit = stack.pop()
                if "split_feature" not in node:
                    leaf = first + int(node.get("leaf_index", 0))
                    for feature, value in credit.items():
                        rows.append(leaf)
                        cols.append(feature)
                        vals.append(value)
                    continue
                feature = int(node["split_feature"])
                for child in (node["left_child"], node["right_child"]):
                    step = dict(credit)
                    step[feature] = step.get(feature, 0.0) + expected[id(child)] - expected[id(node)]
                    stack.append((child, step))
            first += int(tree["num_leaves"])
        credits = sp.csr_matrix(
            (
                np.asarray(vals, dtype=float),
                (np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)),
            ),
            shape=(first, n_features),
        )
        return cls(credits, np.asarray(offsets, dtype=np.int32), base)

    @property
    def trees(self) -> int:
        return len(self.offsets)

    def contributions(self, leaves: np.ndarray, threads: int = 0) -> np.ndarray:
        """Contributions ``(n, features + 1)`` of rows whose leaf in each tree is ``leaves``
        (LightGBM ``pred_leaf`` output, ``(n, trees)``); the last column is the base value.

        Rows go in blocks of :data:`BLOCK_ROWS` (the block's one-hot leaf matrix stays small) on
        up to ``threads`` threads (0: all cores; SciPy's sparse product releases the GIL)."""
        leaves = np.asarray(leaves, dtype=np.int32).reshape(-1, self.trees)
        n, t = leaves.shape
        out = np.empty((n, self.credits.shape[1] + 1))
        out[:, -1] = self.base
        ones = np.ones(min(n, BLOCK_ROWS) * t)

        def block(start: int) -> None:
            rows = leaves[start : start + BLOCK_ROWS]
            m = len(rows)
            hits = sp.csr_matrix(
                (ones[: m * t], (rows + self.offsets).ravel(), np.arange(0, m * t + 1, t, dtype=np.int32)),
                shape=(m, self.credits.shape[0]),
                copy=False,
            )
            out[start : start + m, :-1] = (hits @ self.credits).toarray()

        starts = range(0, n, BLOCK_ROWS)
        workers = min(len(starts), threads or os.cpu_count() or 1)
        if workers <= 1:
            for start in starts:
                block(start)
        else:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(block, starts))
        return out


def _expected_values(root: dict) -> dict[int, float]:
    """Each node's expected output over the training rows that reached it (keyed by ``id``)."""
    value: dict[int, float] = {}
    count: dict[int, float] = {}
    order: list[dict] = []
    stack = [root]
    while stack:  # pre-order; reversed, children come before their parent
        node = stack.pop()
        order.append(node)
        if "split_feature" in node:
            stack += [node["left_child"], node["right_child"]]
    for node in reversed(order):
        key = id(node)
        if "split_feature" not in node:
            value[key] = float(node.get("leaf_value", 0.0))
            count[key] = float(node.get("leaf_count", 0.0))
            continue
        left, right = id(node["left_child"]), id(node["right_child"])
        total = count[left] + count[right]
        count[key] = total
        value[key] = (
            (value[left] * count[left] + value[right] * count[right]) / total
            if total > 0
            else 0.5 * (value[left] + value[right])
        )
    return value


def contributions(
    booster: Any,
    matrix: np.ndarray,
    method: str = "tree_shap",
    num_iteration: int | None = None,
    table: PathTable | None = None,
    **predict: Any,
) -> np.ndarray:
    """Contributions ``(n, features + 1)`` of ``matrix``'s rows by ``method``; ``predict`` is
    passed on to ``booster.predict`` (e.g. ``num_threads``)."""
    if method == "tree_shap":
        return np.asarray(booster.predict(matrix, pred_contrib=True, num_iteration=num_iteration, **predict))
    if method == "path":
        table = table or PathTable.from_booster(booster, num_iteration)
        leaves = booster.predict(matrix, pred_leaf=True, num_iteration=num_iteration, **predict)
        return table.contributions(leaves)
    raise ValueError(f"unknown reasons method {method!r}: choose one of {', '.join(METHODS)}")
