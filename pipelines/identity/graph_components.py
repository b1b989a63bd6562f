"""Array-level building blocks of the identity resolver (internal to :mod:`pipelines.identity.graph`).

Everything here works on integer node codes, where a node's code is its rank among all node keys
sorted as strings. That makes every result independent of input row order. The big arrays are only
touched by vectorised numpy/scipy/pyarrow calls; the single Python loop (the careful union-find)
only runs over edges of components that break a limit or a never-link pair.

Note: ``np.argsort``/``np.lexsort``/``np.unique`` are avoided on arrays the size of the edge list:
without AVX-512 they are 5-50x slower than ``np.sort`` of packed int64 keys, which is used instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components

from pipelines.identity.config import IDENTIFIER_TYPES, IdentityConfig

INT64_MAX = np.iinfo(np.int64).max

# Reason codes (index into REASONS); 0 means accepted.
ACCEPTED = 0
INVALID_NODE = 1
BLOCKED_VALUE = 2
SHARED_IDENTIFIER = 3
BELOW_THRESHOLD = 4
NEVER_LINK = 5
LIMIT_EXCEEDED = 6
WEAK_IDENTIFIER = 7
REASONS: tuple[str | None, ...] = (
    None,
    "invalid_node",
    "blocked_value",
    "shared_identifier",
    "below_threshold",
    "never_link",
    "limit_exceeded",
    "weak_identifier",
)


@dataclass
class NodeTable:
    """Sorted unique node keys and their types."""

    keys: np.ndarray  # object array of node keys, sorted
    keys_arrow: pa.Array  # the same keys as an Arrow array
    type_code: np.ndarray  # int16 index into type_names
    type_names: list[str]

    @property
    def n(self) -> int:
        return len(self.keys)


def encode_nodes(columns: list[pd.Series]) -> tuple[NodeTable, list[np.ndarray]]:
    """Dictionary-encode several string columns into one shared code space.

    Codes are ranks in the sorted set of distinct values; null or empty values get -1.
    """
    arrays = [_to_arrow_strings(col) for col in columns]
    combined = pa.concat_arrays(arrays) if arrays else pa.array([], type=pa.large_string())
    encoded = pc.dictionary_encode(combined)
    dictionary = encoded.dictionary
    order = pc.sort_indices(dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    raw = encoded.indices.fill_null(-1).to_numpy().astype(np.int64, copy=False)
    codes = np.where(raw >= 0, rank[np.maximum(raw, 0)], -1)
    keys_arrow = dictionary.take(pa.array(order))
    keys = keys_arrow.to_numpy(zero_copy_only=False)
    if len(keys) and keys[0] == "":  # "" sorts first: treat like null
        codes[codes == 0] = -1
    out, start = [], 0
    for arr in arrays:
        out.append(codes[start : start + len(arr)])
        start += len(arr)
    type_code, type_names = _node_types(keys)
    return NodeTable(keys=keys, keys_arrow=keys_arrow, type_code=type_code, type_names=type_names), out


def encode_values(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dictionary codes (-1 for null) and distinct values (as str, object array) of one column."""
    encoded = pc.dictionary_encode(_to_arrow_strings(col))
    codes = encoded.indices.fill_null(-1).to_numpy().astype(np.int64, copy=False)
    return codes, encoded.dictionary.to_numpy(zero_copy_only=False)


def first_occurrence_only(codes: np.ndarray, n: int) -> np.ndarray:
    """``codes`` with every repeat of an earlier code (and -1) replaced by -1."""
    pos = np.arange(len(codes), dtype=np.int64)
    ok = codes >= 0
    first = np.full(n, len(codes), dtype=np.int64)
    np.minimum.at(first, codes[ok], pos[ok])
    keep = ok & (first[np.maximum(codes, 0)] == pos)
    return np.where(keep, codes, -1)


def _to_arrow_strings(col: pd.Series) -> pa.Array:
    arr = pa.array(col, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr.cast(pa.large_string())


def _node_types(keys: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Type of each sorted key (the part before the first ':').

    Keys sharing the prefix ``"<type>:"`` are contiguous in sorted order, so known types are found
    with two binary searches each; only keys outside those ranges are parsed one by one.
    """
    type_names = list(IDENTIFIER_TYPES)
    type_code = np.full(len(keys), -1, dtype=np.int16)
    for i, name in enumerate(type_names):
        lo = int(np.searchsorted(keys, name + ":", side="left"))
        hi = int(np.searchsorted(keys, name + ";", side="left"))  # ';' follows ':' in ASCII
        type_code[lo:hi] = i
    rest = np.flatnonzero(type_code < 0)
    if len(rest):
        extra = [str(k).partition(":")[0] if ":" in str(k) else "" for k in keys[rest]]
        codes, uniques = pd.factorize(pd.Series(extra, dtype=object))
        type_code[rest] = codes + len(type_names)
        type_names.extend(str(u) for u in uniques)
    return type_code, type_names


def type_range(nodes: NodeTable, name: str) -> tuple[int, int]:
    """[lo, hi) of the nodes of one known identifier type (contiguous in sorted order)."""
    lo = int(np.searchsorted(nodes.keys, name + ":", side="left"))
    hi = int(np.searchsorted(nodes.keys, name + ";", side="left"))
    return lo, hi


def blocked_nodes(nodes: NodeTable, config: IdentityConfig) -> np.ndarray:
    """Boolean mask of nodes whose value matches a blocked pattern of their type's rule."""
    blocked = np.zeros(nodes.n, dtype=bool)
    for rule in config.identifiers:
        if not rule.blocked_patterns:
            continue
        lo, hi = type_range(nodes, rule.type)
        if hi <= lo:
            continue
        values = pc.utf8_slice_codeunits(nodes.keys_arrow.slice(lo, hi - lo), start=len(rule.type) + 1)
        for pattern in rule.blocked_patterns:
            blocked[lo:hi] |= _regex_search(values, pattern)
    return blocked


def _regex_search(values: pa.Array, pattern: str) -> np.ndarray:
    """Which values contain a match of ``pattern``: Arrow's RE2 when it accepts the pattern (fast),
    Python ``re`` otherwise (e.g. backreferences)."""
    try:
        hit = pc.match_substring_regex(values, pattern)
        return hit.fill_null(False).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        search = re.compile(pattern).search
        return np.fromiter((search(x) is not None for x in values.to_pylist()), dtype=bool, count=len(values))


def shared_nodes(
    nodes: NodeTable,
    config: IdentityConfig,
    src: np.ndarray,
    dst: np.ndarray,
    group: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of nodes with more distinct neighbours of a type than their ``max_degree``.

    ``src``/``dst`` are the edges that count (blocked and self-loop edges already removed).
    ``group`` (per node) counts neighbours of one group once: the accounts one person holds.
    """
    shared = np.zeros(nodes.n, dtype=bool)
    rules = [(r.type, nb, k) for r in config.identifiers for nb, k in r.max_degree.items()]
    rules = [(t, nb, k) for t, nb, k in rules if t in nodes.type_names and nb in nodes.type_names]
    if not rules or len(src) == 0:
        return shared
    n = np.int64(nodes.n)
    t_src = nodes.type_code[src]
    t_dst = nodes.type_code[dst]
    for node_type, neighbour_type, limit in rules:
        tc = nodes.type_names.index(node_type)
        nc = nodes.type_names.index(neighbour_type)
        fwd = (t_src == tc) & (t_dst == nc)
        bwd = (t_dst == tc) & (t_src == nc)
        if not (fwd.any() or bwd.any()):
            continue
        ends = (dst[fwd], src[bwd]) if group is None else (group[dst[fwd]], group[src[bwd]])
        key = np.concatenate([src[fwd] * n + ends[0], dst[bwd] * n + ends[1]])
        key = sorted_unique(key)
        degree = np.bincount(key // n, minlength=nodes.n)
        shared |= degree > limit
    return shared


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """``np.unique`` for int arrays via ``np.sort`` (much faster than numpy 2.3's np.unique here)."""
    if len(values) == 0:
        return values
    s = np.sort(values)
    keep = np.empty(len(s), dtype=bool)
    keep[0] = True
    np.not_equal(s[1:], s[:-1], out=keep[1:])
    return s[keep]


def components(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Connected-component label of every node (labels in scipy's order)."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    data = np.ones(len(src), dtype=np.int8)
    graph = coo_array((data, (src.astype(np.int32), dst.astype(np.int32))), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="weak")
    return labels.astype(np.int64, copy=False)


def relabel_by_first_node(labels: np.ndarray, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber component labels 0..C-1 in order of each component's smallest member code.

    ``members`` masks the nodes that take part (others get -1). Returns (new label per node,
    smallest member code of each new label). O(n), no sorting.
    """
    n = len(labels)
    out = np.full(n, -1, dtype=np.int64)
    idx = np.flatnonzero(members)
    if len(idx) == 0:
        return out, np.zeros(0, dtype=np.int64)
    lab = labels[idx]
    first = np.full(int(lab.max()) + 1, n, dtype=np.int64)
    np.minimum.at(first, lab, idx)
    is_first = np.zeros(n, dtype=bool)
    is_first[first[first < n]] = True
    firsts = np.flatnonzero(is_first)
    new_label = np.full(len(first), -1, dtype=np.int64)
    new_label[labels[firsts]] = np.arange(len(firsts), dtype=np.int64)
    out[idx] = new_label[lab]
    return out, firsts


def careful_union(
    n_local: int,
    u: np.ndarray,
    v: np.ndarray,
    type_counts: np.ndarray,
    limits: np.ndarray,
    never_pairs: np.ndarray,
    strong: np.ndarray | None = None,
    weak: np.ndarray | None = None,
    accounts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Union-find over pre-ordered unique edges, refusing unions that break a constraint.

    ``u``/``v``: local node ids of unique node pairs, strongest first. ``type_counts``: (n_local, m)
    counts of each limited identifier type per node, ``limits``: (m,) max per customer.
    ``never_pairs``: (p, 2) local ids that must stay apart. ``strong`` (per pair): direct evidence
    — each strong join of two account-holding sides (``accounts``: 1 for account nodes) raises the
    joined customer's allowance of every limited type by one, so a group of k strongly matched
    accounts counts as one account and the limits never cut it. ``weak`` (per pair): the pair goes
    through a weak identifier, which never joins two sides that each hold an account
    (``accounts``: 1 for account nodes). Returns (root of each local node, reason code per pair:
    ACCEPTED, NEVER_LINK, LIMIT_EXCEEDED or WEAK_IDENTIFIER, and per pair the index of the limited
    type that refused it — or, for an accepted strong pair, that it was kept past — else -1). A
    weak pair refused while its two ends still end up in one customer is reported accepted.
    """
    n_pairs = len(u)
    strong_l = strong.tolist() if strong is not None else [False] * n_pairs
    weak_l = weak.tolist() if weak is not None else [False] * n_pairs
    acc: list[int] = accounts.astype(np.int64).tolist() if accounts is not None else [0] * n_local
    parent = list(range(n_local))
    size = [1] * n_local
    extra = [0] * n_local  # strong joins of account-holding sides inside each root
    # Per-root counts of the limited types packed in one Python int, FIELD bits per type. Adding
    # OFFSET sets a field's top bit exactly when that field's count exceeds its limit, so a whole
    # limit check is one add and one and; a root's allowance is raised by subtracting extra * ONES.
    m = type_counts.shape[1]
    field = 40
    packed_counts = type_counts.astype(object) << np.array([field * j for j in range(m)], dtype=object)
    counts: list[int] = packed_counts.sum(axis=1).tolist() if m else []
    top = (1 << (field - 1)) - 1
    offset = sum((top - int(limits[j])) << (field * j) for j in range(m))
    high = sum(1 << (field * j + field - 1) for j in range(m))
    ones = sum(1 << (field * j) for j in range(m))
    partners: dict[int, set[int]] = {}
    members: dict[int, set[int]] = {}
    for a, b in never_pairs.tolist():
        partners.setdefault(a, set()).add(b)
        partners.setdefault(b, set()).add(a)
        members.setdefault(a, {a})
        members.setdefault(b, {b})

    def broken_type(bits: int) -> int:
        return (bits & -bits).bit_length() // field - 1 if bits else -1

    decision = [ACCEPTED] * n_pairs
    limit_type = [-1] * n_pairs
    for i, (a, b) in enumerate(zip(u.tolist(), v.tolist(), strict=True)):
        ra = a
        while parent[ra] != ra:  # path halving
            parent[ra] = parent[parent[ra]]
            ra = parent[ra]
        rb = b
        while parent[rb] != rb:
            parent[rb] = parent[parent[rb]]
            rb = parent[rb]
        if ra == rb:
            continue
        if partners:
            pa_ = partners.get(ra)
            if pa_ is not None and rb in members and not pa_.isdisjoint(members[rb]):
                decision[i] = NEVER_LINK
                continue
        both_accounts = acc[ra] > 0 and acc[rb] > 0
        grow = 1 if strong_l[i] and both_accounts else 0
        if weak_l[i] and both_accounts and not strong_l[i]:
            decision[i] = WEAK_IDENTIFIER
            continue
        if m:
            total = counts[ra] + counts[rb]
            bits = (total + offset - (extra[ra] + extra[rb] + grow) * ones) & high
            if bits:
                decision[i] = LIMIT_EXCEEDED
                limit_type[i] = broken_type(bits)
                continue
            if grow:  # the limit, counted in plain identifiers, that this strong link was kept past
                limit_type[i] = broken_type((total + offset) & high)
        if size[ra] < size[rb]:
            ra, rb = rb, ra
        parent[rb] = ra
        size[ra] += size[rb]
        acc[ra] += acc[rb]
        extra[ra] += extra[rb] + grow
        if m:
            counts[ra] = total
        if rb in partners:
            if ra in partners:
                partners[ra] |= partners.pop(rb)
                members[ra] |= members.pop(rb)
            else:
                partners[ra] = partners.pop(rb)
                members[ra] = members.pop(rb)
    roots = np.array(parent, dtype=np.int64)
    while True:  # full compression, vectorised
        nxt = roots[roots]
        if np.array_equal(nxt, roots):
            break
        roots = nxt
    out = np.array(decision, dtype=np.int8)
    refused_weak = np.flatnonzero(out == WEAK_IDENTIFIER)
    if len(refused_weak):  # other evidence joined them anyway: the link agrees with the customer
        same = roots[u[refused_weak]] == roots[v[refused_weak]]
        out[refused_weak[same]] = ACCEPTED
    return roots, out, np.array(limit_type, dtype=np.int64)
