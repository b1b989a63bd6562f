"""Typed settings for probabilistic record matching (Fellegi-Sunter via Splink).

The configuration speaks in *roles* (``first_name``, ``last_name``, ``birth_date``,
``street``, ``city``, ``postcode``) rather than source column names: callers rename
their (already standardised) columns to roles before matching. Extra identifier-like
columns (e.g. a social-security id or a street number) are declared in
``extra_columns`` and may then be compared and blocked on like a standard role.

``MatchingConfig()`` is the default for CRM customer records. Load other settings
with :meth:`MatchingConfig.from_dict` / :meth:`MatchingConfig.from_yaml`; invalid
input raises :class:`pydantic.ValidationError` with a message naming the problem.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Standard roles a caller maps its columns to (in canonical order).
STANDARD_ROLES: tuple[str, ...] = ("first_name", "last_name", "birth_date", "street", "city", "postcode")

#: Column every input record must carry (unique within each input table).
RECORD_ID = "record_id"

ComparisonKind = Literal["name", "date", "address", "postcode", "exact", "levenshtein"]
LinkType = Literal["dedupe_only", "link_only", "link_and_dedupe"]
DateMetric = Literal["day", "month", "year"]
Agreement = Literal["exact", "near"]
StringAlgorithm = Literal["jaro_winkler", "levenshtein"]

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED = {RECORD_ID, "unique_id", "source_dataset", "match_key", "match_weight", "match_probability"}

# Options that only make sense for some kinds (anything else set explicitly is an error).
_OPTIONS_BY_KIND: dict[str, set[str]] = {
    "name": {"jaro_winkler_thresholds", "swapped_with"},
    "date": {"date_format", "date_windows"},
    "address": {"algorithm", "jaro_winkler_thresholds", "edit_distance_thresholds", "numbers_must_agree"},
    "postcode": {"edit_distance_thresholds", "prefix_lengths"},
    "exact": set(),
    "levenshtein": {"edit_distance_thresholds"},
}
_KIND_OPTIONS = {"jaro_winkler_thresholds", "edit_distance_thresholds", "prefix_lengths", "date_format"}
_KIND_OPTIONS |= {"date_windows", "algorithm", "swapped_with", "numbers_must_agree"}


class DateWindow(BaseModel):
    """'Dates within ``threshold`` ``metric``s of each other' comparison level."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    threshold: int = Field(gt=0)
    metric: DateMetric


class ComparisonConfig(BaseModel):
    """How one role is compared. Levels run from most to least similar:

    * ``name``: exact (term-frequency adjusted) / Jaro-Winkler >= thresholds >= 0.88 /
      [value equals the other record's ``swapped_with`` role] / lower thresholds / else.
    * ``date``: exact / one edit (typo, transposed digit) / within each date window / else.
    * ``address``: exact / Jaro-Winkler >= thresholds (or Levenshtein <= distances) / else; with
      ``numbers_must_agree`` a similarity level also needs the same house numbers (digit runs) when
      both values carry some, and a similar street with other numbers gets a level (and weight) of
      its own: "beethovenpl 102" and "beethovenpl 73" are neighbours in one world, a typo in another.
    * ``postcode``: exact / Damerau-Levenshtein <= distances / same leading prefix / else.
    * ``exact``: exact / else.
    * ``levenshtein``: exact / Damerau-Levenshtein <= distances / else (id-like columns).

    Every comparison has a null level first (either side missing: weight 0).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ComparisonKind
    term_frequency_adjustments: bool | None = Field(
        default=None,
        description="Adjust the exact-match weight by how common the value is "
        "(default: on for name and postcode, off otherwise).",
    )
    jaro_winkler_thresholds: list[float] | None = None
    edit_distance_thresholds: list[int] | None = None
    prefix_lengths: list[int] | None = None
    algorithm: StringAlgorithm | None = None
    date_format: str | None = Field(default=None, description="strptime format of string dates")
    date_windows: list[DateWindow] | None = None
    numbers_must_agree: bool | None = Field(
        default=None,
        description="address only: the similarity levels below exact need the same digit runs (house "
        "numbers) in both values, when both have some (default off; on for the CRM street).",
    )
    swapped_with: str | None = Field(
        default=None,
        description="name only: add a level for this role's value appearing in the other record's "
        "`swapped_with` role (e.g. first and last name transposed).",
    )

    @field_validator("jaro_winkler_thresholds")
    @classmethod
    def _check_jw(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("jaro_winkler_thresholds must not be empty")
        if any(not 0.0 < t < 1.0 for t in v):
            raise ValueError(f"jaro_winkler_thresholds must lie in (0, 1), got {v}")
        if sorted(v, reverse=True) != v or len(set(v)) != len(v):
            raise ValueError(f"jaro_winkler_thresholds must be strictly decreasing, got {v}")
        return v

    @field_validator("edit_distance_thresholds")
    @classmethod
    def _check_edit(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("edit_distance_thresholds must not be empty")
        if any(t < 1 for t in v) or sorted(set(v)) != v:
            raise ValueError(f"edit_distance_thresholds must be positive and strictly increasing, got {v}")
        return v

    @field_validator("prefix_lengths")
    @classmethod
    def _check_prefix(cls, v: list[int] | None) -> list[int] | None:
        if v is None:
            return v
        if any(t < 1 for t in v) or sorted(set(v), reverse=True) != v:
            raise ValueError(f"prefix_lengths must be positive and strictly decreasing, got {v}")
        return v

    @model_validator(mode="after")
    def _check_options_for_kind(self) -> ComparisonConfig:
        allowed = _OPTIONS_BY_KIND[self.kind]
        misplaced = sorted(
            name for name in _KIND_OPTIONS if getattr(self, name) is not None and name not in allowed
        )
        if misplaced:
            raise ValueError(
                f"option(s) {misplaced} do not apply to comparison kind '{self.kind}' "
                f"(allowed: {sorted(allowed) or 'none'})"
            )
        if self.kind == "address" and self.algorithm == "levenshtein" and self.numbers_must_agree:
            raise ValueError("numbers_must_agree applies to the Jaro-Winkler address comparison")
        if self.kind == "address" and self.algorithm == "levenshtein" and self.jaro_winkler_thresholds:
            raise ValueError("address with algorithm='levenshtein' takes edit_distance_thresholds")
        if (
            self.kind == "address"
            and self.algorithm in (None, "jaro_winkler")
            and self.edit_distance_thresholds is not None
        ):
            raise ValueError("address with algorithm='jaro_winkler' takes jaro_winkler_thresholds")
        return self

    # Resolved values (explicit setting or the kind's default) -------------------------
    @property
    def tf_adjustments(self) -> bool:
        if self.term_frequency_adjustments is not None:
            return self.term_frequency_adjustments
        return self.kind in ("name", "postcode")

    @property
    def resolved_jaro_winkler_thresholds(self) -> list[float]:
        if self.jaro_winkler_thresholds is not None:
            return self.jaro_winkler_thresholds
        return [0.92, 0.88, 0.7] if self.kind == "name" else [0.9, 0.8]

    @property
    def resolved_edit_distance_thresholds(self) -> list[int]:
        if self.edit_distance_thresholds is not None:
            return self.edit_distance_thresholds
        return {"postcode": [1], "address": [1, 3]}.get(self.kind, [1, 2])

    @property
    def resolved_prefix_lengths(self) -> list[int]:
        return self.prefix_lengths if self.prefix_lengths is not None else [3]

    @property
    def resolved_date_format(self) -> str:
        return self.date_format or "%Y-%m-%d"

    @property
    def exact_gamma(self) -> int:
        """Splink's comparison value of the exact-match level (the top one; the else level is 0)."""
        if self.kind == "name" or (self.kind == "address" and self.algorithm in (None, "jaro_winkler")):
            between = len(self.resolved_jaro_winkler_thresholds) + (1 if self.swapped_with else 0)
            between += 1 if self.numbers_must_agree else 0
        elif self.kind == "date":
            between = 1 + len(self.resolved_date_windows)
        elif self.kind == "postcode":
            between = len(self.resolved_edit_distance_thresholds) + len(self.resolved_prefix_lengths)
        elif self.kind == "exact":
            between = 0
        else:  # levenshtein address, levenshtein
            between = len(self.resolved_edit_distance_thresholds)
        return between + 1

    @property
    def resolved_date_windows(self) -> list[DateWindow]:
        if self.date_windows is not None:
            return self.date_windows
        return [
            DateWindow(threshold=1, metric="month"),
            DateWindow(threshold=1, metric="year"),
            DateWindow(threshold=10, metric="year"),
        ]


def _default_comparisons() -> dict[str, ComparisonConfig]:
    # The address is compared as street + city, not also postcode. The three describe one
    # address, and Fellegi-Sunter adds their weights as if independent: a household (same surname
    # and address, different first names) then scored +31 bits of address evidence and merged.
    # Without postcode, over-merged customers at 100k fell from 101 to 7, with recall unchanged
    # (benchmarks/RESULTS.md). Postcode still blocks.
    return {
        "first_name": ComparisonConfig(kind="name", swapped_with="last_name"),
        "last_name": ComparisonConfig(kind="name", swapped_with="first_name"),
        "birth_date": ComparisonConfig(kind="date"),
        # a namesake two doors down is not a typo: the house numbers must agree for a near street
        "street": ComparisonConfig(kind="address", numbers_must_agree=True),
        "city": ComparisonConfig(kind="address", term_frequency_adjustments=True),
        "phone": ComparisonConfig(kind="exact"),
        "email_key": ComparisonConfig(kind="exact"),
        # a national id / tax number (SSN, DNI, CPF, ...): exact / one edit / two edits / differs
        "national_id": ComparisonConfig(kind="levenshtein"),
    }


#: Settings read only when pairs are scored: changing them does not retrain the model.
PREDICTION_ONLY = {
    "match_threshold",
    "blocking_rules",
    "swapped_blocking",
    "veto_roles",
    "veto_exemptions",
    "identity_roles",
    "corroborate_missing",
    "key_roles",
    "guard_max_m",
}


class MatchingConfig(BaseModel):
    """Probabilistic matching settings; the defaults suit CRM customer records."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link_type: LinkType = "dedupe_only"
    extra_columns: list[str] = Field(
        default_factory=lambda: ["phone", "email_key", "national_id"],
        description="Additional (identifier-like) columns usable as roles. The CRM default compares E.164 "
        "phones, a canonical e-mail key and the national id (tax number, SSN) when the export has one: two "
        "different numbers or addresses are strong evidence of two people (household members share surname "
        "and address, not their mobiles or national ids).",
    )
    comparisons: dict[str, ComparisonConfig] = Field(
        default_factory=_default_comparisons,
        description="role -> comparison, in waterfall order.",
    )
    blocking_rules: list[list[str]] = Field(
        default_factory=lambda: [
            ["birth_date"],
            ["last_name", "postcode"],
            ["first_name", "last_name"],
            ["street", "postcode"],
            ["email_key"],
            # a record whose birth date is missing or mistyped and one name misspelt is still found
            ["first_name", "postcode"],
            ["first_name", "street"],
            ["last_name", "street"],
            ["national_id"],
        ],
        description="Candidate pairs: records agreeing exactly on all roles of ANY rule.",
    )
    swapped_blocking: list[list[str]] = Field(
        default_factory=lambda: [["first_name", "last_name"]],
        description="Pairs of roles also blocked on transposed (l.a = r.b and l.b = r.a): a record whose "
        "first and last name were entered the wrong way round, with no birth date, shares no other rule "
        "with its person's (FEBRL1: 3 of 6 duplicates never compared). [] switches it off.",
    )
    training_blocking_rules: list[list[str]] = Field(
        # Not last_name + postcode: its pairs are mostly household members (same surname and address),
        # which EM then half-counts as matches, so a birth date that differs cost a match only 1 bit
        # and households with a landline merged (20k world: 88 over-merged customers -> 45).
        default_factory=lambda: [["birth_date"], ["first_name", "last_name"]],
        description="One EM session per rule; a role's m is not estimated in a session blocking on it.",
    )
    deterministic_rules: list[list[str]] = Field(
        default_factory=lambda: [
            ["first_name", "last_name", "birth_date"],
            ["last_name", "birth_date", "postcode"],
        ],
        description="Near-certain match rules used to estimate the prior (lambda).",
    )
    deterministic_recall: float = Field(
        default=0.7, gt=0.0, le=1.0, description="Assumed share of true matches the deterministic rules find."
    )
    probability_two_random_records_match: float | None = Field(
        default=None, description="Fix the prior instead of estimating it from deterministic_rules."
    )
    veto_roles: list[str] | None = Field(
        default=None,
        description="Roles whose complete disagreement (both values present, lowest 'differs' level) vetoes a "
        "match whatever the other fields say — e.g. household members share surname and address but not "
        "first names, birth dates or mobiles; typos still match through the near-match levels. Default: "
        "first_name (below Jaro-Winkler 0.7, not swapped), birth_date and phone, those compared.",
    )
    veto_exemptions: dict[str, dict[str, Agreement]] | None = Field(
        default=None,
        description="veto role -> {role: 'exact' | 'near'}: when ALL those roles agree so (near = exact or "
        "the first similarity level below it), the veto is lifted and Fellegi-Sunter weighs the pair as "
        "usual. The same full name at (nearly) the same street and city makes a wholly different birth "
        "date a data-entry error rather than a household member (members have their own first names). "
        "Default: birth_date lifted by first_name, last_name and street exact and city near (those "
        "compared; 'near' on the street let 'ringpl 29' and 'ringplatz 93' exempt namesakes). Set {} to make every veto absolute (e.g. fathers and sons who share a name).",
    )
    identity_roles: list[str] | None = Field(
        default=None,
        description="A pair links only when at least one of these roles positively agrees (a name at "
        "Jaro-Winkler >= 0.88 or swapped, a date within a year, any other kind at a level above "
        "'differs'; and, in every case, at a level the trained model weighs as evidence FOR a match: a "
        "birth date 'within a year' with a weight of -15 bits is no agreement). Surname, address and a shared landline describe a household, not a person: "
        "without a first name or a birth date that agree, they never link two records. Default: "
        "first_name and birth_date, those compared; [] switches the rule off.",
    )
    corroborate_missing: dict[str, list[list[str]]] | None = Field(
        default=None,
        description="role -> groups of roles: when the role is missing on either record, the pair links only "
        "if one group corroborates it (each of its roles agrees, above its 'differs' level, or is missing, "
        "and at least one agrees). A missing birth date weighs nothing, so two namesakes in one city matched "
        "on their names alone (200k world: 51 of 86 over-merged customers). Default: birth_date by street + "
        "city (Jaro-Winkler >= 0.8), or the e-mail key, or the phone, those compared; {} switches it off.",
    )
    guard_max_m: float | None = Field(
        default=0.025,
        gt=0.0,
        lt=1.0,
        description="The vetoes, identity_roles and corroborate_missing assume that a person's records agree "
        "on a role (households differ in first names and birth dates; a person keeps theirs). Each holds only "
        "where the trained model confirms it: the share of matching pairs that differ on the role (m of its "
        "'differs' level) is below this. A CRM whose duplicates re-key whole fields (FEBRL: 9 % of matches "
        "differ in first name, 4 % in birth date) is then weighed by Fellegi-Sunter alone; the generated "
        "world's households keep their guards (m <= 0.016). Only a model trained on at least 200 expected "
        "matching pairs relaxes a guard (small exports keep them all). None: the guards always hold.",
    )
    key_roles: dict[str, Agreement] | None = Field(
        default=None,
        description="Personal keys no two people share (a national id, a tax number): when one agrees "
        "('exact', or 'near' = exact or one edit), it lifts every veto and satisfies identity_roles, and a "
        "strong pair it supports is not 'contradicted' by a differing name or birth date; Fellegi-Sunter "
        "still weighs the pair against the threshold. A record whose first name and birth date were both "
        "re-keyed is then still its person's record. A differing key is not a veto by default (it counts "
        "against the pair by its trained weight); where ids are reliable, add it to veto_roles. "
        "Default: national_id near, if compared; {} = none.",
    )
    match_threshold: float = Field(
        default=0.9, description="Match probability at or above which a pair links."
    )
    max_pairs: int = Field(default=10_000_000, ge=1_000, description="Random pairs sampled for u estimation.")
    em_max_pairs: int | None = Field(
        default=2_000_000,
        ge=1_000,
        description="Cap on blocked pairs per EM session (records hash-sampled above it; None = all).",
    )
    em_max_iterations: int = Field(default=25, ge=1, le=1000)
    em_convergence: float = Field(default=1e-4, gt=0.0, lt=1.0)
    seed: int = 42

    # ----------------------------------------------------------------- validation
    @field_validator("match_threshold", "probability_two_random_records_match")
    @classmethod
    def _check_probability(cls, v: float | None, info: Any) -> float | None:
        if v is not None and not 0.0 < v < 1.0:
            raise ValueError(f"{info.field_name} must be a probability strictly between 0 and 1, got {v}")
        return v

    @field_validator("max_pairs", "em_max_pairs", mode="before")
    @classmethod
    def _accept_scientific(cls, v: Any) -> Any:
        """Allow ``1e7`` (YAML reads it as a string) or ``1e7`` floats for pair counts."""
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                return v
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v

    @field_validator("extra_columns")
    @classmethod
    def _check_extra_columns(cls, v: list[str]) -> list[str]:
        for name in v:
            if not _IDENTIFIER.match(name):
                raise ValueError(f"extra column '{name}' must be a lower-case identifier ([a-z][a-z0-9_]*)")
            if name in STANDARD_ROLES:
                raise ValueError(f"extra column '{name}' is already a standard role")
            if name in _RESERVED or name.startswith(("tf_", "gamma_", "mw_", "bf_")):
                raise ValueError(f"extra column '{name}' is a reserved name")
        if len(set(v)) != len(v):
            raise ValueError(f"extra_columns has duplicates: {v}")
        return v

    @model_validator(mode="after")
    def _check_roles(self) -> MatchingConfig:
        known = self.known_roles

        def check(role: str, where: str) -> None:
            if role not in known:
                raise ValueError(
                    f"unknown role '{role}' in {where}; expected one of {list(STANDARD_ROLES)}"
                    + (f" or extra_columns {self.extra_columns}" if self.extra_columns else "")
                    + " (declare additional id columns under extra_columns)"
                )

        if not self.comparisons:
            raise ValueError("comparisons must compare at least one role")
        for role, cc in self.comparisons.items():
            check(role, "comparisons")
            if cc.swapped_with is not None:
                check(cc.swapped_with, f"comparisons.{role}.swapped_with")
                if cc.swapped_with == role:
                    raise ValueError(f"comparisons.{role}.swapped_with must name a different role")
        for field in ("blocking_rules", "training_blocking_rules", "deterministic_rules"):
            rules: list[list[str]] = getattr(self, field)
            for rule in rules:
                if not rule:
                    raise ValueError(f"{field} contains an empty rule; each rule needs at least one role")
                if len(set(rule)) != len(rule):
                    raise ValueError(f"{field} rule {rule} repeats a role")
                for role in rule:
                    check(role, field)
        for role in self.veto_roles or []:
            if role not in self.comparisons:
                raise ValueError(
                    f"veto_roles: '{role}' is not compared (add it to comparisons or drop the veto)"
                )
        for role in self.identity_roles or []:
            if role not in self.comparisons:
                raise ValueError(f"identity_roles: '{role}' is not compared")
        for role, lifters in (self.veto_exemptions or {}).items():
            if role not in self.effective_veto_roles:
                raise ValueError(f"veto_exemptions: '{role}' is not a veto role {self.effective_veto_roles}")
            if not lifters or any(r not in self.comparisons or r == role for r in lifters):
                raise ValueError(
                    f"veto_exemptions.{role}: {sorted(lifters)} must name one or more other compared roles"
                )
        for role, groups in (self.corroborate_missing or {}).items():
            if role not in self.comparisons:
                raise ValueError(f"corroborate_missing: '{role}' is not compared")
            if not groups or any(
                not g or any(r not in self.comparisons or r == role for r in g) for g in groups
            ):
                raise ValueError(
                    f"corroborate_missing.{role}: {groups} must be non-empty groups of other compared roles"
                )
        for pair in self.swapped_blocking:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ValueError(f"swapped_blocking: {pair} must name two different roles")
            for role in pair:
                check(role, "swapped_blocking")
        for role in self.key_roles or {}:
            if role not in self.comparisons:
                raise ValueError(f"key_roles: '{role}' is not compared (add it to comparisons)")
        if not self.blocking_rules:
            raise ValueError("blocking_rules must contain at least one rule")
        if not self.training_blocking_rules:
            raise ValueError("training_blocking_rules must contain at least one rule")
        if self.probability_two_random_records_match is None and not self.deterministic_rules:
            raise ValueError("set deterministic_rules or a fixed probability_two_random_records_match")
        # Each compared role needs an EM session that does not block on it, else its m stays untrained.
        untrained = [
            role for role in self.comparisons if all(role in rule for rule in self.training_blocking_rules)
        ]
        if untrained:
            raise ValueError(
                f"role(s) {untrained} appear in every training_blocking_rule, so their m probabilities "
                "could never be estimated; add a training rule that does not block on them"
            )
        return self

    # ----------------------------------------------------------------- helpers
    @property
    def effective_veto_roles(self) -> list[str]:
        if self.veto_roles is not None:
            return list(self.veto_roles)
        return [r for r in ("first_name", "birth_date", "phone") if r in self.comparisons]

    @property
    def effective_veto_exemptions(self) -> dict[str, dict[str, Agreement]]:
        if self.veto_exemptions is not None:
            return {r: dict(v) for r, v in self.veto_exemptions.items()}
        names = ["first_name", "last_name"]
        if "birth_date" in self.effective_veto_roles and all(r in self.comparisons for r in names):
            lifters: dict[str, Agreement] = {"first_name": "exact", "last_name": "exact"}
            lifters.update(
                {r: how for r, how in (("street", "exact"), ("city", "near")) if r in self.comparisons}
            )
            return {"birth_date": lifters}
        return {}

    @property
    def effective_identity_roles(self) -> list[str]:
        if self.identity_roles is not None:
            return list(self.identity_roles)
        return [r for r in ("first_name", "birth_date") if r in self.comparisons]

    @property
    def effective_corroborate_missing(self) -> dict[str, list[list[str]]]:
        if self.corroborate_missing is not None:
            return {r: [list(g) for g in v] for r, v in self.corroborate_missing.items()}
        if "birth_date" not in self.comparisons:
            return {}
        groups = [
            g for g in (["street", "city"], ["email_key"], ["phone"]) if all(r in self.comparisons for r in g)
        ]
        return {"birth_date": groups} if groups else {}

    @property
    def effective_key_roles(self) -> dict[str, Agreement]:
        if self.key_roles is not None:
            return dict(self.key_roles)
        return {"national_id": "near"} if "national_id" in self.comparisons else {}

    def agreement_floor(self, role: str, how: Agreement) -> int:
        """Lowest comparison level (gamma) at which ``role`` agrees ``how``: 'exact' is the top level,
        'near' also the first similarity level below it."""
        return max(self.comparisons[role].exact_gamma - (1 if how == "near" else 0), 1)

    def key_gamma(self, role: str) -> int:
        """Lowest comparison level (gamma) at which key ``role`` agrees (see key_roles)."""
        return self.agreement_floor(role, self.effective_key_roles[role])

    def agreement_gammas(self, role: str) -> list[int]:
        """Comparison levels (gamma values) at which ``role`` positively agrees (see identity_roles)."""
        cc = self.comparisons[role]
        top = cc.exact_gamma
        if cc.kind == "name":
            low = sum(1 for t in cc.resolved_jaro_winkler_thresholds if t < 0.88)
            return list(range(1 + low, top + 1))
        if cc.kind == "date":
            return [g for g in range(1, top + 1) if g not in self.veto_gammas(role)]
        return list(range(1, top + 1))

    def veto_gammas(self, role: str) -> list[int]:
        """Comparison levels (Splink gamma values) that veto a match on ``role``: the 'differs'
        level (0) and, for dates, windows wider than a year (a spouse born 3 years apart is no
        typo; a day/month swap or a one-character slip stays matchable)."""
        cc = self.comparisons[role]
        gammas = [0]
        if cc.kind == "date":
            windows = cc.resolved_date_windows
            days = {"day": 1, "month": 31, "year": 366}
            gammas += [len(windows) - i for i, w in enumerate(windows) if w.threshold * days[w.metric] > 366]
        return sorted(gammas)

    @property
    def known_roles(self) -> tuple[str, ...]:
        return STANDARD_ROLES + tuple(self.extra_columns)

    @property
    def used_roles(self) -> list[str]:
        """Roles the records must carry: compared roles plus any role used in a rule."""
        roles: list[str] = list(self.comparisons)
        roles.extend(
            cc.swapped_with
            for cc in self.comparisons.values()
            if cc.swapped_with and cc.swapped_with not in roles
        )
        for rule in (
            *self.blocking_rules,
            *self.swapped_blocking,
            *self.training_blocking_rules,
            *self.deterministic_rules,
        ):
            roles.extend(r for r in rule if r not in roles)
        return roles

    def fingerprint(self) -> str:
        """Stable hash of the settings that shape the trained model: not the threshold, the
        candidate pairs or the guards, which only act when pairs are scored."""
        payload = self.model_dump(mode="json", exclude=PREDICTION_ONLY)
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchingConfig:
        return cls.model_validate(data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> MatchingConfig:
        import yaml

        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def default_crm_config() -> MatchingConfig:
    """Default settings for CRM customer records (first/last name, birth date, address)."""
    return MatchingConfig()
