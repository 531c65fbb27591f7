"""The priority rules' condition language: what a rule may ask of an application, and the
compiler that turns a rule file's condition tree into conditions, collecting every error."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.review.domain.errors import FieldError
from services.review.domain.protocol_params import iso_date

__all__ = ["APPLICATION_FIELDS", "GOODS_FIELDS", "Compiler", "Condition", "Context", "Outcome"]

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

# Bounds on a draft, since supervisors POST them: keep evaluation cheap and readable.
_MAX_DEPTH = 8
_COMPARISONS = {"lt": "<", "lte": "≤", "gt": ">", "gte": "≥"}
_LEAF_OPS = ("eq", "ne", "in", "not_in", *_COMPARISONS, "within_days", "exists")


# --- the condition language ---------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    matched: bool
    explanation: str


@dataclass(frozen=True)
class Context:
    record: Mapping[str, Any]
    today: date


class Condition:
    def evaluate(self, ctx: Context) -> Outcome:
        raise NotImplementedError


@dataclass(frozen=True)
class _Leaf(Condition):
    path: str
    kind: str
    label: str
    op: str
    operand: Any

    def evaluate(self, ctx: Context) -> Outcome:
        value = _lookup(ctx.record, self.path, self.kind)
        if self.op == "exists":
            present = value is not None
            text = f"{self.path} {'given' if present else 'not given'}"
            return Outcome(present == self.operand, text)
        if value is None:
            return Outcome(False, f"{self.path} not given")
        shown = self.label.replace("{value!r}", repr(_show(value))).replace("{value}", _show(value))
        if self.op == "within_days":
            days = (value - ctx.today).days
            when = f"in {days} days" if days >= 0 else f"{-days} days ago"
            matched = days <= self.operand
            test = f"within {self.operand} days" if matched else f"not within {self.operand} days"
            return Outcome(matched, f"{shown}, {when} ({test})")
        matched = _compare(self.op, value, self.operand)
        test = _describe(self.op, self.operand)
        return Outcome(matched, f"{shown} ({test})" if matched else f"{shown} (not {test})")


@dataclass(frozen=True)
class _All(Condition):
    parts: tuple[Condition, ...]

    def evaluate(self, ctx: Context) -> Outcome:
        outcomes = [part.evaluate(ctx) for part in self.parts]
        failed = [o for o in outcomes if not o.matched]
        if failed:
            return Outcome(False, failed[0].explanation)
        return Outcome(True, "; ".join(o.explanation for o in outcomes))


@dataclass(frozen=True)
class _Any(Condition):
    parts: tuple[Condition, ...]

    def evaluate(self, ctx: Context) -> Outcome:
        outcomes = [part.evaluate(ctx) for part in self.parts]
        matched = [o for o in outcomes if o.matched]
        if matched:
            return Outcome(True, "; ".join(o.explanation for o in matched))
        return Outcome(False, "none of: " + "; ".join(o.explanation for o in outcomes))


@dataclass(frozen=True)
class _Not(Condition):
    part: Condition

    def evaluate(self, ctx: Context) -> Outcome:
        inner = self.part.evaluate(ctx)
        # The inner explanation already says which way it went ("(not ≤ 14)").
        return Outcome(not inner.matched, inner.explanation)


@dataclass(frozen=True)
class _Goods(Condition):
    quantifier: str  # "any" or "all"
    part: Condition

    def evaluate(self, ctx: Context) -> Outcome:
        goods = ctx.record.get("goods")
        lines = [g for g in goods if isinstance(g, Mapping)] if isinstance(goods, list) else []
        results = [
            (number, self.part.evaluate(Context(line, ctx.today)))
            for number, line in enumerate(lines, start=1)
        ]
        hits = [f"line {n}: {o.explanation}" for n, o in results if o.matched]
        misses = [f"line {n}: {o.explanation}" for n, o in results if not o.matched]
        if self.quantifier == "any":
            if hits:
                return Outcome(True, "; ".join(hits))
            return Outcome(
                False, "no goods line matches" + (": " + "; ".join(misses) if misses else "")
            )
        if lines and not misses:
            return Outcome(True, "every goods line: " + "; ".join(hits))
        return Outcome(False, "; ".join(misses) or "no goods lines")


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
        return iso_date(value)
    if kind == "bool":
        return value if isinstance(value, bool) else None
    return value if isinstance(value, str) else None


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


class Compiler:
    """Turns the YAML/JSON condition tree into condition objects, collecting every error."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def condition(
        self, node: Any, path: str, fields: Mapping[str, tuple[str, str]], depth: int = 0
    ) -> Condition | None:
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
        if kind == "date" and (parsed := iso_date(value)) is not None:
            return parsed
        expected = {
            "number": "a number",
            "bool": "true or false",
            "str": "a string",
            "date": "a date (YYYY-MM-DD)",
        }
        self.error(path, f"must be {expected[kind]}")
        return None
