"""``Scorer.score`` on a float matrix instead of a DataFrame: the same numbers, in a fraction of the time.

A single-customer request spends most of ``Scorer.score``'s time in pandas (column selection,
copies, the per-category expansion), not in LightGBM. Here each model's input is a column
selection of one float matrix (indices computed once per loaded model), the per-category model's
rows are a ``repeat`` with the category codes the estimator would assign, and LightGBM is called
with one thread (a request is tiny; a worker process per core is the parallelism; OpenMP threads
stall when the other core is busy). Scores go through the estimator's own ``from_raw`` and reasons
through the same ranking as ``training.reasons.top_reasons``. A model of a kind not handled here
(not a single-output or per-category LightGBM) is scored by ``Scorer.score`` itself.
``tests/test_serving_features.py`` holds the results equal to ``Scorer.score``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from training.datasets import CATEGORY
from training.estimator import GBMModel
from training.nba_runtime import ACTION_COLUMN, VALUE_COLUMN, NBAModel
from training.reasons import describe, rank
from training.scoring import Scorer, propensity_column


@dataclass
class FastResult:
    """Scores of a batch of customers, in input order (as ``ScoreResult``, with plain arrays)."""

    columns: dict[str, np.ndarray] = field(default_factory=dict)  # score column -> values
    reasons: dict[str, list[list[dict[str, Any]]]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    extra: pd.DataFrame | None = None  # wide columns of models scored by Scorer.score


@dataclass(frozen=True)
class _Plan:
    """How one loaded model reads the matrix."""

    index: np.ndarray  # matrix column of each model feature (-1: the category input)
    categories: list[str] | None  # per-category model: categories in code order
    wide: list[str] | None  # per-category model: wide categories in declared order
    descriptions: list[str]
    leaves: np.ndarray  # cumulative leaf count over the trees used (TreeSHAP's cost grows with it)
    #: Private copies of the booster, one per thread slot, each used under its lock: LightGBM
    #: keeps a prediction's tree range in the booster, so concurrent predictions over different
    #: ranges on one booster would race.
    boosters: list[Any]
    locks: list[threading.Lock]


def _plan(model: Any, columns: dict[str, int], slots: int) -> _Plan | None:
    est = getattr(model, "estimator", None)  # the NBA runtime has none: Scorer.score runs it
    if not isinstance(est, GBMModel) or est.task not in ("binary", "regression"):
        return None
    feats = list(model.features)
    if any(f != CATEGORY and f not in columns for f in feats):
        return None
    cats = wide = None
    if CATEGORY in feats:
        from training.scoring import _categories, _wide_categories

        cats, wide = _categories(model), _wide_categories(model)
        if set(est.categories_) != {CATEGORY} or list(est.categories_[CATEGORY]) != cats:
            return None  # codes would not be 0..k-1 in category order
    elif est.categories_:
        return None
    index = np.array([columns.get(f, -1) if f != CATEGORY else -1 for f in feats], dtype=np.int64)
    trees = est.booster_.dump_model(num_iteration=est.best_iteration_)["tree_info"]
    leaves = np.cumsum([t["num_leaves"] for t in trees])
    if getattr(model, "reasons_method", "tree_shap") == "path":
        est.path_table()  # built once here, not in the first request
    text = est.booster_.model_to_string(num_iteration=-1)
    boosters = [lgb.Booster(model_str=text) for _ in range(slots)]
    return _Plan(
        index,
        cats,
        wide,
        [describe(f) for f in feats],
        leaves,
        boosters,
        [threading.Lock() for _ in boosters],
    )


class FastScorer:
    """Scores a feature matrix whose columns are ``columns`` with the scorer's loaded models."""

    def __init__(self, columns: Sequence[str], threads: int = 1, split_trees: int = 200) -> None:
        self.columns = list(columns)
        self._where = {c: j for j, c in enumerate(self.columns)}
        self._plans: dict[int, _Plan | None] = {}
        self._nba_plans: dict[tuple[str, int], np.ndarray | None] = {}
        self.threads = max(1, threads)
        self.split_trees = split_trees
        self._pool = (
            ThreadPoolExecutor(self.threads - 1, thread_name_prefix="shap") if self.threads > 1 else None
        )

    def plan(self, model: Any) -> _Plan | None:
        key = id(model)
        if key not in self._plans:
            if len(self._plans) > 64:
                self._plans.clear()
            self._plans[key] = _plan(model, self._where, self.threads)
        return self._plans[key]

    def score(
        self,
        scorer: Scorer,
        matrix: np.ndarray,
        customer_ids: Sequence[str],
        reasons: int = 3,
        models: Sequence[str] | None = None,
        frame: Any = None,
    ) -> FastResult:
        """``frame`` (customer_id + columns, built on demand) is only used for models scored by
        ``Scorer.score``."""
        loaded = scorer.models
        names = list(loaded) if models is None else list(models)
        out = FastResult(versions={n: str(loaded[n].version) for n in names})
        slow = []
        jobs: list[_Job] = []
        for name in names:
            model = loaded[name]
            if isinstance(model, NBAModel):
                index = self._nba_index(model)
                if index is None:
                    slow.append(name)
                else:
                    self._nba(name, model, matrix[:, index], reasons, out)
                continue
            plan = self.plan(model)
            if plan is None:
                slow.append(name)
            elif plan.categories is None:
                jobs += self._single(name, model, plan, matrix, reasons, out)
            else:
                jobs += self._per_category(name, model, plan, matrix, reasons, out)
        self._explain(jobs, out)
        if slow:
            df = frame() if callable(frame) else frame
            res = scorer.score(df, reasons=reasons, models=slow)
            extra = res.wide.drop(columns=["customer_id"], errors="ignore").reset_index(drop=True)
            if getattr(res, "alternatives", None):  # NBA: the other actions ranked, per customer
                extra["alternatives"] = pd.Series(res.alternatives, index=extra.index, dtype=object)
            out.extra = extra if out.extra is None else pd.concat([out.extra, extra], axis=1)
            out.reasons.update(res.reasons)
        return out

    def _nba_index(self, model: NBAModel) -> np.ndarray | None:
        """Matrix columns of the next-best-action model's features, when one float matrix serves
        every model of its bundle; None sends it to ``Scorer.score``."""
        key = ("nba", id(model))
        if key not in self._nba_plans:
            ok = model.matrix_inputs and all(f in self._where for f in model.features)
            self._nba_plans[key] = np.array([self._where[f] for f in model.features]) if ok else None
        return self._nba_plans[key]

    @staticmethod
    def _nba(name: str, model: NBAModel, X: np.ndarray, reasons: int, out: FastResult) -> None:
        """The chosen action, its value, the ranked alternatives and the reasons, as
        ``NBAModel.score`` gives them, from the model's columns of the matrix."""
        X = np.ascontiguousarray(X, dtype=float)
        res = model.score_inputs(X, pd.DataFrame(X, columns=model.features), reasons)
        alternatives = np.empty(len(X), dtype=object)
        for i, ranked in enumerate(res["alternatives"]):  # one list per customer, not a 2-D array
            alternatives[i] = ranked
        extra = pd.DataFrame(
            {
                ACTION_COLUMN: res[ACTION_COLUMN],
                VALUE_COLUMN: res[VALUE_COLUMN],
                "alternatives": pd.Series(alternatives, dtype=object),
            }
        )  # in ``extra``, as when ``Scorer.score`` scores it: ``columns`` hold numbers only
        out.extra = extra if out.extra is None else pd.concat([out.extra, extra], axis=1)
        if reasons > 0:
            out.reasons[name] = res["reasons"]

    @staticmethod
    def _predict(
        model: Any,
        plan: _Plan,
        m: np.ndarray,
        slot: int = 0,
        start: int = 0,
        trees: int | None = None,
        **kind: bool,
    ) -> np.ndarray:
        est = model.estimator
        n = est.best_iteration_ if trees is None else trees
        with plan.locks[slot]:
            return np.asarray(
                plan.boosters[slot].predict(m, start_iteration=start, num_iteration=n, num_threads=1, **kind)
            )

    def _explain(self, jobs: list[_Job], out: FastResult) -> None:
        """Reason codes of every model. Path attribution (``reasons_method: path``) costs about a
        prediction and runs here, in this thread. TreeSHAP dominates a request, and contributions add up
        over trees: with ``threads`` > 1, large models are cut into tree ranges of equal leaf
        count, and the pieces of all models are spread over the threads (longest first, each to
        the least loaded), this thread taking one share, so one request uses every core."""
        for job in [j for j in jobs if j.method == "path"]:  # a leaf lookup per tree: no splitting
            leaves = self._predict(job.model, job.plan, job.values, pred_leaf=True)
            contrib = job.model.estimator.path_table().contributions(leaves)
            out.reasons[job.name] = _top(
                contrib, job.model.features, job.values, job.plan.descriptions, job.k, job.category
            )
        jobs = [j for j in jobs if j.method != "path"]
        if not jobs:
            return
        pieces: list[tuple[float, int, int, int]] = []  # cost, job, first tree, trees
        for i, job in enumerate(jobs):
            cum = job.plan.leaves
            n = len(cum)
            parts = self.threads if self._pool is not None and n >= self.split_trees else 1
            cuts = [0, *(int(np.searchsorted(cum, cum[-1] * q / parts)) for q in range(1, parts)), n]
            for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                if b > a:
                    pieces.append(
                        (float(cum[b - 1] - (cum[a - 1] if a else 0)) * len(job.values), i, a, b - a)
                    )
        buckets: list[list[tuple[float, int, int, int]]] = [
            [] for _ in range(self.threads if self._pool else 1)
        ]
        for piece in sorted(pieces, reverse=True):
            min(buckets, key=lambda bk: sum(x[0] for x in bk)).append(piece)

        def run(slot: int, bucket: list[tuple[float, int, int, int]]) -> list[tuple[int, int, np.ndarray]]:
            done = []
            for _, i, a, n in bucket:
                job = jobs[i]
                c = self._predict(job.model, job.plan, job.values, slot, a, n, pred_contrib=True)
                done.append((i, a, c))
            return done

        busy = [(t, b) for t, b in enumerate(buckets) if b]
        futures = [self._pool.submit(run, t, b) for t, b in busy[1:]] if self._pool is not None else []
        results = run(*busy[0]) + [r for f in futures for r in f.result()]
        totals: dict[int, np.ndarray] = {}
        for i, _, c in sorted(results, key=lambda r: (r[0], r[1])):  # a model's pieces in tree order
            totals[i] = c if i not in totals else totals[i] + c
        for i, job in enumerate(jobs):
            out.reasons[job.name] = _top(
                totals[i], job.model.features, job.values, job.plan.descriptions, job.k, job.category
            )

    def _single(
        self, name: str, model: Any, plan: _Plan, matrix: np.ndarray, k: int, out: FastResult
    ) -> list[_Job]:
        m = np.ascontiguousarray(matrix[:, plan.index])
        out.columns[model.spec.score_column] = model.estimator.from_raw(
            self._predict(model, plan, m, raw_score=True)
        )
        return [_Job(name, model, plan, m, k, None)] if k > 0 and len(m) else []

    def _per_category(
        self, name: str, model: Any, plan: _Plan, matrix: np.ndarray, k: int, out: FastResult
    ) -> list[_Job]:
        cats = plan.categories or []
        n, c = matrix.shape[0], len(cats)
        pos = int(np.flatnonzero(plan.index < 0)[0])
        base = matrix[:, np.where(plan.index < 0, 0, plan.index)]
        m = np.repeat(base, c, axis=0)
        m[:, pos] = np.tile(np.arange(c, dtype=float), n)
        m = np.ascontiguousarray(m)
        scores = model.estimator.from_raw(self._predict(model, plan, m, raw_score=True)).reshape(n, c)
        where = {cat: j for j, cat in enumerate(cats)}
        for cat in plan.wide or []:
            out.columns[propensity_column(cat)] = (
                scores[:, where[cat]] if cat in where else np.full(n, np.nan)
            )
        if k > 0 and n:
            top = np.argmax(scores, axis=1)
            pick = np.ascontiguousarray(m[np.arange(n) * c + top])
            labels = np.array(cats, dtype=object)[top]
            return [_Job(name, model, plan, pick, k, (pos, labels))]
        return []


@dataclass
class _Job:
    """Reason codes to compute: a model's contributions for the rows ``values``."""

    name: str
    model: Any
    plan: _Plan
    values: np.ndarray
    k: int
    category: tuple[int, np.ndarray] | None

    @property
    def method(self) -> str:
        return getattr(self.model, "reasons_method", "tree_shap")


def _top(
    contributions: np.ndarray,
    features: list[str],
    values: np.ndarray,
    descriptions: list[str],
    k: int,
    category: tuple[int, np.ndarray] | None,
) -> list[list[dict[str, Any]]]:
    """As ``training.reasons.top_reasons``: the ``k`` largest |contributions| per row (stable
    order), with the row's value (the category's name for the category input)."""
    top, contrib = rank(contributions, len(features), k)
    out = []
    for i, (idx, row_c) in enumerate(zip(top.tolist(), contrib.tolist(), strict=True)):
        row = []
        for j, c in zip(idx, row_c, strict=True):
            if category is not None and j == category[0]:
                value: Any = category[1][i]
            else:
                v = float(values[i, j])
                value = None if np.isnan(v) else v
            row.append(
                {
                    "feature": features[j],
                    "value": value,
                    "contribution": c,
                    "description": descriptions[j],
                }
            )
        out.append(row)
    return out
