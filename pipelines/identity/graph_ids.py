"""Stable customer ids across runs (internal to :mod:`pipelines.identity.graph`).

Rules, given this run's clusters and the previous run's ``node -> customer_id`` map:

* **split**: when a previous customer's nodes now sit in several clusters, its *heir* is the cluster
  holding most of them (tie: the one holding its oldest node, then the smallest node key). Only the
  heir may keep the id; every other cluster with some of its nodes records a ``split`` event.
* **merge**: when a cluster is heir of several previous customers it keeps the one whose
  ``first_seen`` (oldest node) is oldest (tie: smallest id); the others record ``merge`` into it.
* **create**: a cluster without any previous node gets a new id and a ``create`` event.
* new ids are ``prefix + sha1(smallest node key)[:12]``; an id already used now or in the previous
  map gets ``_1``, ``_2``... appended, so a retired id is never handed to another customer.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

INT64_MAX = np.iinfo(np.int64).max
HISTORY_COLUMNS = ["run_id", "event", "customer_id", "other_customer_id", "n_nodes"]
_DUCKDB_HASH_MIN = 20_000  # hash with duckdb (multi-threaded) from this many new ids on


def assign_customer_ids(
    keys: np.ndarray,
    cluster: np.ndarray,
    firsts: np.ndarray,
    prev_codes: np.ndarray,
    cid_code: np.ndarray,
    cid_names: np.ndarray,
    prev_first_seen: np.ndarray,
    id_prefix: str,
    run_id: str,
) -> tuple[np.ndarray, pd.DataFrame, dict[str, int]]:
    """Customer id of every cluster, the history events, and counts per event.

    ``cluster``: cluster of each node code (-1: not in the output); clusters are numbered in order
    of their smallest node. ``firsts``: smallest node code of each cluster. The previous map
    comes as node codes (-1: unknown node or row to ignore), customer id codes into ``cid_names``
    (-1: none) and first_seen as int64 ns (missing = INT64_MAX). Vectorised: only the customers
    involved in a split or a merge are sorted.
    """
    n_clusters = len(firsts)
    sizes = np.bincount(cluster[cluster >= 0], minlength=n_clusters)
    cluster_id = np.full(n_clusters, None, dtype=object)
    cust_fs = np.full(len(cid_names), INT64_MAX, dtype=np.int64)
    has_cid = cid_code >= 0
    np.minimum.at(cust_fs, cid_code[has_cid], prev_first_seen[has_cid])

    cl = np.full(len(prev_codes), -1, dtype=np.int64)
    known = (prev_codes >= 0) & has_cid
    cl[known] = cluster[prev_codes[known]]
    live = cl >= 0
    # (previous customer, cluster) groups: how many of its nodes, their oldest first_seen and node.
    c = np.int64(max(n_clusters, 1))
    grouped = (
        pd.DataFrame(
            {"g": cid_code[live] * c + cl[live], "fs": prev_first_seen[live], "code": prev_codes[live]}
        )
        .groupby("g", sort=True)
        .agg(n=("fs", "size"), fs=("fs", "min"), code=("code", "min"))
    )
    g_key = grouped.index.to_numpy(dtype=np.int64)
    g_cid, g_cl = g_key // c, g_key % c
    g_n, g_fs, g_code = (grouped[k].to_numpy(dtype=np.int64) for k in ("n", "fs", "code"))

    # split: the heir of a previous customer is its group with most nodes, then oldest, then smallest node
    heir = np.ones(len(g_key), dtype=bool)
    multi = np.bincount(g_cid, minlength=len(cid_names))[g_cid] > 1
    if multi.any():
        idx = np.flatnonzero(multi)
        order = idx[np.lexsort((g_code[idx], g_fs[idx], -g_n[idx], g_cid[idx]))]
        heir[idx] = False
        lead = np.ones(len(order), dtype=bool)
        lead[1:] = g_cid[order][1:] != g_cid[order][:-1]
        heir[order[lead]] = True

    # merge: a cluster that is heir of several customers keeps the oldest (then smallest) id
    h = np.flatnonzero(heir)
    kept = np.ones(len(h), dtype=bool)
    crowded = np.bincount(g_cl[h], minlength=n_clusters)[g_cl[h]] > 1
    if crowded.any():
        sub = np.flatnonzero(crowded)
        name_rank = _string_rank(cid_names[g_cid[h[sub]]])
        order = sub[np.lexsort((name_rank, cust_fs[g_cid[h[sub]]], g_cl[h[sub]]))]
        kept[sub] = False
        lead = np.ones(len(order), dtype=bool)
        lead[1:] = g_cl[h[order]][1:] != g_cl[h[order]][:-1]
        kept[order[lead]] = True
    cluster_id[g_cl[h[kept]]] = cid_names[g_cid[h[kept]]]
    has_prev = np.zeros(n_clusters, dtype=bool)
    has_prev[g_cl] = True
    has_id = np.zeros(n_clusters, dtype=bool)
    has_id[g_cl[h[kept]]] = True

    need = np.flatnonzero(~has_id)
    cluster_id[need] = _new_ids(keys[firsts[need]], id_prefix, cid_names)

    created = np.flatnonzero(~has_prev)
    merged = h[~kept]
    splits = np.flatnonzero(~heir)
    history = pd.concat(
        [
            pd.DataFrame(
                {
                    "event": "create",
                    "customer_id": cluster_id[created],
                    "other_customer_id": None,
                    "n_nodes": sizes[created],
                }
            ),
            _events("merge", merged, g_cl, g_cid, g_n, cluster_id, cid_names),
            _events("split", splits, g_cl, g_cid, g_n, cluster_id, cid_names),
        ],
        ignore_index=True,
    )
    history.insert(0, "run_id", run_id)
    history["n_nodes"] = history["n_nodes"].astype(np.int64)
    history["other_customer_id"] = history["other_customer_id"].astype(object)
    counts = {
        "created": len(created),
        "merged": len(merged),
        "split": len(splits),
        "kept": int(n_clusters - len(need)),
        "retired": int(len(cid_names) - (n_clusters - len(need))),
    }
    return cluster_id, history[HISTORY_COLUMNS], counts


def _events(
    event: str,
    groups: np.ndarray,
    g_cl: np.ndarray,
    g_cid: np.ndarray,
    g_n: np.ndarray,
    cluster_id: np.ndarray,
    cid_names: np.ndarray,
) -> pd.DataFrame:
    """One event row per group, ordered by cluster then by the other customer's id."""
    other = cid_names[g_cid[groups]]
    order = np.lexsort((_string_rank(other), g_cl[groups]))
    groups = groups[order]
    return pd.DataFrame(
        {
            "event": event,
            "customer_id": cluster_id[g_cl[groups]],
            "other_customer_id": other[order],
            "n_nodes": g_n[groups],
        }
    )


def _string_rank(values: np.ndarray) -> np.ndarray:
    """Rank of each string in sorted order (for small arrays)."""
    rank = np.empty(len(values), dtype=np.int64)
    rank[np.argsort(values.astype(str), kind="stable")] = np.arange(len(values))
    return rank


def _new_ids(first_keys: np.ndarray, prefix: str, taken: np.ndarray) -> np.ndarray:
    """``prefix + sha1(key)[:12]`` per key, made unique against ``taken`` and each other."""
    if len(first_keys) == 0:
        return np.zeros(0, dtype=object)
    digests = _sha1_hex12(first_keys)
    ids = pd.Series([prefix + d for d in digests], dtype=object)
    clash = (ids.duplicated() | ids.isin(taken)).to_numpy()
    if clash.any():
        used = set(taken.tolist()) | set(ids[~clash].tolist())
        for i in np.flatnonzero(clash):
            base, k = ids.iat[i], 1
            while f"{base}_{k}" in used:
                k += 1
            ids.iat[i] = f"{base}_{k}"
            used.add(ids.iat[i])
    return ids.to_numpy(dtype=object)


def _sha1_hex12(keys: np.ndarray) -> list[str]:
    if len(keys) >= _DUCKDB_HASH_MIN:
        try:
            import duckdb
            import pyarrow as pa

            node_keys = pa.table({"k": pa.array(keys, type=pa.large_string())})  # noqa: F841 (scanned)
            con = duckdb.connect()
            try:
                out = con.sql("SELECT substr(sha1(k), 1, 12) AS h FROM node_keys").to_arrow_table()
            finally:
                con.close()
            return out.column("h").to_pylist()
        except Exception:  # pragma: no cover - fall back to hashlib
            pass
    return [hashlib.sha1(k.encode("utf-8")).hexdigest()[:12] for k in keys]
