"""EU-side priority: rule sets as data, a safe condition language, scoring and simulation."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import yaml

from services.review.domain.errors import FieldError, InvalidRuleSet

__all__ = [
    "APPLICATION_FIELDS",
    "GOODS_FIELDS",
    "FiredRule",
    "InvalidRuleSet",
    "PriorityResult",
    "RuleSet",
    "SimulationCase",
    "TierChange",
    "score",
    "simulate",
]

# The vocabulary rules may speak: field path -> (type, wording for explanations). Checking
# paths against it on load turns a typo in a supervisor's draft into an error, instead of a
# rule that silently never fires.
APPLICATION_FIELDS: Mapping[str, tuple[str, str]] = {
    "mofcom_application_number": ("str", "MOFCOM application number {value}"),
    "licence_type": ("str", "licence type {value}"),
    "exporter.name": ("str", "exporter {value}"),
    "exporter.uscc": ("str", "exporter USCC {value}"),
    "consignee.name": ("str", "consignee {value}"),
    "consignee.country": ("str", "consignee country {value}"),
    "end_user.name": ("str", "end user {value}"),
    "end_user.country": ("str", "end-user country {value}"),
    "end_use.category": ("str", "end-use category {value}"),
    "end_use.description": ("str", "end use {value!r}"),
    "urgency.stock_days": ("number", "{value} days of stock left"),
    "urgency.production_stop_date": ("date", "production stops on {value}"),
    "urgency.jobs_at_risk": ("number", "{value} jobs at risk"),
    "sme": ("bool", "small or medium enterprise: {value}"),
}
GOODS_FIELDS: Mapping[str, tuple[str, str]] = {
    "element": ("str", "element {value}"),
    "form": ("str", "form {value}"),
    "hs_code": ("str", "HS code {value}"),
    "quantity_kg": ("number", "{value} kg"),
    "value_eur": ("number", "EUR {value}"),
}

_RULE_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Bounds on a draft, since supervisors POST them: keep evaluation cheap and readable.
_MAX_RULES = 100
_MAX_DEPTH = 8
_MAX_POINTS = 1000
_COMPARISONS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}
_LEAF_OPS = ("eq", "ne", "in", "not_in", *_COMPARISONS, "within_days", "exists")


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


# --- the condition language ---------------------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    matched: bool
    explanation: str


@dataclass(frozen=True)
class _Context:
    record: Mapping[str, Any]
    today: date


class _Condition:
    def evaluate(self, ctx: _Context) -> _Outcome:
        raise NotImplementedError


@dataclass(frozen=True)
class _Leaf(_Condition):
    path: str
    kind: str
    label: str
    op: str
    operand: Any

    def evaluate(self, ctx: _Context) -> _Outcome:
        value = _lookup(ctx.record, self.path, self.kind)
        if self.op == "exists":
            present = value is not None
            text = f"{self.path} {'given' if present else 'not given'}"
            return _Outcome(present == self.operand, text)
        if value is None:
            return _Outcome(False, f"{self.path} not given")
        shown = self.label.replace("{value!r}", repr(_show(value))).replace("{value}", _show(value))
        if self.op == "within_days":
            days = (value - ctx.today).days
            when = f"in {days} days" if days >= 0 else f"{-days} days ago"
            matched = days <= self.operand
            test = f"within {self.operand} days" if matched else f"not within {self.operand} days"
            return _Outcome(matched, f"{shown}, {when} ({test})")
        matched = _compare(self.op, value, self.operand)
        test = _describe(self.op, self.operand)
        return _Outcome(matched, f"{shown} ({test})" if matched else f"{shown} (not {test})")


@dataclass(frozen=True)
class _All(_Condition):
    parts: tuple[_Condition, ...]

    def evaluate(self, ctx: _Context) -> _Outcome:
        outcomes = [part.evaluate(ctx) for part in self.parts]
        failed = [o for o in outcomes if not o.matched]
        if failed:
            return _Outcome(False, failed[0].explanation)
        return _Outcome(True, "; ".join(o.explanation for o in outcomes))


@dataclass(frozen=True)
class _Any(_Condition):
    parts: tuple[_Condition, ...]

    def evaluate(self, ctx: _Context) -> _Outcome:
        outcomes = [part.evaluate(ctx) for part in self.parts]
        matched = [o for o in outcomes if o.matched]
        if matched:
            return _Outcome(True, "; ".join(o.explanation for o in matched))
        return _Outcome(False, "none of: " + "; ".join(o.explanation for o in outcomes))


@dataclass(frozen=True)
class _Not(_Condition):
    part: _Condition

    def evaluate(self, ctx: _Context) -> _Outcome:
        inner = self.part.evaluate(ctx)
        # The inner explanation already says which way it went ("(not ≤ 14)").
        return _Outcome(not inner.matched, inner.explanation)


@dataclass(frozen=True)
class _Goods(_Condition):
    quantifier: str  # "any" or "all"
    part: _Condition

    def evaluate(self, ctx: _Context) -> _Outcome:
        goods = ctx.record.get("goods")
        lines = [g for g in goods if isinstance(g, Mapping)] if isinstance(goods, list) else []
        results = [
            (number, self.part.evaluate(_Context(line, ctx.today)))
            for number, line in enumerate(lines, start=1)
        ]
        hits = [f"line {n}: {o.explanation}" for n, o in results if o.matched]
        misses = [f"line {n}: {o.explanation}" for n, o in results if not o.matched]
        if self.quantifier == "any":
            if hits:
                return _Outcome(True, "; ".join(hits))
            return _Outcome(
                False, "no goods line matches" + (": " + "; ".join(misses) if misses else "")
            )
        if lines and not misses:
            return _Outcome(True, "every goods line: " + "; ".join(hits))
        return _Outcome(False, "; ".join(misses) or "no goods lines")


def _lookup(record: Mapping[str, Any], path: str, kind: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    # Values of the wrong type count as not given: a scorer must never crash on one case.
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        return value if ok else None
    if kind == "date":
        return _as_date(value)
    if kind == "bool":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


def _as_date(value: Any) -> date | None:
    if type(value) is date:
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _compare(op: str, value: Any, operand: Any) -> bool:
    if op == "eq":
        return bool(value == operand)
    if op == "ne":
        return bool(value != operand)
    if op == "in":
        return value in operand
    if op == "not_in":
        return value not in operand
    if op == "lt":
        return bool(value < operand)
    if op == "lte":
        return bool(value <= operand)
    if op == "gt":
        return bool(value > operand)
    return bool(value >= operand)


def _describe(op: str, operand: Any) -> str:
    if op in ("in", "not_in"):
        listed = ", ".join(_show(v) for v in operand)
        return f"one of {listed}" if op == "in" else f"none of {listed}"
    if op == "eq":
        return f"= {_show(operand)}"
    if op == "ne":
        return f"≠ {_show(operand)}"
    return f"{_COMPARISONS[op]} {_show(operand)}"


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# --- compiling a rule file ----------------------------------------------------------------


class _Compiler:
    """Turns the YAML/JSON condition tree into condition objects, collecting every error."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def condition(
        self, node: Any, path: str, fields: Mapping[str, tuple[str, str]], depth: int = 0
    ) -> _Condition | None:
        if depth > _MAX_DEPTH:
            self.error(path, f"conditions may nest at most {_MAX_DEPTH} levels")
            return None
        if not isinstance(node, Mapping) or not node:
            self.error(path, "must be a condition object")
            return None
        if "field" in node:
            return self.leaf(node, path, fields)
        if len(node) != 1:
            self.error(
                path,
                "must have exactly one key of all, any, not, any_goods, all_goods "
                f"(or field with an operator); got {sorted(node)}",
            )
            return None
        ((key, value),) = node.items()
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                self.error(f"{path}.{key}", "must be a non-empty list of conditions")
                return None
            parts = [
                self.condition(v, f"{path}.{key}[{i}]", fields, depth + 1)
                for i, v in enumerate(value)
            ]
            if any(p is None for p in parts):
                return None
            compiled = tuple(p for p in parts if p is not None)
            return _All(compiled) if key == "all" else _Any(compiled)
        if key == "not":
            part = self.condition(value, f"{path}.not", fields, depth + 1)
            return _Not(part) if part else None
        if key in ("any_goods", "all_goods"):
            if fields is GOODS_FIELDS:
                self.error(f"{path}.{key}", "goods conditions cannot nest")
                return None
            part = self.condition(value, f"{path}.{key}", GOODS_FIELDS, depth + 1)
            return _Goods(key.removesuffix("_goods"), part) if part else None
        self.error(path, f"unknown condition {key!r}")
        return None

    def leaf(
        self, node: Mapping[str, Any], path: str, fields: Mapping[str, tuple[str, str]]
    ) -> _Leaf | None:
        name = node["field"]
        if not isinstance(name, str) or name not in fields:
            scope = "a goods line" if fields is GOODS_FIELDS else "the application"
            self.error(
                f"{path}.field", f"unknown field {name!r} of {scope}; known: {', '.join(fields)}"
            )
            return None
        kind, wording = fields[name]
        label = node.get("label", wording)
        if not isinstance(label, str) or len(label) > 200:
            self.error(f"{path}.label", "must be a string of at most 200 characters")
            return None
        ops = [k for k in node if k not in ("field", "label")]
        if len(ops) != 1 or ops[0] not in _LEAF_OPS:
            self.error(path, f"needs exactly one operator of {', '.join(_LEAF_OPS)}; got {ops}")
            return None
        op = ops[0]
        operand = self.operand(op, node[op], kind, f"{path}.{op}")
        if operand is None:
            return None
        return _Leaf(name, kind, label, op, operand)

    def operand(self, op: str, value: Any, kind: str, path: str) -> Any:
        if op == "exists":
            if isinstance(value, bool):
                return value
            self.error(path, "must be true or false")
            return None
        if op == "within_days":
            if kind != "date":
                self.error(path, "within_days applies to date fields only")
            elif isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 3650:
                return value
            else:
                self.error(path, "must be a whole number of days between 0 and 3650")
            return None
        if op in _COMPARISONS and kind not in ("number", "date"):
            self.error(path, f"{op} applies to number and date fields only")
            return None
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value:
                self.error(path, "must be a non-empty list")
                return None
            items = [self.scalar(v, kind, f"{path}[{i}]") for i, v in enumerate(value)]
            return None if any(i is None for i in items) else tuple(items)
        return self.scalar(value, kind, path)

    def scalar(self, value: Any, kind: str, path: str) -> Any:
        if kind == "number" and isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "date" and (parsed := _as_date(value)) is not None:
            return parsed
        expected = {
            "number": "a number",
            "bool": "true or false",
            "str": "a string",
            "date": "a date (YYYY-MM-DD)",
        }
        self.error(path, f"must be {expected[kind]}")
        return None


@dataclass(frozen=True)
class _Rule:
    id: str
    description: str
    condition: _Condition
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
        compiler = _Compiler()
        if not isinstance(data, Mapping):
            raise InvalidRuleSet([FieldError("", "a rule set must be an object")])
        unknown = sorted(set(data) - {"version", "thresholds", "rules"})
        if unknown:
            compiler.error("", f"unknown keys {unknown}")
        version = data.get("version")
        if not isinstance(version, str) or not version.strip():
            compiler.error("version", "is required (a non-empty string)")
        thresholds = cls._thresholds(data.get("thresholds"), compiler)
        rules = cls._rules(data.get("rules"), compiler)
        if compiler.errors:
            raise InvalidRuleSet(compiler.errors)
        assert isinstance(version, str) and thresholds is not None
        return cls(version, thresholds, rules, source=data)

    @staticmethod
    def _thresholds(value: Any, compiler: _Compiler) -> dict[str, int] | None:
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
    def _rules(value: Any, compiler: _Compiler) -> tuple[_Rule, ...]:
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
    context = _Context(application, today)
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
