"""Evidence-aware over-merge guards (issue 17): strong, direct evidence keeps a person whole however
many CRM records they have; weak or shared identifiers (household phone, shared loyalty card) never
join two accounts on their own; every edge names the rule that cut or kept it, and `cip identity
explain` shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from itertools import combinations

import pandas as pd

from cip.lake import Lake
from pipelines.identity.config import IdentityConfig
from pipelines.identity.graph import resolve

T0 = pd.Timestamp("2024-01-01", tz="UTC")


def frame(rows: list[tuple]) -> pd.DataFrame:
    out = []
    for i, row in enumerate(rows):
        src, dst, *rest = row
        edge_type = rest[0] if rest else "crm_record"
        probability = rest[1] if len(rest) > 1 else 1.0
        out.append((src, dst, edge_type, "test", probability, T0 + pd.Timedelta(minutes=i)))
    return pd.DataFrame(out, columns=["src", "dst", "edge_type", "source", "probability", "observed_at"])


def five_records() -> list[tuple]:
    """One person, five CRM records (typos, a move, re-registrations): each with its own e-mail and
    some with their own phone, all matched pairwise by Splink on name + birth date + address."""
    crm = [f"crm_id:C{i}" for i in range(5)]
    rows: list[tuple] = [(c, f"email:anna.{i}@mail.com") for i, c in enumerate(crm)]
    rows += [(crm[0], "phone:+4915112345678"), (crm[3], "phone:+4915187654321")]
    rows += [(crm[1], "loyalty_id:L1"), (crm[4], "loyalty_id:L2")]
    rows += [(a, b, "probabilistic", 0.999) for a, b in combinations(crm, 2)]
    return rows


def test_person_with_five_crm_records_on_strong_evidence_stays_one_customer():
    res = resolve(frame(five_records()), IdentityConfig())
    assert res.identity_map["customer_id"].nunique() == 1
    assert (res.edges["status"] == "accepted").all()
    kept = res.edges[res.edges["edge_type"] == "probabilistic"]
    assert kept["rule"].str.startswith("strong_match p>=0.99").all()
    # three of the ten Splink pairs joined past the crm_id limit of 2; the rule says so
    assert kept["rule"].str.contains(r"kept past crm_id\.max_per_customer=2", regex=True).sum() == 3


def test_five_records_split_when_strong_evidence_is_switched_off():
    """The old behaviour, as a control: with no strong evidence the crm_id limit cuts the person."""
    res = resolve(frame(five_records()), IdentityConfig(strong_match_probability=None))
    crm = res.identity_map[res.identity_map["node_type"] == "crm_id"]
    assert crm["customer_id"].nunique() >= 3
    assert set(res.edges["rule"][res.edges["reason"] == "limit_exceeded"]) == {"crm_id.max_per_customer=2"}


def test_household_sharing_phone_and_address_stays_several_customers():
    """Two people at one address with one landline: different names and birth dates, so Splink
    links no pair of their records (its birth-date veto); the phone alone must not join them."""
    rows = [
        ("crm_id:C1", "email:paul@mail.com"),
        ("crm_id:C1", "phone:+33140000001"),
        ("crm_id:C2", "email:marie@mail.com"),
        ("crm_id:C2", "phone:+33140000001"),
        ("crm_id:C3", "phone:+33140000001"),  # a third member with no e-mail
    ]
    res = resolve(frame(rows), IdentityConfig())
    owners = {res.customer_of(f"crm_id:C{i}") for i in (1, 2, 3)}
    assert len(owners) == 3
    cut = res.edges[res.edges["reason"] == "weak_identifier"]
    assert len(cut) == 2 and set(cut["rule"]) == {"phone.evidence=weak"}
    # the phone stays with the first account that had it
    assert res.customer_of("phone:+33140000001") == res.customer_of("crm_id:C1")


def test_household_member_who_is_also_a_duplicate_still_joins():
    """A weak link refused first, then other evidence (a Splink pair below the strong level) joins
    the two records: the phone link agrees with the customer and is reported accepted."""
    rows = [
        ("crm_id:C1", "phone:+33140000001"),
        ("crm_id:C2", "phone:+33140000001"),
        ("crm_id:C1", "crm_id:C2", "probabilistic", 0.95),
    ]
    res = resolve(frame(rows), IdentityConfig())
    assert res.customer_of("crm_id:C1") == res.customer_of("crm_id:C2")
    assert (res.edges["status"] == "accepted").all()


def test_shared_loyalty_card_does_not_chain_strangers():
    """A shop's card scanned for several strangers (fewer than any degree limit would catch)."""
    rows = [(f"crm_id:C{i}", f"email:person{i}@mail.com") for i in range(4)]
    rows += [(f"crm_id:C{i}", "loyalty_id:L999") for i in range(4)]
    rows += [("loyalty_id:L999", "loyalty_id:L999", "node")]  # seen at the till
    res = resolve(frame(rows), IdentityConfig())
    crm = res.identity_map[res.identity_map["node_type"] == "crm_id"]
    assert crm["customer_id"].nunique() == 4
    assert res.stats["rejected_by_reason"]["weak_identifier"] == 3
    assert set(res.edges.loc[res.edges["reason"] == "weak_identifier", "rule"]) == {
        "loyalty_id.evidence=weak"
    }


def test_rule_names_every_guard():
    rows = [
        ("crm_id:C1", "email:test@shop.com"),  # blocked pattern
        ("crm_id:C1", "crm_id:C2", "probabilistic", 0.5),  # below threshold
        ("crm_id:C3", "email:x@mail.com"),
        ("crm_id:C4", "email:x@mail.com"),
        ("crm_id:C5", "email:x@mail.com"),  # third account on one e-mail: crm_id limit
    ]
    res = resolve(frame(rows), IdentityConfig())
    rules = dict(zip(res.edges.index, res.edges["rule"], strict=True))
    assert rules[0] == "email.blocked_patterns"
    assert rules[1] == "probabilistic_threshold=0.9"
    assert sorted(rules[i] for i in (2, 3, 4)) == [
        "crm_id.max_per_customer=2",
        "within limits",
        "within limits",
    ]


def test_explain_names_the_rule_for_a_cut_and_a_kept_link(tmp_path):
    """`cip identity explain` prints each edge's rule: what kept a strong link past the crm_id
    limit, and what cut a household phone."""
    rows = five_records() + [("crm_id:C9", "phone:+4915112345678"), ("crm_id:C9", "email:ben@mail.com")]
    res = resolve(frame(rows), IdentityConfig())
    lake = Lake(tmp_path / "lake")
    lake.write_derived("identity_edges", res.edges)
    lake.write_derived("identity_map", res.identity_map)
    customer = res.customer_of("crm_id:C0")
    env = {**os.environ, "COLUMNS": "250", "CIP_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "cli", "identity", "explain", customer],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = " ".join(out.stdout.split())
    assert "kept past crm_id.max_per_customer=2" in text
    assert "phone.evidence=weak" in text and "weak_identifier" in text


def test_an_email_on_one_persons_many_records_is_not_a_shared_identifier():
    """max_degree counts persons: five re-registrations that strong Splink pairs join hold one e-mail
    without it being taken for a shop's address; five strangers with one e-mail still do not merge."""
    crm = [f"crm_id:C{i}" for i in range(5)]
    rows: list[tuple] = [(c, "email:anna@mail.com") for c in crm]
    rows += [(a, b, "probabilistic", 0.999) for a, b in combinations(crm, 2)]
    res = resolve(frame(rows), IdentityConfig())
    assert res.identity_map["customer_id"].nunique() == 1
    assert "shared_identifier" not in set(res.edges["reason"].dropna())
    strangers = resolve(frame([(c, "email:shop@mail.com") for c in crm]), IdentityConfig())
    owners = strangers.identity_map[strangers.identity_map["node_type"] == "crm_id"]["customer_id"]
    assert owners.nunique() == 5
    assert set(strangers.edges["reason"].dropna()) == {"shared_identifier"}
