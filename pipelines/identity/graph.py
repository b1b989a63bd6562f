"""Deterministic identity-graph resolver: identifier edges in, stable customer ids out.

Pure functions over DataFrames (no I/O). :func:`resolve` runs, in order:

1. **blocked values** — identifiers matching their rule's ``blocked_patterns`` leave the graph and
   every edge touching them is rejected (``blocked_value``);
2. **shared identifiers** — an identifier with more distinct neighbours of a type than its rule's
   ``max_degree`` keeps no edge (``shared_identifier``) and stands alone as its own customer;
3. **threshold** — edges whose ``probability`` is below ``probabilistic_threshold`` are rejected
   (``below_threshold``; deterministic edges carry 1.0, a missing probability counts as 1.0);
4. **components** — scipy connected components over integer-coded nodes (vectorised);
5. **careful path** — only components that break a ``max_per_customer`` limit, hold a never-link
   pair or a weak identifier (``evidence: weak``) linked to two accounts are rebuilt by a union-find
   that adds unique node pairs strongest first: strong evidence first (a probabilistic pair at or
   above ``strong_match_probability``, or a deterministic pair of two ``strong`` identifiers), then
   edge-type priority, the weaker and the stronger endpoint's identifier priority, deterministic
   before probabilistic, higher probability, earlier ``observed_at``, node keys. It refuses any
   union that would join a never-link pair (``never_link``); strong evidence is joined whatever the
   limits say, and each group of k strongly matched accounts counts as one account (its allowance of
   every limited type grows by k - 1); other unions that exceed a limit are refused
   (``limit_exceeded``), and a weak identifier never joins two sides that each hold an account
   (``weak_identifier``). With ``prefer_previous_links`` (default) pairs inside one previous
   customer go first (after strong evidence), so appended data cannot reshuffle an existing
   customer. Every edge gets a ``rule`` naming the guard that cut it or the evidence that kept it;
6. **stable ids** — see :mod:`pipelines.identity.graph_ids`.

Edges may carry an optional boolean ``contradicted`` column: the matcher found the two records
speaking against the match on a key field (``strong_match_roles``), so a probabilistic edge with it is
never strong evidence, whatever its probability.

Every node present in the edges and not blocked appears in ``identity_map`` (a node whose edges
were all rejected is a customer of its own). Nodes of ``previous_map`` that no longer occur in the
edges are not carried over: ``edges`` must be the full edge set, not an increment. The result does
not depend on the order of the input rows.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipelines.identity import graph_components as gc
from pipelines.identity.config import IdentityConfig
from pipelines.identity.graph_ids import HISTORY_COLUMNS, assign_customer_ids

EDGE_COLUMNS = ["src", "dst", "edge_type", "source", "probability", "observed_at"]
IDENTITY_MAP_COLUMNS = ["node", "node_type", "customer_id", "first_seen"]
ALARM_COLUMNS = ["customer_id", "size"]
ACCEPTED = "accepted"
REJECTED = "rejected"
REASONS = tuple(r for r in gc.REASONS if r is not None)


@dataclass
class Resolution:
    """Output of :func:`resolve`."""

    #: node, node_type, customer_id, first_seen — one row per resolved node, sorted by node.
    identity_map: pd.DataFrame
    #: the input edges (same rows, same order) plus status, reason, rule, customer_id. ``rule`` names
    #: the guard that cut the edge (``crm_id.max_per_customer=2``, ``phone.evidence=weak``, ...) or
    #: what kept it (``strong_match p>=0.99``, ``within limits``).
    edges: pd.DataFrame
    #: run_id, event (create/merge/split), customer_id, other_customer_id, n_nodes.
    history: pd.DataFrame
    #: customer_id, size — customers with more nodes than ``cluster_size_alarm``.
    alarms: pd.DataFrame
    stats: dict[str, Any]
    #: wall-clock seconds per phase (not part of the deterministic output).
    timings: dict[str, float] = field(default_factory=dict)

    def customer_of(self, node: str) -> str | None:
        hit = self.identity_map.loc[self.identity_map["node"] == node, "customer_id"]
        return None if hit.empty else str(hit.iat[0])


def resolve(
    edges: pd.DataFrame,
    config: IdentityConfig,
    previous_map: pd.DataFrame | None = None,
    never_link: pd.DataFrame | None = None,
    run_id: str = "run",
) -> Resolution:
    """Resolve identifier edges into customers. See the module docstring for the rules."""
    clock = _Clock()
    _require(edges, ["src", "dst", "edge_type"], "edges")
    n_rows = len(edges)
    prob = _probabilities(edges)
    contradicted = _flags(edges, "contradicted")
    observed = _ns(edges["observed_at"]) if "observed_at" in edges else np.full(n_rows, gc.INT64_MAX)
    prev = _previous(previous_map)
    never = _never_link(never_link)
    clock.tick("prepare")

    nodes, (src, dst, prev_codes, nl_a, nl_b) = gc.encode_nodes(
        [edges["src"], edges["dst"], prev["node"], never["a"], never["b"]]
    )
    n = nodes.n
    prev_cid, cid_names = gc.encode_values(prev["customer_id"])
    prev_codes = gc.first_occurrence_only(np.where(prev_cid >= 0, prev_codes, -1), n)
    clock.tick("encode")

    is_prob = edges["edge_type"].astype(str).isin(config.probabilistic_edge_types).to_numpy() | (prob < 1.0)
    reason, valid, present, blocked, shared = _node_guards(
        nodes, config, src, dst, prob, is_prob & ~contradicted
    )
    s0 = np.maximum(src, 0)  # safe indices; invalid rows are masked
    clock.tick("guards")

    cand = (reason == 0) & (src != dst)
    labels = gc.components(n, src[cand], dst[cand])
    members = present & ~blocked
    clock.tick("components")

    flagged = _flag_components(nodes, config, labels, members, nl_a, nl_b, src[cand], dst[cand])
    n_slow_edges = 0
    limit_type = np.full(n_rows, -1, dtype=np.int64)  # node type code behind a limit decision
    if flagged.any():
        node_prev = np.full(n, -1, dtype=np.int64)
        if config.prefer_previous_links:
            known = prev_codes >= 0
            node_prev[prev_codes[known]] = prev_cid[known]
        labels, n_slow_edges = _careful_path(
            nodes,
            config,
            edges,
            labels,
            members,
            flagged,
            cand,
            src,
            dst,
            prob,
            observed,
            nl_a,
            nl_b,
            node_prev,
            reason,
            limit_type,
            contradicted,
        )
    cluster, firsts = gc.relabel_by_first_node(labels, members)
    clock.tick("careful_path")

    first_seen = np.full(n, gc.INT64_MAX, dtype=np.int64)
    np.minimum.at(first_seen, src[valid], observed[valid])
    np.minimum.at(first_seen, dst[valid], observed[valid])
    known = prev_codes >= 0
    np.minimum.at(first_seen, prev_codes[known], prev["fs"].to_numpy()[known])
    cluster_id, history, id_counts = assign_customer_ids(
        nodes.keys,
        cluster,
        firsts,
        prev_codes,
        prev_cid,
        cid_names,
        prev["fs"].to_numpy(),
        config.id_prefix,
        run_id,
    )
    clock.tick("ids")

    identity_map, node_customer, idx = _identity_map(nodes, members, cluster, cluster_id, first_seen)

    out = edges.copy(deep=False)
    rejected = reason != 0
    out["status"] = np.array([ACCEPTED, REJECTED], dtype=object)[rejected.astype(np.int8)]
    out["reason"] = np.array(gc.REASONS, dtype=object)[reason]
    out["rule"] = _rules(
        nodes, config, is_prob, reason, limit_type, src, dst, blocked, shared, prob, contradicted
    )
    out["customer_id"] = np.where(rejected, None, node_customer[s0])

    sizes = np.bincount(cluster[idx], minlength=len(firsts))
    big = np.flatnonzero(sizes > config.cluster_size_alarm)
    alarms = pd.DataFrame({"customer_id": cluster_id[big], "size": sizes[big].astype(np.int64)})
    alarms = alarms.sort_values(["size", "customer_id"], ascending=[False, True], ignore_index=True)
    clock.tick("outputs")

    stats = _stats(
        run_id,
        reason,
        idx,
        blocked,
        shared & members,
        firsts,
        sizes,
        alarms,
        flagged,
        n_slow_edges,
        id_counts,
    )
    return Resolution(
        identity_map=identity_map,
        edges=out,
        history=history,
        alarms=alarms,
        stats=stats,
        timings=clock.laps,
    )


def _node_guards(
    nodes: Any,
    config: IdentityConfig,
    src: np.ndarray,
    dst: np.ndarray,
    prob: np.ndarray,
    sound_prob: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """First guards, per edge: invalid nodes, blocked values, shared identifiers, weak matches.

    A shared identifier's degree counts persons, not records: accounts that strong, uncontradicted
    Splink pairs (``sound_prob`` and ``strong_match_probability``) join count as one, so the e-mail
    on a person's six re-registrations is not taken for a shop's. Returns the reason code per edge
    (0 = still a candidate), which edges are valid, and which nodes are present, blocked and shared."""
    reason = np.zeros(len(src), dtype=np.int8)
    valid = (src >= 0) & (dst >= 0)
    reason[~valid] = gc.INVALID_NODE
    present = np.zeros(nodes.n, dtype=bool)
    present[src[src >= 0]] = True
    present[dst[dst >= 0]] = True
    s0, d0 = np.maximum(src, 0), np.maximum(dst, 0)  # safe indices; invalid rows are masked

    blocked = gc.blocked_nodes(nodes, config) & present
    reason[(reason == 0) & (blocked[s0] | blocked[d0])] = gc.BLOCKED_VALUE
    live = (reason == 0) & (src != dst)
    person = None
    if config.strong_match_probability is not None:
        strong = live & sound_prob & (prob >= config.strong_match_probability)
        person = gc.components(nodes.n, src[strong], dst[strong]) if strong.any() else None
    shared = gc.shared_nodes(nodes, config, src[live], dst[live], person)
    reason[(reason == 0) & (shared[s0] | shared[d0])] = gc.SHARED_IDENTIFIER
    reason[(reason == 0) & (prob < config.probabilistic_threshold)] = gc.BELOW_THRESHOLD
    return reason, valid, present, blocked, shared


def _identity_map(
    nodes: Any, members: np.ndarray, cluster: np.ndarray, cluster_id: np.ndarray, first_seen: np.ndarray
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The identity map (node, type, customer, first seen), each node's customer, and member indices."""
    idx = np.flatnonzero(members)
    node_customer = np.full(len(members), None, dtype=object)
    node_customer[idx] = cluster_id[cluster[idx]]
    identity_map = pd.DataFrame(
        {
            "node": nodes.keys[idx],
            "node_type": np.array(nodes.type_names, dtype=object)[nodes.type_code[idx]],
            "customer_id": node_customer[idx],
            "first_seen": _to_timestamps(first_seen[idx]),
        }
    )
    return identity_map, node_customer, idx


def _stats(
    run_id: str,
    reason: np.ndarray,
    idx: np.ndarray,
    blocked: np.ndarray,
    shared_members: np.ndarray,
    firsts: np.ndarray,
    sizes: np.ndarray,
    alarms: pd.DataFrame,
    flagged: np.ndarray,
    n_slow_edges: int,
    id_counts: dict[str, int],
) -> dict[str, Any]:
    """Counts of one resolution: edges by outcome and reason, nodes, customers, alarms, careful path."""
    reason_counts = np.bincount(reason, minlength=len(gc.REASONS))
    return {
        "run_id": run_id,
        "n_edges": int(len(reason)),
        "n_accepted": int(reason_counts[0]),
        "n_rejected": int((reason != 0).sum()),
        "rejected_by_reason": {r: int(reason_counts[i]) for i, r in enumerate(gc.REASONS) if i},
        "n_nodes": int(len(idx)),
        "n_blocked_nodes": int(blocked.sum()),
        "n_shared_nodes": int(shared_members.sum()),
        "n_customers": int(len(firsts)),
        "n_singletons": int((sizes == 1).sum()),
        "largest_customer": int(sizes.max()) if len(sizes) else 0,
        "n_alarms": int(len(alarms)),
        "n_careful_components": int(flagged.sum()),
        "n_careful_edges": int(n_slow_edges),
        **{f"ids_{k}": v for k, v in id_counts.items()},
    }


def explain_path(resolution_edges: pd.DataFrame, a: str, b: str) -> list[dict[str, Any]]:
    """The shortest chain of accepted edges linking nodes ``a`` and ``b`` (BFS), as edge rows.

    Rows come in path order, from ``a`` to ``b``; among parallel edges between two nodes the
    earliest observed one is shown. Returns ``[]`` when ``a == b`` or when no accepted path links
    them (different customers, unknown node).
    """
    if a == b:
        return []
    e = resolution_edges
    ok = (e["status"] == ACCEPTED) & (e["src"] != e["dst"])
    if "customer_id" in e:
        touching = ok & ((e["src"] == a) | (e["dst"] == a))
        customers = e.loc[touching, "customer_id"].dropna().unique()
        if len(customers) == 0:
            return []
        ok &= e["customer_id"] == customers[0]
    sub = e[ok]
    if "observed_at" in sub and len(sub):
        sub = sub.assign(_t=pd.to_datetime(sub["observed_at"], utc=True))
        sub = sub.sort_values(["_t", "edge_type"], kind="stable", na_position="last").drop(columns="_t")
    best: dict[tuple[str, str], int] = {}
    adjacency: dict[str, set[str]] = {}
    for pos, (s, d) in enumerate(zip(sub["src"].tolist(), sub["dst"].tolist(), strict=True)):
        key = (s, d) if s <= d else (d, s)
        if key in best:
            continue
        best[key] = pos
        adjacency.setdefault(s, set()).add(d)
        adjacency.setdefault(d, set()).add(s)
    parent: dict[str, str] = {a: a}
    queue = deque([a])
    while queue and b not in parent:
        node = queue.popleft()
        for nxt in sorted(adjacency.get(node, ())):
            if nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    if b not in parent:
        return []
    path = [b]
    while path[-1] != a:
        path.append(parent[path[-1]])
    path.reverse()
    rows = []
    for x, y in zip(path, path[1:], strict=False):
        pos = best[(x, y) if x <= y else (y, x)]
        rows.append(sub.iloc[pos].to_dict())
    return rows


# --------------------------------------------------------------------------------------------------


def _careful_path(
    nodes: gc.NodeTable,
    config: IdentityConfig,
    edges: pd.DataFrame,
    labels: np.ndarray,
    members: np.ndarray,
    flagged: np.ndarray,
    cand: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    prob: np.ndarray,
    observed: np.ndarray,
    nl_a: np.ndarray,
    nl_b: np.ndarray,
    node_prev: np.ndarray,
    reason: np.ndarray,
    limit_type: np.ndarray,
    contradicted: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Rebuild the flagged components by union-find; updates ``reason`` and ``limit_type`` (the
    node type code of the limit that refused a row, or that a strong row was kept past) in place."""
    slow_node = members & flagged[labels]
    slow_idx = np.flatnonzero(slow_node)
    local = np.full(nodes.n, -1, dtype=np.int64)
    local[slow_idx] = np.arange(len(slow_idx), dtype=np.int64)
    rows = np.flatnonzero(cand & slow_node[np.maximum(src, 0)])
    u = np.minimum(src[rows], dst[rows])
    v = np.maximum(src[rows], dst[rows])

    type_prio = np.array([config.identifier_priority(t) for t in nodes.type_names], dtype=np.int64)
    pu, pv = type_prio[nodes.type_code[u]], type_prio[nodes.type_code[v]]
    etype_codes, etypes = pd.factorize(edges["edge_type"].iloc[rows].astype(str), sort=True)
    edge_prio = np.array([config.edge_priority(t) for t in etypes], dtype=np.int64)[etype_codes]
    is_prob = np.isin(etype_codes, [i for i, t in enumerate(etypes) if t in config.probabilistic_edge_types])
    is_prob |= prob[rows] < 1.0
    strong = _strong(nodes, config, u, v, prob[rows], is_prob) & ~contradicted[rows]
    weak_types = np.array([_evidence(config, t) == "weak" for t in nodes.type_names], dtype=bool)
    weak = weak_types[nodes.type_code[u]] | weak_types[nodes.type_code[v]]
    newcomer = (node_prev[u] < 0) | (node_prev[u] != node_prev[v])  # not inside one previous customer
    # the small integer keys, most significant first, packed into one int64 "class" key
    cls = np.zeros(len(rows), dtype=np.int64)
    for key in (~strong, newcomer, edge_prio, np.maximum(pu, pv), np.minimum(pu, pv), is_prob):
        codes, _ = pd.factorize(key, sort=True)
        cls = cls * (int(codes.max()) + 1 if len(codes) else 1) + codes
    k = np.int64(len(slow_idx))
    pair = local[u] * k + local[v]  # local ids follow node codes, so this orders by (u, v)
    order = np.lexsort((pair, observed[rows], -prob[rows], cls))

    pair_sorted_by_rank = pair[order]
    by_pair = np.argsort(pair_sorted_by_rank, kind="stable")
    grouped = pair_sorted_by_rank[by_pair]
    head = np.ones(len(grouped), dtype=bool)
    head[1:] = grouped[1:] != grouped[:-1]
    first_rank = np.sort(by_pair[head])  # rank positions of each pair's strongest row, in order
    unique_rows = order[first_rank]

    limited = [
        (nodes.type_names.index(r.type), r.max_per_customer)
        for r in config.identifiers
        if r.max_per_customer is not None and r.type in nodes.type_names
    ]
    type_counts = np.zeros((len(slow_idx), len(limited)), dtype=np.int64)
    for j, (tc, _) in enumerate(limited):
        type_counts[:, j] = nodes.type_code[slow_idx] == tc
    limits = np.array([m for _, m in limited], dtype=np.int64)
    ok = (nl_a >= 0) & (nl_b >= 0)
    la, lb = local[np.maximum(nl_a, 0)], local[np.maximum(nl_b, 0)]
    ok &= (la >= 0) & (lb >= 0) & (la != lb)
    never_pairs = np.stack([la[ok], lb[ok]], axis=1) if ok.any() else np.zeros((0, 2), dtype=np.int64)

    account_code = (
        nodes.type_names.index(config.account_type) if config.account_type in nodes.type_names else -1
    )
    roots, decision, which = gc.careful_union(
        len(slow_idx),
        local[u[unique_rows]],
        local[v[unique_rows]],
        type_counts,
        limits,
        never_pairs,
        strong=strong[unique_rows],
        weak=weak[unique_rows],
        accounts=nodes.type_code[slow_idx] == account_code,
    )
    pair_unique = pair[unique_rows]
    by_value = np.argsort(pair_unique)
    pos = np.searchsorted(pair_unique[by_value], pair)
    row_decision = decision[by_value][pos]
    reason[rows] = np.where(row_decision != 0, row_decision, reason[rows])
    limited_codes = np.array([tc for tc, _ in limited] + [-1], dtype=np.int64)
    limit_type[rows] = limited_codes[which[by_value][pos]]  # -1 indexes the trailing -1

    new_labels = labels.copy()
    new_labels[slow_idx] = labels.max() + 1 + roots
    return new_labels, len(rows)


def _evidence(config: IdentityConfig, type_name: str) -> str:
    rule = config.rule(type_name)
    return rule.evidence if rule is not None else "personal"


def _strong(
    nodes: gc.NodeTable,
    config: IdentityConfig,
    u: np.ndarray,
    v: np.ndarray,
    prob: np.ndarray,
    is_prob: np.ndarray,
) -> np.ndarray:
    """Edges that are strong evidence: probabilistic at or above ``strong_match_probability``, or
    deterministic between two identifiers whose rules say ``evidence: strong``."""
    strong_types = np.array([_evidence(config, t) == "strong" for t in nodes.type_names], dtype=bool)
    det = ~is_prob & strong_types[nodes.type_code[u]] & strong_types[nodes.type_code[v]]
    if config.strong_match_probability is None:
        return det
    return det | (is_prob & (prob >= config.strong_match_probability))


def _rules(
    nodes: gc.NodeTable,
    config: IdentityConfig,
    is_prob: np.ndarray,
    reason: np.ndarray,
    limit_type: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    blocked: np.ndarray,
    shared: np.ndarray,
    prob: np.ndarray,
    contradicted: np.ndarray,
) -> np.ndarray:
    """The rule behind each edge's status: the guard that cut it, or the evidence that kept it.
    ``is_prob``: the edge is a probabilistic match (its type, or a probability below 1)."""
    n_rows = len(reason)
    names = np.array(nodes.type_names + [""], dtype=object)
    s0, d0 = np.maximum(src, 0), np.maximum(dst, 0)
    src_type = np.where(src >= 0, nodes.type_code[s0], -1)
    dst_type = np.where(dst >= 0, nodes.type_code[d0], -1)
    out = np.full(n_rows, "within limits", dtype=object)
    out[src == dst] = "lone identifier"
    strong = np.zeros(n_rows, dtype=bool)
    ok = (src >= 0) & (dst >= 0)
    strong[ok] = _strong(nodes, config, src[ok], dst[ok], prob[ok], is_prob[ok]) & ~contradicted[ok]
    sp = config.strong_match_probability
    prob_text = f"strong_match p>={sp:g}" if sp is not None else ""
    out[strong & is_prob] = prob_text
    out[strong & ~is_prob] = "strong identifiers"
    kept = (reason == 0) & strong & (limit_type >= 0)
    for code in np.unique(limit_type[kept]):
        rule = config.rule(names[code])
        sel = kept & (limit_type == code)
        out[sel] = out[sel] + f" (kept past {names[code]}.max_per_customer={rule.max_per_customer})"
    out[reason == gc.INVALID_NODE] = "invalid_node"
    for code, what in ((gc.BLOCKED_VALUE, "blocked_patterns"), (gc.SHARED_IDENTIFIER, "max_degree")):
        flag = blocked if code == gc.BLOCKED_VALUE else shared
        sel = reason == code
        culprit = np.where(flag[s0], src_type, dst_type)
        out[sel] = [f"{names[t]}.{what}" for t in culprit[sel].tolist()]
    out[reason == gc.BELOW_THRESHOLD] = f"probabilistic_threshold={config.probabilistic_threshold:g}"
    out[reason == gc.NEVER_LINK] = "never_link"
    sel = reason == gc.LIMIT_EXCEEDED
    out[sel] = [
        f"{names[t]}.max_per_customer={config.rule(names[t]).max_per_customer}"
        if t >= 0
        else "max_per_customer"
        for t in limit_type[sel].tolist()
    ]
    weak_types = np.array([_evidence(config, t) == "weak" for t in nodes.type_names] + [False], dtype=bool)
    sel = reason == gc.WEAK_IDENTIFIER
    culprit = np.where(weak_types[src_type], src_type, dst_type)
    out[sel] = [f"{names[t]}.evidence=weak" for t in culprit[sel].tolist()]
    return out


def _flag_components(
    nodes: gc.NodeTable,
    config: IdentityConfig,
    labels: np.ndarray,
    members: np.ndarray,
    nl_a: np.ndarray,
    nl_b: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
) -> np.ndarray:
    """Components that break a per-customer limit, hold a never-link pair, or hold a weak
    identifier linked to two or more accounts (``src``/``dst``: the candidate edges)."""
    n_labels = int(labels.max()) + 1 if len(labels) else 0
    flagged = np.zeros(n_labels, dtype=bool)
    for rule in config.identifiers:
        if rule.max_per_customer is None or rule.type not in nodes.type_names:
            continue
        lo, hi = gc.type_range(nodes, rule.type)
        sel = members[lo:hi]
        counts = np.bincount(labels[lo:hi][sel], minlength=n_labels)
        flagged |= counts > rule.max_per_customer
    ok = (nl_a >= 0) & (nl_b >= 0)
    a, b = nl_a[ok], nl_b[ok]
    ok = members[a] & members[b] & (a != b) & (labels[a] == labels[b])
    flagged[labels[a[ok]]] = True
    weak = [
        nodes.type_names.index(r.type)
        for r in config.identifiers
        if r.evidence == "weak" and r.type in nodes.type_names
    ]
    if weak and config.account_type in nodes.type_names and len(src):
        account = nodes.type_names.index(config.account_type)
        ts, td = nodes.type_code[src], nodes.type_code[dst]
        fwd = np.isin(ts, weak) & (td == account)
        bwd = np.isin(td, weak) & (ts == account)
        n = np.int64(nodes.n)
        key = gc.sorted_unique(np.concatenate([src[fwd] * n + dst[fwd], dst[bwd] * n + src[bwd]]))
        degree = np.bincount(key // n, minlength=nodes.n)
        flagged[labels[np.flatnonzero(degree >= 2)]] = True
    return flagged


def _flags(edges: pd.DataFrame, column: str) -> np.ndarray:
    """An optional boolean edge column (missing or null: False)."""
    if column not in edges:
        return np.zeros(len(edges), dtype=bool)
    return edges[column].fillna(False).astype(bool).to_numpy()


def _probabilities(edges: pd.DataFrame) -> np.ndarray:
    if "probability" not in edges:
        return np.ones(len(edges), dtype=np.float64)
    p = pd.to_numeric(edges["probability"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return np.where(np.isnan(p), 1.0, p)


def _ns(values: pd.Series) -> np.ndarray:
    """UTC timestamps as int64 ns, missing as INT64_MAX (so they sort last and lose minima)."""
    if isinstance(values.dtype, pd.ArrowDtype) and pa.types.is_timestamp(values.dtype.pyarrow_dtype):
        arr = pa.array(values)  # naive timestamps are taken as UTC, like pd.to_datetime(utc=True)
        ints = arr.cast(pa.timestamp("ns", tz=arr.type.tz)).cast(pa.int64())
        return ints.fill_null(gc.INT64_MAX).to_numpy().astype(np.int64, copy=False)
    ts = pd.DatetimeIndex(pd.to_datetime(values, utc=True)).as_unit("ns")
    out = ts.asi8.copy()
    out[ts.isna()] = gc.INT64_MAX
    return out


def _to_timestamps(ns: np.ndarray) -> pd.Series:
    vals = np.where(ns == gc.INT64_MAX, np.iinfo(np.int64).min, ns)  # INT64_MIN is NaT
    return pd.Series(pd.DatetimeIndex(vals.view("datetime64[ns]")).tz_localize("UTC"))


def _previous(previous_map: pd.DataFrame | None) -> pd.DataFrame:
    if previous_map is None or len(previous_map) == 0:
        return pd.DataFrame(
            {"node": pd.Series([], dtype=object), "customer_id": pd.Series([], dtype=object), "fs": []}
        ).astype({"fs": np.int64})
    _require(previous_map, ["node", "customer_id"], "previous_map")
    fs = (
        _ns(previous_map["first_seen"])
        if "first_seen" in previous_map
        else np.full(len(previous_map), gc.INT64_MAX, dtype=np.int64)
    )
    return pd.DataFrame(
        {
            "node": previous_map["node"].to_numpy(),
            "customer_id": previous_map["customer_id"].to_numpy(),
            "fs": fs,
        }
    )


def _never_link(never_link: pd.DataFrame | None) -> pd.DataFrame:
    if never_link is None or len(never_link) == 0:
        return pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=object)})
    _require(never_link, ["a", "b"], "never_link")
    return never_link[["a", "b"]]


def _require(df: pd.DataFrame, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} is missing column(s) {missing}; has {list(df.columns)}")


class _Clock:
    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._t = time.perf_counter()

    def tick(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._t, 4)
        self._t = now


__all__ = [
    "ACCEPTED",
    "ALARM_COLUMNS",
    "EDGE_COLUMNS",
    "HISTORY_COLUMNS",
    "IDENTITY_MAP_COLUMNS",
    "REASONS",
    "REJECTED",
    "Resolution",
    "explain_path",
    "resolve",
]
