"""Predictive segments, declared once in YAML and read by batch scoring and real-time serving alike.

A segment file has three sections (see the packaged ``segments.yaml``):

- ``rules``: named boolean expressions over scores and traits, e.g.
  ``churn_probability >= 0.6 and clv_365d >= p80(clv_365d)``;
- ``tiers``: exclusive bands of one field by the population's percentiles (top 1 %, 1–5 % …);
- ``audiences``: one segment per value of a field (an audience per next-best action).

Expressions are parsed with Python's own grammar (:mod:`ast`) and compiled from a whitelist of
node kinds into closures over arrays: comparisons (chained too), ``and``/``or``/``not``,
``in [...]``, ``+ - * /``, numbers, strings, ``true``/``false``, field names and ``pNN(field)``
quantile references. Nothing is ever ``eval``-ed; any other construct, an unknown field or a
malformed expression is a :class:`SegmentRuleError` that names the rule and the field or token.

Quantile references are population figures: batch scoring computes them over everyone
(:meth:`SegmentBook.thresholds`) and saves them with its run (:func:`save_thresholds`); real-time
serving reads the latest (:func:`latest_thresholds`), so both give a customer the same segments for
the same scores. A missing value makes every comparison false.
"""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import yaml

from cip.categories import CATEGORIES
from cip.contracts import OFFERS
from cip.errors import CipError
from features import catalog as cat
from training.specs import SPECS

if TYPE_CHECKING:
    from training.config import TrainingSettings

KEY = "customer_id"
#: The packaged segment file (``training.segments_file`` overrides it).
DEFAULT_FILE = Path(__file__).with_name("segments.yaml")
QUANTILE = re.compile(r"^p(\d{1,2}|100)$")
Kind = Literal["rule", "tier", "audience"]
Columns = Mapping[str, np.ndarray]
Compiled = Callable[[Columns, Mapping[str, float]], np.ndarray]


class SegmentRuleError(CipError):
    """A segment declaration that cannot be used; the message names the rule and the field."""


# --- the fields rules may use ----------------------------------------------------------------------
def score_fields() -> dict[str, str]:
    """Score columns of the scoring runtime (see ``training.scoring``), with their kinds."""
    out: dict[str, str] = {}
    for s in SPECS.values():
        if s.name == "propensity":
            out |= {f"propensity_{c}": "number" for c in CATEGORIES}
        else:
            out[s.score_column] = "number"
    return out | {"next_best_action": "text", "nba_value": "number"}


def trait_fields() -> dict[str, str]:
    """Columns of the lake table ``traits`` that rules may use, with their kinds."""
    out = {f.name: "number" for f in cat.SNAPSHOT_FEATURES if f.kind in ("float", "int")}
    return out | {"r_score": "number", "f_score": "number", "m_score": "number", "rfm_segment": "text"}


def known_fields() -> dict[str, str]:
    return trait_fields() | score_fields()


# --- the parsed file -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SegmentRule:
    """One segment: its name, what kind of declaration made it, its expression and its meaning."""

    name: str
    kind: Kind
    expr: str
    description: str = ""
    group: str = ""  # the tier group or audience field it came from


@dataclass
class _Compiled:
    rule: SegmentRule
    fn: Compiled
    fields: frozenset[str]
    quantiles: frozenset[str]


class SegmentBook:
    """Every declared segment, compiled; evaluates frames (batch) and single records (serving)."""

    def __init__(self, rules: list[SegmentRule], source: str = "<segments>") -> None:
        seen: set[str] = set()
        fields = known_fields()
        self.source = source
        self._compiled: list[_Compiled] = []
        for r in rules:
            if r.name in seen:
                raise SegmentRuleError(f"{source}: segment '{r.name}' is declared twice", fix="rename one")
            seen.add(r.name)
            self._compiled.append(compile_rule(r, fields))

    @property
    def rules(self) -> list[SegmentRule]:
        return [c.rule for c in self._compiled]

    @property
    def names(self) -> list[str]:
        return [c.rule.name for c in self._compiled]

    @property
    def fields(self) -> set[str]:
        return set().union(*(c.fields for c in self._compiled)) if self._compiled else set()

    @property
    def inputs(self) -> set[str]:
        """Every field the rules and their quantile references read."""
        return self.fields | {_split_ref(r)[1] for r in self.quantile_refs}

    @property
    def quantile_refs(self) -> list[str]:
        """Every ``pNN(field)`` the rules use, sorted."""
        return sorted(set().union(*(c.quantiles for c in self._compiled))) if self._compiled else []

    def rule(self, name: str) -> SegmentRule:
        for c in self._compiled:
            if c.rule.name == name:
                return c.rule
        raise SegmentRuleError(f"no segment called '{name}'", fix=f"choose from {', '.join(self.names)}")

    # --- evaluation ---------------------------------------------------------------------------------
    def thresholds(self, population: pd.DataFrame) -> dict[str, float]:
        """Each quantile reference computed over ``population`` (missing values left out; a field
        with no value at all gives NaN, and every comparison with it is false)."""
        out: dict[str, float] = {}
        for ref in self.quantile_refs:
            q, field_name = _split_ref(ref)
            values = (
                pd.to_numeric(population[field_name], errors="coerce").to_numpy(dtype=float)
                if field_name in population.columns
                else np.array([])
            )
            values = values[~np.isnan(values)]
            out[ref] = float(np.quantile(values, q / 100.0)) if len(values) else float("nan")
        return out

    def skipped(self, thresholds: Mapping[str, float] | None) -> list[str]:
        """Segments that cannot be evaluated without the missing quantile thresholds."""
        have = set(thresholds or {})
        return [c.rule.name for c in self._compiled if not c.quantiles <= have]

    def evaluate(self, frame: pd.DataFrame, thresholds: Mapping[str, float] | None = None) -> pd.DataFrame:
        """A boolean column per segment, one row per row of ``frame`` (same index)."""
        self._require(thresholds)
        columns = _columns(frame, self.fields)
        return pd.DataFrame(
            {c.rule.name: c.fn(columns, thresholds or {}) for c in self._compiled}, index=frame.index
        )

    def assign(self, frame: pd.DataFrame, thresholds: Mapping[str, float] | None = None) -> pd.DataFrame:
        """Memberships, long: ``customer_id, segment``, customers in frame order and their
        segments in declaration order."""
        hits = self.evaluate(frame, thresholds).to_numpy()
        rows, cols = np.nonzero(hits)
        return pd.DataFrame(
            {
                KEY: frame[KEY].to_numpy()[rows],
                "segment": np.array(self.names, dtype=object)[cols] if len(cols) else np.array([], object),
            }
        )

    def segments_for(
        self, record: Mapping[str, Any], thresholds: Mapping[str, float] | None = None
    ) -> list[str]:
        """One customer's segments from a plain mapping of field values. Segments whose quantile
        thresholds are missing are left out (see :meth:`skipped`)."""
        have = thresholds or {}
        columns = {f: _array([record.get(f)], known_fields()[f]) for f in self.fields}
        return [c.rule.name for c in self._compiled if c.quantiles <= have.keys() and c.fn(columns, have)[0]]

    def _require(self, thresholds: Mapping[str, float] | None) -> None:
        missing = sorted(set(self.quantile_refs) - set(thresholds or {}))
        if missing:
            raise SegmentRuleError(
                f"quantile thresholds missing for {', '.join(missing)}",
                fix="compute them over the population with SegmentBook.thresholds (`cip score` does)",
            )


# --- loading ---------------------------------------------------------------------------------------
def load_segments(settings: TrainingSettings | None = None, path: Path | None = None) -> SegmentBook:
    """The segment file of the settings (``training.segments_file``; default the packaged one)."""
    if path is None:
        configured = getattr(getattr(settings, "training", None), "segments_file", None)
        path = Path(configured) if configured else DEFAULT_FILE
    if not path.is_file():
        raise SegmentRuleError(f"no segment file at {path}", fix="set training.segments_file to a YAML file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SegmentRuleError(f"{path} is not valid YAML: {exc}", fix="fix the file's syntax") from None
    return parse_segments(data, source=str(path))


def parse_segments(data: Mapping[str, Any], source: str = "<segments>") -> SegmentBook:
    """A :class:`SegmentBook` from the file's parsed content."""
    if not isinstance(data, Mapping):
        raise SegmentRuleError(f"{source}: expected sections rules/tiers/audiences", fix="see segments.yaml")
    unknown = set(data) - {"rules", "tiers", "audiences"}
    if unknown:
        raise SegmentRuleError(
            f"{source}: unknown section {', '.join(sorted(unknown))}", fix="use rules, tiers and audiences"
        )
    rules: list[SegmentRule] = []
    for name, body in (data.get("rules") or {}).items():
        if isinstance(body, str):
            body = {"when": body}
        if not isinstance(body, Mapping) or not isinstance(body.get("when"), str):
            raise SegmentRuleError(f"segment '{name}': give its rule as `when: <expression>`", fix=source)
        rules.append(SegmentRule(str(name), "rule", body["when"], str(body.get("description", ""))))
    for group, body in (data.get("tiers") or {}).items():
        rules += _tier_rules(str(group), body, source)
    for group, body in (data.get("audiences") or {}).items():
        rules += _audience_rules(str(group), body, source)
    return SegmentBook(rules, source)


def _tier_rules(group: str, body: Any, source: str) -> list[SegmentRule]:
    """Exclusive bands by the population's top shares: ``{top_1: 0.01, …, rest: 1.0}``."""
    if not isinstance(body, Mapping) or "field" not in body or not isinstance(body.get("bands"), Mapping):
        raise SegmentRuleError(
            f"tier group '{group}': give `field` and `bands`", fix=f"see {DEFAULT_FILE.name}"
        )
    field_name = str(body["field"])
    bands = [(str(k), float(v)) for k, v in body["bands"].items()]
    shares = [v for _, v in bands]
    if not shares or shares != sorted(shares) or shares[0] <= 0 or shares[-1] > 1:
        raise SegmentRuleError(
            f"tier group '{group}': band shares must rise within (0, 1], got {shares}",
            fix="list bands from the top share (e.g. 0.01) to 1.0",
        )
    out, upper = [], None
    for band, share in bands:
        exact = 100 * (1 - share)
        if abs(exact - round(exact)) > 1e-9:
            raise SegmentRuleError(
                f"tier '{group}.{band}': share {share} is not a whole percent", fix="e.g. 0.05"
            )
        pct = int(round(exact))
        # the lowest band (share 1.0) holds every value below the band above it; NaN never equals itself
        parts = [f"{field_name} >= p{pct}({field_name})" if pct else f"{field_name} == {field_name}"]
        if upper is not None:
            parts.append(f"{field_name} < p{upper}({field_name})")
        desc = f"{field_name} in the population's {'top ' + _pct(share) if upper is None else _band(bands, band)}"
        out.append(SegmentRule(f"{group}_{band}", "tier", " and ".join(parts), desc, group))
        upper = pct
    return out


def _pct(share: float) -> str:
    return f"{100 * share:g} %"


def _band(bands: list[tuple[str, float]], band: str) -> str:
    names = [b for b, _ in bands]
    i = names.index(band)
    return f"{_pct(bands[i - 1][1])}–{_pct(bands[i][1])} band"


def _audience_rules(group: str, body: Any, source: str) -> list[SegmentRule]:
    """One segment per value: ``{field: next_best_action, values: [...], exclude: [no_offer]}``."""
    if not isinstance(body, Mapping) or "field" not in body:
        raise SegmentRuleError(f"audience group '{group}': give `field`", fix=f"see {DEFAULT_FILE.name}")
    field_name = str(body["field"])
    values = body.get("values") or (list(OFFERS) if field_name == "next_best_action" else None)
    if not values:
        raise SegmentRuleError(f"audience group '{group}': give `values`", fix="list the values to split by")
    exclude = set(map(str, body.get("exclude") or ()))
    return [
        SegmentRule(
            f"{group}_{v}", "audience", f"{field_name} == {json.dumps(str(v))}", f"{field_name} is {v}", group
        )
        for v in map(str, values)
        if v not in exclude
    ]


# --- the expression compiler -------------------------------------------------------------------------
_COMPARE: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def compile_rule(rule: SegmentRule, fields: Mapping[str, str]) -> _Compiled:
    """Parse and compile one rule; errors name the rule and the offending field or construct."""
    text = rule.expr.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", text))
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise SegmentRuleError(
            f"segment '{rule.name}': cannot parse `{rule.expr}` ({exc.msg} at column {exc.offset})",
            fix="write e.g. `churn_probability >= 0.6 and clv_365d >= p80(clv_365d)`",
        ) from None
    used: set[str] = set()
    refs: set[str] = set()
    fn, kind = _node(tree.body, rule, fields, used, refs)
    if kind != "bool":
        raise SegmentRuleError(
            f"segment '{rule.name}': `{rule.expr}` is not a condition", fix="compare a field, e.g. `x >= 1`"
        )
    return _Compiled(rule, fn, frozenset(used), frozenset(refs))


def _bad(rule: SegmentRule, what: str) -> SegmentRuleError:
    return SegmentRuleError(
        f"segment '{rule.name}': {what} in `{rule.expr}`",
        fix="rules may use fields, numbers, strings, comparisons, and/or/not, in [...], + - * / and pNN(field)",
    )


def _node(node: ast.AST, rule: SegmentRule, fields: Mapping[str, str], used: set[str], refs: set[str]):
    """(closure, kind) for an expression node; kind is ``bool``, ``number``, ``text`` or ``list``."""
    if isinstance(node, ast.BoolOp):
        parts = [_node(v, rule, fields, used, refs) for v in node.values]
        if any(k != "bool" for _, k in parts):
            raise _bad(rule, "and/or joins something that is not a condition")
        fns = [f for f, _ in parts]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def boolop(cols, th, fns=fns, combine=combine):
            out = fns[0](cols, th)
            for f in fns[1:]:
                out = combine(out, f(cols, th))
            return out

        return boolop, "bool"
    if isinstance(node, ast.UnaryOp):
        inner, kind = _node(node.operand, rule, fields, used, refs)
        if isinstance(node.op, ast.Not) and kind == "bool":
            return (lambda cols, th: np.logical_not(inner(cols, th))), "bool"
        if isinstance(node.op, ast.USub) and kind == "number":
            return (lambda cols, th: -inner(cols, th)), "number"
        raise _bad(rule, f"`{ast.unparse(node)}` is not allowed")
    if isinstance(node, ast.Compare):
        return _compare(node, rule, fields, used, refs), "bool"
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
        (lf, lk), (rf, rk) = (_node(n, rule, fields, used, refs) for n in (node.left, node.right))
        if lk != "number" or rk != "number":
            raise _bad(rule, f"arithmetic on something that is not a number: `{ast.unparse(node)}`")
        op = _ARITH[type(node.op)]

        def arith(cols, th, lf=lf, rf=rf, op=op):
            with np.errstate(divide="ignore", invalid="ignore"):
                return op(lf(cols, th), rf(cols, th))

        return arith, "number"
    if isinstance(node, ast.Name):
        if node.id in fields:
            used.add(node.id)
            name, kind = node.id, fields[node.id]
            return (lambda cols, th: cols[name]), kind
        raise SegmentRuleError(
            f"segment '{rule.name}': unknown field '{node.id}' in `{rule.expr}`",
            fix=f"use a score or trait field, e.g. {', '.join(list(score_fields())[:4])}, recency_days",
        )
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            return (lambda cols, th: np.asarray(value)), "bool"
        if isinstance(value, (int, float)):
            return (lambda cols, th: np.asarray(float(value))), "number"
        if isinstance(value, str):
            return (lambda cols, th: np.asarray(value, dtype=object)), "text"
        raise _bad(rule, f"the constant {value!r} is not allowed")
    if isinstance(node, ast.Call):
        return _quantile(node, rule, fields, used, refs), "number"
    if isinstance(node, (ast.List, ast.Tuple)):
        items = []
        for elt in node.elts:
            if not isinstance(elt, ast.Constant) or not isinstance(elt.value, (int, float, str)):
                raise _bad(rule, "a list may hold only numbers and strings")
            items.append(elt.value)
        return (lambda cols, th: items), "list"
    raise _bad(rule, f"`{ast.unparse(node)}` is not allowed")


def _quantile(node: ast.Call, rule: SegmentRule, fields, used, refs):
    name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    if not QUANTILE.match(name):
        raise _bad(rule, f"`{name}(...)` is not a quantile reference (write pNN(field), e.g. p80(clv_365d))")
    if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], ast.Name):
        raise _bad(rule, f"`{ast.unparse(node)}` must name one field")
    field_name = node.args[0].id
    if field_name not in fields:
        raise SegmentRuleError(
            f"segment '{rule.name}': unknown field '{field_name}' in `{rule.expr}`",
            fix="quantiles are taken of score or trait fields, e.g. p80(clv_365d)",
        )
    if fields[field_name] != "number":
        raise _bad(rule, f"a quantile of the text field '{field_name}'")
    used.add(field_name)
    ref = f"{name}({field_name})"
    refs.add(ref)
    return lambda cols, th: np.asarray(th.get(ref, np.nan), dtype=float)


def _compare(node: ast.Compare, rule: SegmentRule, fields, used, refs):
    left = _node(node.left, rule, fields, used, refs)
    steps = []
    for op, comp in zip(node.ops, node.comparators, strict=True):
        right = _node(comp, rule, fields, used, refs)
        if isinstance(op, (ast.In, ast.NotIn)):
            if right[1] != "list":
                raise _bad(rule, "`in` needs a list, e.g. rfm_segment in ['champions', 'loyal']")
            steps.append((op, left, right))
        elif type(op) in _COMPARE:
            kinds = {left[1], right[1]}
            if "list" in kinds or "bool" in kinds or len(kinds) > 1:
                raise _bad(rule, f"`{ast.unparse(node)}` compares a {left[1]} with a {right[1]}")
            if kinds == {"text"} and type(op) not in (ast.Eq, ast.NotEq):
                raise _bad(rule, "text fields compare only with == and !=")
            steps.append((op, left, right))
        else:
            raise _bad(rule, f"the comparison `{ast.unparse(node)}` is not allowed")
        left = right

    def compare(cols, th):
        out = None
        for op, (lf, lk), (rf, _) in steps:
            a = lf(cols, th)
            if isinstance(op, (ast.In, ast.NotIn)):
                hit = np.isin(np.asarray(a, dtype=object), np.asarray(rf(cols, th), dtype=object))
                present = _present(a, lk)
                hit = (hit if isinstance(op, ast.In) else ~hit) & present
            else:
                b = rf(cols, th)
                with np.errstate(invalid="ignore"):
                    hit = np.asarray(_COMPARE[type(op)](a, b), dtype=bool) & _present(a, lk) & _present(b, lk)
            out = hit if out is None else out & hit
        return out

    return compare


def _present(values: Any, kind: str) -> np.ndarray:
    """Which values are not missing (NaN or None)."""
    arr = np.asarray(values)
    if kind == "number":
        return ~np.isnan(arr.astype(float))
    return np.asarray(pd.notna(arr), dtype=bool)


def _array(values: Any, kind: str) -> np.ndarray:
    if kind == "number":
        return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=float)
    return np.asarray(pd.Series(values, dtype=object).where(lambda s: pd.notna(s), None), dtype=object)


def _columns(frame: pd.DataFrame, names: set[str]) -> dict[str, np.ndarray]:
    """The frame's columns the rules read; a known field the frame lacks counts as missing."""
    kinds = known_fields()
    n = len(frame)
    return {name: _array(frame[name] if name in frame.columns else [None] * n, kinds[name]) for name in names}


def _split_ref(ref: str) -> tuple[int, str]:
    q, field_name = ref[1:].split("(", 1)
    return int(q), field_name.rstrip(")")


# --- thresholds saved with a batch run ----------------------------------------------------------------
def thresholds_dir(settings: TrainingSettings) -> Path:
    return settings.data_dir / "segments" / "thresholds"


def save_thresholds(settings: TrainingSettings, run_id: str, thresholds: Mapping[str, float]) -> Path:
    """Save a run's quantile thresholds; the newest saved is what :func:`latest_thresholds` reads."""
    from cip.lake import _write_json_atomic

    folder = thresholds_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {
        "run_id": run_id,
        "saved_at": datetime.now(UTC).isoformat(),
        "thresholds": {k: (None if np.isnan(v) else float(v)) for k, v in thresholds.items()},
    }
    path = folder / f"{run_id}.json"
    _write_json_atomic(path, payload)
    _write_json_atomic(folder / "latest.json", payload)
    return path


def latest_thresholds(settings: TrainingSettings) -> tuple[str, dict[str, float]] | None:
    """``(run_id, thresholds)`` of the latest batch run, or None before the first one."""
    path = thresholds_dir(settings) / "latest.json"
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    th = {k: (float("nan") if v is None else float(v)) for k, v in payload["thresholds"].items()}
    return str(payload["run_id"]), th
