"""Typed configuration of the deterministic identity-graph resolver.

The models follow the Splink style: closed ``Literal`` choices, plain data that loads from a dict
or a YAML file, and validation at load time (bad regexes, unknown identifier types, duplicate
rules and nonsensical limits fail early, with the offending field named).

Example YAML::

    probabilistic_threshold: 0.95
    identifiers:
      - type: crm_id
        priority: 1
        max_per_customer: 2
      - type: email
        priority: 3
        max_per_customer: 3
        blocked_patterns: ['^(test|noemail)@']
        max_degree: {crm_id: 3}
      - type: phone
        priority: 4
        evidence: weak            # a household phone attaches to a customer, never joins two
    strong_match_probability: 0.99

**Evidence.** Limits such as ``max_per_customer`` exist to stop a shared or dirty identifier from
chaining strangers together; they must not refuse a link that strong, direct evidence supports.
So the careful path first joins what strong evidence says is one person — a Splink pair of two
accounts with probability >= ``strong_match_probability`` on which none of ``strong_match_roles``
(first name, last name, birth date) speaks against the match, or a deterministic edge between two
identifiers whose rules say ``evidence: strong`` (never-link rules still hold). Each such group of
k accounts counts as one account: it may hold up to ``max_per_customer + k - 1`` identifiers of
each limited type (each extra record may bring its own e-mail, phone, card), so the limits never
cut it however many CRM records it has. Every other link is ``personal`` or ``weak`` evidence and
meets the limits as before. An identifier with
``evidence: weak`` (household phone, shared loyalty card) can attach to a customer but never joins
two customers that each already hold an account (``account_type``): such a link is refused
(``weak_identifier``) unless other evidence puts both sides in one customer anyway.

A YAML or dict that gives ``identifiers`` replaces the whole default list (rules are not merged
type by type), so list every identifier type that should keep a rule.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cip.settings import CoreSettings
from pipelines.identity.matching_config import MatchingConfig

Evidence = Literal["strong", "personal", "weak"]
IdentifierType = Literal["crm_id", "email", "phone", "loyalty_id", "anonymous_id", "device_id", "record"]
IDENTIFIER_TYPES: tuple[str, ...] = get_args(IdentifierType)

#: Edge types the upstream stages emit today. Other edge type names are accepted by the resolver
#: (they get ``default_edge_type_priority``), so this is documentation, not a closed set.
KNOWN_EDGE_TYPES: tuple[str, ...] = (
    "crm_record",
    "pos_loyalty",
    "identify",
    "alias",
    "device",
    "probabilistic",
)


class IdentifierRule(BaseModel):
    """How one identifier type behaves in the graph."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: IdentifierType
    #: Lower is stronger: used to order edges in the careful (union-find) path.
    priority: int = Field(ge=0)
    #: At most this many distinct identifiers of this type in one customer (None: no limit).
    max_per_customer: int | None = Field(default=None, ge=1)
    #: Regexes searched in the value after ``"<type>:"``; a matching identifier is dropped from the
    #: graph and every edge touching it is rejected (``blocked_value``). Evaluated with RE2 (Arrow)
    #: when the pattern is RE2-compatible, else with Python ``re`` (backreferences work, slower).
    blocked_patterns: list[str] = Field(default_factory=list)
    #: neighbour type -> n: an identifier directly linked to more than n distinct neighbours of that
    #: type is *shared*: all its edges are rejected (``shared_identifier``) and it stands alone.
    #: Neighbours count per person: accounts strong evidence joins (``strong_match_probability``)
    #: count once, so one person's re-registrations do not make their own e-mail "shared".
    max_degree: dict[IdentifierType, int] = Field(default_factory=dict)
    #: ``strong``: a deterministic edge between two strong identifiers is direct evidence (limits do
    #: not cut it); ``personal``: links meet the limits; ``weak``: shared by nature (household phone,
    #: shop loyalty card) — it never joins two customers that each hold an account.
    evidence: Evidence = "personal"

    @field_validator("blocked_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"blocked pattern {pattern!r} is not a valid regex: {exc}") from exc
        return patterns

    @field_validator("max_degree")
    @classmethod
    def _degrees_positive(cls, degrees: dict[str, int]) -> dict[str, int]:
        for neighbour, limit in degrees.items():
            if limit < 1:
                raise ValueError(f"max_degree[{neighbour!r}] must be >= 1, got {limit}")
        return degrees


def default_identifier_rules() -> list[IdentifierRule]:
    """The shipped rules (see the module docstring for how to override them)."""
    return [
        IdentifierRule(type="crm_id", priority=1, max_per_customer=2, evidence="strong"),
        IdentifierRule(type="loyalty_id", priority=2, max_per_customer=1, evidence="weak"),
        IdentifierRule(
            type="email",
            priority=3,
            max_per_customer=3,
            blocked_patterns=[r"^(test|noemail|none|no-reply|noreply)@", r"@example\.(com|org)$"],
            max_degree={"crm_id": 3},
        ),
        IdentifierRule(
            type="phone",
            priority=4,
            max_per_customer=3,
            blocked_patterns=[
                r"^\+?0+$",  # all zeros
                r"^\+?(1+|2+|3+|4+|5+|6+|7+|8+|9+)$",  # one digit repeated: +1111111111
                # country code, then one digit 7+ times: +15555555555
                r"^\+?\d{0,3}(0{7,}|1{7,}|2{7,}|3{7,}|4{7,}|5{7,}|6{7,}|7{7,}|8{7,}|9{7,})$",
                r"^\+?(0123456789|1234567890|123456789)$",  # keyboard runs
            ],
            max_degree={"crm_id": 3},
            evidence="weak",
        ),
        IdentifierRule(type="anonymous_id", priority=5, max_degree={"crm_id": 1}),
        IdentifierRule(type="device_id", priority=6, max_degree={"anonymous_id": 4}),
    ]


def default_edge_type_priority() -> dict[str, int]:
    return {
        "crm_record": 1,
        "pos_loyalty": 2,
        "identify": 3,
        "alias": 4,
        "event": 5,
        "device": 6,
        "node": 7,  # self-edge declaring a lone identifier; never joins two nodes
        "probabilistic": 100,
    }


class IdentityConfig(BaseModel):
    """Everything the resolver needs to know besides the edges."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identifiers: list[IdentifierRule] = Field(default_factory=default_identifier_rules)
    #: edge type -> priority, lower is stronger; probabilistic edges are the weakest by default.
    edge_type_priority: dict[str, int] = Field(default_factory=default_edge_type_priority)
    #: priority of an edge type missing from ``edge_type_priority``.
    default_edge_type_priority: int = 50
    #: edge types that come from a probabilistic matcher (ordered after deterministic ones).
    probabilistic_edge_types: list[str] = Field(default_factory=lambda: ["probabilistic"])
    #: In the careful path, add edges joining two nodes of one previous customer first, so data
    #: appended since the last run cannot reshuffle an existing customer (new links are what
    #: gets refused). False: pure priority order, as if there were no previous map.
    prefer_previous_links: bool = True
    #: edges whose ``probability`` is below this are rejected (``below_threshold``).
    probabilistic_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    #: probabilistic edges at or above this are strong evidence: they join accounts whatever the
    #: per-customer limits say (None: no probabilistic edge is strong).
    strong_match_probability: float | None = Field(default=0.99, ge=0.0, le=1.0)
    #: a probabilistic pair is strong evidence only if none of these roles speaks against it (a
    #: negative match weight: the values differ beyond a typo). Juan and Susan Peters at one address
    #: are not one person however much surname and address they share (the identity pipeline sets
    #: the edges' ``contradicted``; such a pair still links, but meets the limits).
    strong_match_roles: list[str] = Field(default_factory=lambda: ["first_name", "last_name", "birth_date"])
    #: the identifier type of accounts: a ``weak`` identifier never joins two customers holding one.
    account_type: IdentifierType = "crm_id"
    #: customers with more nodes than this are reported in ``Resolution.alarms``.
    cluster_size_alarm: int = Field(default=50, ge=1)
    id_prefix: str = Field(default="cus_", min_length=1)
    #: priority of a node type without an identifier rule (e.g. ``record``).
    default_identifier_priority: int = 100

    @model_validator(mode="after")
    def _unique_types(self) -> IdentityConfig:
        seen: set[str] = set()
        for rule in self.identifiers:
            if rule.type in seen:
                raise ValueError(f"identifier type {rule.type!r} has more than one rule")
            seen.add(rule.type)
        return self

    @classmethod
    def from_yaml(cls, path: str | Path) -> IdentityConfig:
        import yaml

        data: Any = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: identity config must be a mapping, got {type(data).__name__}")
        return cls.model_validate(data)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)

    def rule(self, identifier_type: str) -> IdentifierRule | None:
        for rule in self.identifiers:
            if rule.type == identifier_type:
                return rule
        return None

    def identifier_priority(self, identifier_type: str) -> int:
        rule = self.rule(identifier_type)
        return rule.priority if rule is not None else self.default_identifier_priority

    def edge_priority(self, edge_type: str) -> int:
        return self.edge_type_priority.get(edge_type, self.default_edge_type_priority)


class IdentitySettings(CoreSettings):
    """The settings the identity stage reads: core paths plus its ``identity`` and ``matching`` sections."""

    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    matching: MatchingConfig = Field(default_factory=MatchingConfig)
