"""Deterministic identity graph: components, guards, limits, never-link, stable ids, scale."""

from __future__ import annotations

import hashlib
import time

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from pipelines.identity.config import IdentifierRule, IdentityConfig
from pipelines.identity.graph import explain_path, resolve

T0 = pd.Timestamp("2024-01-01", tz="UTC")
TYPES = ["crm_id", "email", "phone", "loyalty_id", "anonymous_id", "device_id"]
#: No rules at all: no blocked values, no max_degree, no limits — the resolver is plain components.
PERMISSIVE = IdentityConfig(identifiers=[])


def frame(rows: list[tuple], when: pd.Timestamp = T0) -> pd.DataFrame:
    """Edges from (src, dst[, edge_type[, probability[, observed_at]]]) tuples."""
    out = []
    for row in rows:
        src, dst, *rest = row
        edge_type = rest[0] if len(rest) > 0 else "crm_record"
        probability = rest[1] if len(rest) > 1 else 1.0
        observed_at = rest[2] if len(rest) > 2 else when
        out.append((src, dst, edge_type, "test", probability, observed_at))
    return pd.DataFrame(out, columns=["src", "dst", "edge_type", "source", "probability", "observed_at"])


def partition(res) -> set[frozenset[str]]:
    groups = res.identity_map.groupby("customer_id")["node"].apply(frozenset)
    return set(groups.tolist())


def customer(res, node: str) -> str:
    cid = res.customer_of(node)
    assert cid is not None, node
    return cid


def nx_partition(edges: pd.DataFrame) -> set[frozenset[str]]:
    g = nx.Graph()
    g.add_nodes_from(pd.concat([edges["src"], edges["dst"]]).unique())
    g.add_edges_from(edges[["src", "dst"]].itertuples(index=False, name=None))
    return {frozenset(c) for c in nx.connected_components(g)}


def people(n_people: int, seed: int, cross_links: float = 0.05) -> pd.DataFrame:
    """Vectorised synthetic identity edges: people with crm ids, emails, phones, loyalty cards,
    anonymous ids and devices, plus some probabilistic crm-crm links (part of them wrong)."""
    rng = np.random.default_rng(seed)
    p = np.arange(n_people)

    def keys(prefix: str, ids: np.ndarray) -> np.ndarray:
        return (prefix + pd.Series(ids, dtype=np.int64).astype(str)).to_numpy(dtype=object)

    parts = []

    def add(src, dst, edge_type, probability=None):
        n = len(src)
        parts.append(
            pd.DataFrame(
                {
                    "src": src,
                    "dst": dst,
                    "edge_type": edge_type,
                    "source": edge_type,
                    "probability": 1.0 if probability is None else probability,
                    "observed_at": T0 + pd.to_timedelta(rng.integers(0, 365 * 86400, n), unit="s"),
                }
            )
        )

    crm = keys("crm_id:C", p)
    add(crm, keys("email:e", p), "crm_record")
    has = rng.random(n_people) < 0.6
    add(crm[has], keys("phone:+3361", 10_000_000 + p[has]), "crm_record")
    has = rng.random(n_people) < 0.4
    add(crm[has], keys("loyalty_id:L", p[has]), "crm_record")
    owner = rng.integers(0, n_people, int(1.5 * n_people))
    anon = keys("anonymous_id:a", np.arange(len(owner)))
    add(crm[owner], anon, "identify")
    add(keys("device_id:d", owner), anon, "device")
    n_cross = int(cross_links * n_people)
    add(
        crm[rng.integers(0, n_people, n_cross)],
        crm[rng.integers(0, n_people, n_cross)],
        "probabilistic",
        rng.uniform(0.8, 1.0, n_cross),
    )
    n_dup = int(cross_links * n_people)  # duplicate CRM records sharing an email
    add(keys("crm_id:D", np.arange(n_dup)), keys("email:e", rng.integers(0, n_people, n_dup)), "crm_record")
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------------------------- config


def test_config_defaults_and_loading(tmp_path):
    cfg = IdentityConfig()
    crm, email = cfg.rule("crm_id"), cfg.rule("email")
    assert (crm.priority, crm.max_per_customer) == (1, 2)
    assert cfg.rule("loyalty_id").max_per_customer == 1
    assert email.max_degree == {"crm_id": 3} and email.max_per_customer == 3
    assert cfg.rule("anonymous_id").max_degree == {"crm_id": 1}
    assert cfg.rule("device_id").max_degree == {"anonymous_id": 4}
    assert max(cfg.edge_type_priority, key=cfg.edge_type_priority.get) == "probabilistic"
    assert (cfg.probabilistic_threshold, cfg.cluster_size_alarm, cfg.id_prefix) == (0.9, 50, "cus_")

    path = tmp_path / "identity.yaml"
    path.write_text(
        "probabilistic_threshold: 0.95\nid_prefix: c_\nidentifiers:\n"
        "  - {type: email, priority: 1, max_per_customer: 1, blocked_patterns: ['^x@'], max_degree: {crm_id: 2}}\n"
    )
    loaded = IdentityConfig.from_yaml(path)
    assert loaded.probabilistic_threshold == 0.95 and loaded.id_prefix == "c_"
    assert [r.type for r in loaded.identifiers] == ["email"]
    assert IdentityConfig.model_validate(cfg.model_dump()) == cfg
    assert IdentityConfig.from_yaml(_write(tmp_path / "rt.yaml", cfg.to_yaml())) == cfg


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "bad",
    [
        {"identifiers": [{"type": "email", "priority": 1, "blocked_patterns": ["(unclosed"]}]},
        {"identifiers": [{"type": "fax", "priority": 1}]},
        {"identifiers": [{"type": "email", "priority": 1}, {"type": "email", "priority": 2}]},
        {"identifiers": [{"type": "email", "priority": 1, "max_per_customer": 0}]},
        {"identifiers": [{"type": "email", "priority": 1, "max_degree": {"crm_id": 0}}]},
        {"probabilistic_threshold": 1.5},
        {"unknown_field": 1},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValidationError):
        IdentityConfig.model_validate(bad)


def test_default_phone_patterns_block_fakes_only():
    edges = frame([(f"phone:{v}", f"phone:{v}", "node") for v in ["+15555555555", "0000000", "+33612345678"]])
    res = resolve(edges, IdentityConfig())
    assert set(res.identity_map["node"]) == {"phone:+33612345678"}


# ------------------------------------------------------------------------------------ components


@pytest.mark.parametrize("seed", range(6))
def test_components_match_networkx_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n_nodes, n_edges = 400, int(rng.integers(100, 600))
    names = np.array([f"{TYPES[i % len(TYPES)]}:n{i}" for i in range(n_nodes)], dtype=object)
    edges = frame(
        list(
            zip(
                names[rng.integers(0, n_nodes, n_edges)],
                names[rng.integers(0, n_nodes, n_edges)],
                strict=True,
            )
        )
    )
    res = resolve(edges, PERMISSIVE)
    assert (res.edges["status"] == "accepted").all()
    assert partition(res) == nx_partition(edges)
    assert res.stats["n_careful_components"] == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=80))
def test_components_match_networkx_property(pairs):
    edges = frame([(f"{TYPES[a % 6]}:{a}", f"{TYPES[b % 6]}:{b}") for a, b in pairs])
    res = resolve(edges, PERMISSIVE)
    assert partition(res) == nx_partition(edges)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 40), st.integers(0, 40), st.floats(0.5, 1.0)), min_size=1, max_size=120
    ),
    st.lists(st.tuples(st.integers(0, 40), st.integers(0, 40)), max_size=5),
)
def test_invariants_under_default_rules(pairs, never):
    """With every guard on: limits and never-link hold, and customers are exactly the connected
    components of the accepted edges."""
    edges = frame(
        [
            (f"{TYPES[a % 6]}:{a}", f"{TYPES[b % 6]}:{b}", "probabilistic" if p < 1 else "crm_record", p)
            for a, b, p in pairs
        ]
    )
    never_link = pd.DataFrame(
        [(f"{TYPES[a % 6]}:{a}", f"{TYPES[b % 6]}:{b}") for a, b in never], columns=["a", "b"]
    )
    cfg = IdentityConfig()
    res = resolve(edges, cfg, never_link=never_link)
    _assert_limits(res, cfg)
    _assert_never_link(res, never_link)
    accepted = res.edges[res.edges["status"] == "accepted"]
    lone = pd.DataFrame({"src": res.identity_map["node"], "dst": res.identity_map["node"]})
    assert partition(res) == nx_partition(pd.concat([accepted[["src", "dst"]], lone]))


def _assert_limits(res, cfg: IdentityConfig) -> None:
    """Limits hold, where each group of k accounts joined by strong evidence counts as one account
    (its allowance of every limited type is k - 1 higher)."""
    counts = res.identity_map.groupby(["customer_id", "node_type"]).size()
    e = res.edges
    strong = e[(e["status"] == "accepted") & e["rule"].str.startswith("strong") & (e["src"] != e["dst"])]
    acc = cfg.account_type + ":"
    strong = strong[strong["src"].str.startswith(acc) & strong["dst"].str.startswith(acc)]
    g = nx.Graph(strong[["src", "dst"]].itertuples(index=False, name=None))
    owner = res.identity_map.set_index("node")["customer_id"]
    extra = (
        pd.Series(
            [len(c) - 1 for c in nx.connected_components(g)],
            index=[owner[next(iter(c))] for c in nx.connected_components(g)],
            dtype=np.int64,
        )
        .groupby(level=0)
        .sum()
    )
    for rule in cfg.identifiers:
        if rule.max_per_customer is not None and rule.type in counts.index.get_level_values(1):
            per = counts.xs(rule.type, level=1)
            allowed = rule.max_per_customer + extra.reindex(per.index, fill_value=0)
            assert (per <= allowed).all(), rule.type


def _assert_never_link(res, never_link: pd.DataFrame) -> None:
    owner = dict(zip(res.identity_map["node"], res.identity_map["customer_id"], strict=True))
    for a, b in never_link.itertuples(index=False):
        if a != b and a in owner and b in owner:
            assert owner[a] != owner[b], (a, b)


# ---------------------------------------------------------------------------------------- guards


def test_shared_store_phone_does_not_chain_crm_records():
    rows = [(f"crm_id:{i}", f"email:person{i}@mail.com") for i in range(20)]
    rows += [(f"crm_id:{i}", "phone:+33140000000") for i in range(20)]
    res = resolve(frame(rows), IdentityConfig())
    assert res.identity_map["customer_id"].nunique() == 21  # 20 people + the phone alone
    phone_edges = res.edges[res.edges["dst"] == "phone:+33140000000"]
    assert (phone_edges["reason"] == "shared_identifier").all()
    assert res.stats["n_shared_nodes"] == 1


def test_blocked_email_neither_chains_nor_survives():
    rows = [
        ("crm_id:1", "email:test@test.com"),
        ("crm_id:2", "email:test@test.com"),
        ("crm_id:3", "email:a@example.com"),
    ]
    res = resolve(frame(rows), IdentityConfig())
    assert set(res.identity_map["node"]) == {"crm_id:1", "crm_id:2", "crm_id:3"}
    assert res.identity_map["customer_id"].nunique() == 3
    assert (res.edges["reason"] == "blocked_value").all() and (res.edges["status"] == "rejected").all()
    assert res.edges["customer_id"].isna().all()


def test_anonymous_id_used_by_two_crm_ids_does_not_merge_them():
    rows = [
        ("crm_id:1", "anonymous_id:shared", "identify"),
        ("crm_id:2", "anonymous_id:shared", "identify"),
        ("crm_id:1", "anonymous_id:own", "identify"),
        ("device_id:d1", "anonymous_id:own", "device"),
    ]
    res = resolve(frame(rows), IdentityConfig())
    assert customer(res, "crm_id:1") != customer(res, "crm_id:2")
    assert customer(res, "crm_id:1") == customer(res, "device_id:d1")
    assert set(res.edges.loc[res.edges["dst"] == "anonymous_id:shared", "reason"]) == {"shared_identifier"}


def test_email_shared_by_up_to_max_degree_crm_ids_still_links():
    """max_degree 3: an email on 3 crm records is not shared (but crm_id's limit of 2 applies)."""
    rows = [(f"crm_id:{i}", "email:family@mail.com") for i in range(3)]
    res = resolve(frame(rows), IdentityConfig())
    assert res.stats["n_shared_nodes"] == 0
    assert res.identity_map["customer_id"].nunique() == 2
    assert set(res.edges["reason"].dropna()) == {"limit_exceeded"}


def test_probabilistic_edges_under_threshold_are_rejected():
    rows = [
        ("crm_id:1", "crm_id:2", "probabilistic", 0.85),
        ("crm_id:3", "crm_id:4", "probabilistic", 0.95),
        ("crm_id:5", "crm_id:6", "probabilistic", 0.9),
    ]
    res = resolve(frame(rows), IdentityConfig())
    assert list(res.edges["reason"]) == ["below_threshold", None, None]
    assert customer(res, "crm_id:1") != customer(res, "crm_id:2")
    assert customer(res, "crm_id:3") == customer(res, "crm_id:4")
    assert customer(res, "crm_id:5") == customer(res, "crm_id:6")


def test_invalid_and_unknown_type_nodes():
    edges = frame([("crm_id:1", None), ("record:r1", "crm_id:1", "alias"), ("", "email:x@y.com")])
    res = resolve(edges, IdentityConfig())
    assert list(res.edges["reason"]) == ["invalid_node", None, "invalid_node"]
    assert customer(res, "record:r1") == customer(res, "crm_id:1")
    assert set(res.identity_map["node_type"]) == {"crm_id", "record", "email"}


# ----------------------------------------------------------------------------- limits, never-link


def test_max_per_customer_prefers_stronger_edges():
    """A Splink pair below strong_match_probability (0.95 < 0.99) is the weakest edge type."""
    rows = [
        ("crm_id:1", "email:a@mail.com", "crm_record"),
        ("crm_id:3", "email:a@mail.com", "crm_record"),
        ("crm_id:1", "crm_id:2", "probabilistic", 0.95),
    ]
    res = resolve(frame(rows), IdentityConfig())
    assert customer(res, "crm_id:1") == customer(res, "crm_id:3") != customer(res, "crm_id:2")
    assert res.edges.loc[2, "reason"] == "limit_exceeded"
    assert res.stats["n_careful_components"] == 1


def test_max_per_customer_prefers_earlier_edges_among_equals():
    rows = [
        ("crm_id:1", "loyalty_id:L1", "pos_loyalty", 1.0, T0 + pd.Timedelta(days=2)),
        ("crm_id:1", "loyalty_id:L2", "pos_loyalty", 1.0, T0 + pd.Timedelta(days=1)),
    ]
    res = resolve(frame(rows), IdentityConfig())
    assert customer(res, "crm_id:1") == customer(res, "loyalty_id:L2") != customer(res, "loyalty_id:L1")


def test_max_per_customer_respected_on_synthetic_people():
    cfg = IdentityConfig()
    edges = people(3000, seed=1, cross_links=0.2)
    res = resolve(edges, cfg)
    assert res.stats["n_careful_components"] > 0 and res.stats["rejected_by_reason"]["limit_exceeded"] > 0
    _assert_limits(res, cfg)


def test_never_link_pairs_end_in_different_customers():
    rows = [
        ("crm_id:1", "email:a@mail.com"),
        ("crm_id:2", "email:a@mail.com"),
        ("crm_id:2", "phone:+33611111112"),
    ]
    never = pd.DataFrame({"a": ["crm_id:1", "crm_id:9"], "b": ["crm_id:2", "crm_id:1"]})
    res = resolve(frame(rows), IdentityConfig(), never_link=never)
    assert customer(res, "crm_id:1") != customer(res, "crm_id:2")
    assert customer(res, "crm_id:2") == customer(res, "phone:+33611111112")
    assert (res.edges["reason"] == "never_link").sum() == 1


def test_never_link_on_synthetic_people():
    edges = people(2000, seed=3, cross_links=0.2)
    first = resolve(edges, IdentityConfig())
    # forbid pairs that the unconstrained run put together
    crm = first.identity_map[first.identity_map["node_type"] == "crm_id"]
    multi = crm.groupby("customer_id")["node"].agg(list)
    pairs = [(ns[0], ns[1]) for ns in multi if len(ns) > 1][:50]
    assert pairs
    never = pd.DataFrame(pairs, columns=["a", "b"])
    res = resolve(edges, IdentityConfig(), never_link=never)
    _assert_never_link(res, never)
    _assert_limits(res, IdentityConfig())


# ----------------------------------------------------------------------------------- stable ids


def test_new_ids_are_sha1_of_smallest_node():
    res = resolve(frame([("email:b@mail.com", "crm_id:9")]), IdentityConfig())
    expected = "cus_" + hashlib.sha1(b"crm_id:9").hexdigest()[:12]
    assert set(res.identity_map["customer_id"]) == {expected}
    assert res.history.to_dict("records") == [
        {"run_id": "run", "event": "create", "customer_id": expected, "other_customer_id": None, "n_nodes": 2}
    ]


def test_appended_data_keeps_every_old_id():
    edges = people(2000, seed=5)
    run1 = resolve(edges, IdentityConfig(), run_id="r1")
    # new edges that only add nodes: new emails for existing crm ids, and brand-new people
    crm = run1.identity_map.loc[run1.identity_map["node_type"] == "crm_id", "node"].to_numpy()[:300]
    later = T0 + pd.Timedelta(days=400)
    extra = frame([(c, f"email:new{i}@mail.com", "identify") for i, c in enumerate(crm)], when=later)
    newcomers = people(200, seed=6).replace(r"^(\w+):", r"\1:new", regex=True)
    run2 = resolve(
        pd.concat([edges, extra, newcomers], ignore_index=True),
        IdentityConfig(),
        run1.identity_map,
        run_id="r2",
    )
    both = run1.identity_map.merge(run2.identity_map, on="node", suffixes=("_1", "_2"))
    assert len(both) == len(run1.identity_map)
    assert (both["customer_id_1"] == both["customer_id_2"]).all()
    assert set(run2.history["event"]) == {"create"}
    assert run2.history["customer_id"].isin(run1.identity_map["customer_id"]).sum() == 0
    assert run2.stats["ids_kept"] == run1.stats["n_customers"]
    # first_seen of old nodes is carried over
    assert (both["first_seen_1"] == both["first_seen_2"]).all()


def test_merge_keeps_oldest_id_and_records_history():
    base = [
        ("crm_id:1", "email:a@mail.com", "crm_record", 1.0, pd.Timestamp("2021-01-01", tz="UTC")),
        ("crm_id:2", "email:b@mail.com", "crm_record", 1.0, pd.Timestamp("2020-01-01", tz="UTC")),
    ]
    run1 = resolve(frame(base), IdentityConfig(), run_id="r1")
    old_a, old_b = customer(run1, "crm_id:1"), customer(run1, "crm_id:2")
    run2 = resolve(
        frame([*base, ("crm_id:1", "email:b@mail.com")]), IdentityConfig(), run1.identity_map, run_id="r2"
    )
    assert set(run2.identity_map["customer_id"]) == {old_b}  # crm 2's customer is older
    assert run2.history.to_dict("records") == [
        {"run_id": "r2", "event": "merge", "customer_id": old_b, "other_customer_id": old_a, "n_nodes": 2}
    ]
    assert run2.stats["ids_retired"] == 1


def test_merge_tie_on_first_seen_keeps_smallest_id():
    run1 = resolve(
        frame([("crm_id:1", "crm_id:1", "node"), ("crm_id:2", "crm_id:2", "node")]), IdentityConfig()
    )
    run2 = resolve(frame([("crm_id:1", "crm_id:2", "identify")]), IdentityConfig(), run1.identity_map)
    assert run2.identity_map["customer_id"].iat[0] == min(run1.identity_map["customer_id"])


def test_split_keeps_id_on_larger_part():
    big = [
        ("crm_id:1", "email:a@mail.com"),
        ("crm_id:1", "phone:+33611223344"),
        ("crm_id:1", "loyalty_id:L1"),
    ]
    link = [("crm_id:1", "crm_id:0", "probabilistic", 0.97), ("crm_id:0", "email:z@mail.com")]
    run1 = resolve(frame(big + link), IdentityConfig(), run_id="r1")
    old = customer(run1, "crm_id:1")
    assert old == "cus_" + hashlib.sha1(b"crm_id:0").hexdigest()[:12]
    assert run1.identity_map["customer_id"].nunique() == 1
    # the matcher no longer links crm 0: its part splits off
    run2 = resolve(frame(big + link[1:]), IdentityConfig(), run1.identity_map, run_id="r2")
    assert customer(run2, "crm_id:1") == old
    new = customer(run2, "crm_id:0")
    assert new == old + "_1"  # sha1 of its smallest node is the retained id: suffixed
    assert run2.history.to_dict("records") == [
        {"run_id": "r2", "event": "split", "customer_id": new, "other_customer_id": old, "n_nodes": 2}
    ]
    # a third run is stable
    run3 = resolve(frame(big + link[1:]), IdentityConfig(), run2.identity_map, run_id="r3")
    assert run3.history.empty
    assert partition(run3) == partition(run2)
    pd.testing.assert_frame_equal(run3.identity_map, run2.identity_map)


def test_split_tie_goes_to_part_with_oldest_node():
    t_old, t_new = pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2023-01-01", tz="UTC")
    rows = [
        ("crm_id:1", "email:a@mail.com", "crm_record", 1.0, t_new),
        ("crm_id:2", "email:b@mail.com", "crm_record", 1.0, t_old),
        ("crm_id:1", "crm_id:2", "probabilistic", 0.99, t_new),
    ]
    run1 = resolve(frame(rows), IdentityConfig())
    old = customer(run1, "crm_id:1")
    run2 = resolve(frame(rows[:2]), IdentityConfig(), run1.identity_map)
    assert customer(run2, "crm_id:2") == old != customer(run2, "crm_id:1")


# --------------------------------------------------------------------------- determinism, explain


def test_shuffled_input_gives_identical_output():
    edges = people(1500, seed=11, cross_links=0.2)
    never = pd.DataFrame({"a": ["crm_id:C1", "crm_id:C2"], "b": ["crm_id:C5", "crm_id:D3"]})
    a = resolve(edges, IdentityConfig(), never_link=never)
    shuffled = edges.sample(frac=1.0, random_state=3)
    b = resolve(shuffled, IdentityConfig(), never_link=never.iloc[::-1])
    pd.testing.assert_frame_equal(a.identity_map, b.identity_map)
    pd.testing.assert_frame_equal(a.history, b.history)
    pd.testing.assert_frame_equal(a.alarms, b.alarms)
    pd.testing.assert_frame_equal(a.edges, b.edges.sort_index())
    assert a.stats == b.stats
    # and re-runs against a previous map are deterministic too
    c = resolve(edges.iloc[:-200], IdentityConfig(), a.identity_map)
    d = resolve(
        shuffled[shuffled.index < len(edges) - 200], IdentityConfig(), a.identity_map.sample(frac=1.0)
    )
    pd.testing.assert_frame_equal(c.identity_map, d.identity_map)
    pd.testing.assert_frame_equal(c.history, d.history)


def test_rerun_on_own_output_is_a_fixed_point():
    edges = people(1500, seed=21, cross_links=0.3)
    never = pd.DataFrame({"a": ["crm_id:C1"], "b": ["crm_id:C2"]})
    first = resolve(edges, IdentityConfig(), never_link=never)
    again = resolve(edges, IdentityConfig(), first.identity_map, never_link=never, run_id="again")
    assert first.stats["n_careful_components"] > 0
    assert again.history.empty and again.stats["ids_kept"] == first.stats["n_customers"]
    pd.testing.assert_frame_equal(again.identity_map, first.identity_map)


def test_arrow_backed_and_categorical_inputs():
    edges = people(300, seed=2)
    expected = resolve(edges, IdentityConfig()).identity_map
    arrow = edges.astype(
        {
            "src": "string[pyarrow]",
            "dst": pd.ArrowDtype(pa.string()),
            "probability": "double[pyarrow]",
            "observed_at": pd.ArrowDtype(pa.timestamp("us", tz="UTC")),
        }
    )
    pd.testing.assert_frame_equal(resolve(arrow, IdentityConfig()).identity_map, expected)
    cat = edges.astype({"src": "category", "dst": "category", "edge_type": "category"})
    pd.testing.assert_frame_equal(resolve(cat, IdentityConfig()).identity_map, expected)


def test_explain_path_returns_chain_of_accepted_edges():
    rows = [
        ("crm_id:1", "email:a@mail.com"),
        ("crm_id:1", "phone:+33612345678"),
        ("device_id:d", "anonymous_id:x", "device"),
        ("crm_id:1", "anonymous_id:x", "identify"),
        ("crm_id:2", "email:test@test.com"),
    ]
    res = resolve(frame(rows), IdentityConfig())
    path = explain_path(res.edges, "email:a@mail.com", "device_id:d")
    assert [(r["src"], r["dst"]) for r in path] == [
        ("crm_id:1", "email:a@mail.com"),
        ("crm_id:1", "anonymous_id:x"),
        ("device_id:d", "anonymous_id:x"),
    ]
    assert all(r["status"] == "accepted" for r in path)
    assert explain_path(res.edges, "email:a@mail.com", "crm_id:2") == []
    assert explain_path(res.edges, "crm_id:1", "crm_id:1") == []


def test_alarms_and_stats():
    rows = [("crm_id:1", f"anonymous_id:{i}", "identify") for i in range(10)]
    res = resolve(frame(rows), IdentityConfig(cluster_size_alarm=5))
    assert res.alarms.to_dict("records") == [{"customer_id": customer(res, "crm_id:1"), "size": 11}]
    assert res.stats["n_customers"] == 1 and res.stats["n_nodes"] == 11 and res.stats["n_edges"] == 10


def test_empty_input():
    res = resolve(frame([]), IdentityConfig())
    assert res.identity_map.empty and res.history.empty and res.edges.empty
    assert list(res.identity_map.columns) == ["node", "node_type", "customer_id", "first_seen"]


def test_custom_rules_apply():
    cfg = IdentityConfig(
        identifiers=[
            IdentifierRule(type="email", priority=1, blocked_patterns=[r"@spam\.com$"], max_per_customer=1)
        ],
        id_prefix="c-",
    )
    rows = [
        ("crm_id:1", "email:a@spam.com"),
        ("crm_id:1", "email:b@mail.com"),
        ("crm_id:1", "email:c@mail.com"),
    ]
    res = resolve(frame(rows), cfg)
    assert list(res.edges["reason"]) == ["blocked_value", None, "limit_exceeded"]
    assert res.identity_map["customer_id"].str.startswith("c-").all()


# ------------------------------------------------------------------------------------------ scale


def test_scale_smoke_one_million_edges():
    edges = people(170_000, seed=42)
    edges = pd.concat([edges] * (1_000_000 // len(edges) + 1), ignore_index=True).iloc[:1_000_000]
    start = time.perf_counter()
    res = resolve(edges, IdentityConfig())
    elapsed = time.perf_counter() - start
    print(
        f"\nresolve() on {len(edges):,} edges / {res.stats['n_nodes']:,} nodes: {elapsed:.2f}s {res.timings}"
    )
    assert res.stats["n_edges"] == 1_000_000
    assert res.stats["n_customers"] > 100_000
