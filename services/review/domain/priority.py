"""EU-side priority: rule sets as data, scoring and simulation (the condition language is
priority_conditions.py)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import yaml

from services.review.domain.errors import FieldError, InvalidRuleSet
from services.review.domain.priority_conditions import (
    APPLICATION_FIELDS,
    GOODS_FIELDS,
    Compiler,
    Condition,
    Context,
)
from services.review.domain.protocol_params import iso_date

__all__ = [
    "APPLICATION_FIELDS",
    "GOODS_FIELDS",
    "FiredRule",
    "InvalidRuleSet",
    "PriorityResult",
    "RuleSet",
    "SimulationCase",
    "TierChange",
    "production_stop_date",
    "score",
    "simulate",
    "stops_before_decision",
]

_RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_RULES = 100
_MAX_POINTS = 1000
_MAX_VERSION = 40


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiredRule:
    rule_id: str
    description: str
    points: int
    explanation: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "description": self.description,
            "points": self.points,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class PriorityResult:
    score: int
    tier: str
    fired: tuple[FiredRule, ...]
    rules_version: str
    flags: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "tier": self.tier,
            "fired": [f.as_dict() for f in self.fired],
            "rules_version": self.rules_version,
            "flags": list(self.flags),
        }


class SimulationCase(NamedTuple):
    """An open case to re-score; `current_score` is optional (then from_score is None)."""

    case_id: str
    application: Mapping[str, Any]
    current_tier: str | None
    current_score: int | None = None


@dataclass(frozen=True)
class TierChange:
    case_id: str
    from_tier: str | None
    to_tier: str
    from_score: int | None
    to_score: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "from_tier": self.from_tier,
            "to_tier": self.to_tier,
            "from_score": self.from_score,
            "to_score": self.to_score,
        }


@dataclass(frozen=True)
class _Rule:
    id: str
    description: str
    condition: Condition
    points: int
    flags: tuple[str, ...]


@dataclass(frozen=True)
class RuleSet:
    """A validated priority rule set; build it with from_dict / from_yaml / default()."""

    version: str
    thresholds: Mapping[str, int]
    rules: tuple[_Rule, ...]
    source: Mapping[str, Any] = field(repr=False)

    @classmethod
    def default(cls) -> RuleSet:
        """The packaged priority_rules.yaml, parsed once per process."""
        return _packaged_rules()

    @classmethod
    def from_yaml(cls, text: str) -> RuleSet:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InvalidRuleSet([FieldError("", f"not valid YAML: {error}")]) from error
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> RuleSet:
        """Validate a rule set (e.g. a supervisor's draft); InvalidRuleSet lists every error."""
        compiler = Compiler()
        if not isinstance(data, Mapping):
            raise InvalidRuleSet([FieldError("", "a rule set must be an object")])
        unknown = sorted(set(data) - {"version", "thresholds", "rules"})
        if unknown:
            compiler.error("", f"unknown keys {unknown}")
        version = data.get("version")
        if not isinstance(version, str) or not version.strip():
            compiler.error("version", "is required (a non-empty string)")
        elif len(version) > _MAX_VERSION:
            # Each case records the version it was scored under (cases.rules_version).
            compiler.error("version", f"at most {_MAX_VERSION} characters")
        thresholds = cls._thresholds(data.get("thresholds"), compiler)
        rules = cls._rules(data.get("rules"), compiler)
        if compiler.errors:
            raise InvalidRuleSet(compiler.errors)
        assert isinstance(version, str) and thresholds is not None
        return cls(version, thresholds, rules, source=data)

    @staticmethod
    def _thresholds(value: Any, compiler: Compiler) -> dict[str, int] | None:
        if not isinstance(value, Mapping) or set(value) != {"P1", "P2"}:
            compiler.error(
                "thresholds", "must give the minimum scores of P1 and P2, e.g. {P1: 60, P2: 30}"
            )
            return None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in value.values()):
            compiler.error("thresholds", "must be whole numbers")
            return None
        if value["P1"] <= value["P2"]:
            compiler.error("thresholds", "P1 must be higher than P2")
            return None
        return {"P1": value["P1"], "P2": value["P2"]}

    @staticmethod
    def _rules(value: Any, compiler: Compiler) -> tuple[_Rule, ...]:
        if not isinstance(value, list) or not value:
            compiler.error("rules", "must be a non-empty list")
            return ()
        if len(value) > _MAX_RULES:
            compiler.error("rules", f"at most {_MAX_RULES} rules")
            return ()
        rules: list[_Rule] = []
        seen: set[str] = set()
        for index, raw in enumerate(value):
            path = f"rules[{index}]"
            if not isinstance(raw, Mapping):
                compiler.error(path, "must be an object")
                continue
            unknown = sorted(set(raw) - {"id", "description", "when", "points", "flags"})
            if unknown:
                compiler.error(path, f"unknown keys {unknown}")
            rule_id = raw.get("id")
            if not isinstance(rule_id, str) or not _RULE_ID.match(rule_id):
                compiler.error(f"{path}.id", "must be lower_snake_case, at most 64 characters")
            elif rule_id in seen:
                compiler.error(f"{path}.id", f"duplicate rule id {rule_id!r}")
            else:
                seen.add(rule_id)
            description = raw.get("description")
            if (
                not isinstance(description, str)
                or not description.strip()
                or len(description) > 500
            ):
                compiler.error(f"{path}.description", "is required (at most 500 characters)")
            points = raw.get("points", 0)
            if isinstance(points, bool) or not isinstance(points, int) or abs(points) > _MAX_POINTS:
                compiler.error(
                    f"{path}.points",
                    f"must be a whole number between -{_MAX_POINTS} and {_MAX_POINTS}",
                )
            flags = raw.get("flags", [])
            if not isinstance(flags, list) or not all(
                isinstance(f, str) and _RULE_ID.match(f) for f in flags
            ):
                compiler.error(f"{path}.flags", "must be a list of lower_snake_case names")
            condition = compiler.condition(raw.get("when"), f"{path}.when", APPLICATION_FIELDS)
            # Any error anywhere makes from_dict raise, so rules are only built from clean input.
            if condition is not None and not compiler.errors:
                rules.append(
                    _Rule(str(rule_id), str(description).strip(), condition, points, tuple(flags))
                )
        return tuple(rules)

    def tier_for(self, points: int) -> str:
        if points >= self.thresholds["P1"]:
            return "P1"
        if points >= self.thresholds["P2"]:
            return "P2"
        return "P3"

    def as_dict(self) -> dict[str, Any]:
        """The rule set as given (for storing a draft or serving the rules)."""
        return dict(self.source)


@cache
def _packaged_rules() -> RuleSet:
    text = resources.files(__package__).joinpath("priority_rules.yaml").read_text(encoding="utf-8")
    return RuleSet.from_yaml(text)


# --- scoring ------------------------------------------------------------------------------


def score(application: Mapping[str, Any], rules: RuleSet, today: date) -> PriorityResult:
    """Score an application: the fired rules with concrete explanations, the total and the tier.

    `today` anchors date conditions (production stop within N days), so scoring is repeatable.
    """
    context = Context(application, today)
    fired: list[FiredRule] = []
    flags: list[str] = []
    for rule in rules.rules:
        outcome = rule.condition.evaluate(context)
        if outcome.matched:
            fired.append(FiredRule(rule.id, rule.description, rule.points, outcome.explanation))
            flags += [f for f in rule.flags if f not in flags]
    total = sum(f.points for f in fired)
    return PriorityResult(total, rules.tier_for(total), tuple(fired), rules.version, tuple(flags))


def simulate(
    cases: Iterable[SimulationCase | Sequence[Any]], draft: RuleSet, today: date
) -> list[TierChange]:
    """The open cases whose tier would change under `draft`, in the order given.

    Each case is (case_id, application, current_tier[, current_score]). Cases whose tier a
    supervisor set by hand keep that tier in reality; the caller decides whether to pass them.
    """
    changes: list[TierChange] = []
    for item in cases:
        case = item if isinstance(item, SimulationCase) else SimulationCase(*item)
        result = score(case.application, draft, today)
        if result.tier != case.current_tier:
            changes.append(
                TierChange(
                    case.case_id, case.current_tier, result.tier, case.current_score, result.score
                )
            )
    return changes


# --- urgency against the expected decision --------------------------------------------------


def production_stop_date(application: Mapping[str, Any]) -> date | None:
    """The day the applicant says its production stops without the goods (None: not given)."""
    urgency = application.get("urgency")
    return iso_date(urgency.get("production_stop_date")) if isinstance(urgency, Mapping) else None


def stops_before_decision(production_stop: date | None, expected_decision: date | None) -> bool:
    """Whether production stops before the decision is expected: the channel will be late."""
    return (
        production_stop is not None
        and expected_decision is not None
        and production_stop < expected_decision
    )
