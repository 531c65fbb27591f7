"""Validation of an action's parameters against the types and bounds protocol.yaml declares."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.review.domain.errors import FieldError, InvalidActionParameters
from services.review.domain.protocol_file import Action, ParamSpec

__all__ = ["jsonable", "validate_params"]

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")

_INVALID = object()


@dataclass(frozen=True)
class _Days:
    """What parameters are checked against: days, the case's state, who the officials are.

    None: not known, not checked."""

    today: date | None = None
    submitted_on: date | None = None
    stage_started_on: date | None = None
    state: str | None = None
    official_side: Callable[[str], str | None] | None = None


def validate_params(
    action: Action,
    params: Mapping[str, Any],
    today: date | None = None,
    *,
    submitted_on: date | None = None,
    state: str | None = None,
    stage_started_on: date | None = None,
    official_side: Callable[[str], str | None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate declared parameters (all errors at once); return (validated, extra)."""
    if not isinstance(params, Mapping):
        raise InvalidActionParameters(action.name, [FieldError("", "parameters must be an object")])
    errors: list[FieldError] = []
    days = _Days(today, submitted_on, stage_started_on, state, official_side)
    validated = _check_fields(action.params, params, "", days, errors)
    if errors:
        raise InvalidActionParameters(action.name, errors)
    extra = {k: v for k, v in params.items() if k not in action.params}
    return validated, extra


def _check_fields(
    specs: Mapping[str, ParamSpec],
    values: Mapping[str, Any],
    prefix: str,
    days: _Days,
    errors: list[FieldError],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in specs.items():
        path = f"{prefix}{name}"
        value = values.get(name)
        if value is None:
            continue
        checked = _check_value(spec, value, path, days, errors)
        if checked is not _INVALID:
            out[name] = checked
    # Presence is checked after the values, so required_when sees normalised siblings.
    for name, spec in specs.items():
        if values.get(name) is not None:
            continue
        if spec.required:
            errors.append(FieldError(f"{prefix}{name}", "is required"))
        elif spec.required_in and days.state in spec.required_in:
            errors.append(FieldError(f"{prefix}{name}", f"is required in {days.state}"))
        elif spec.required_when and all(out.get(k) == v for k, v in spec.required_when.items()):
            condition = ", ".join(f"{k} is {v}" for k, v in spec.required_when.items())
            errors.append(FieldError(f"{prefix}{name}", f"is required when {condition}"))
    return out


def _check_value(
    spec: ParamSpec, value: Any, path: str, days: _Days, errors: list[FieldError]
) -> Any:
    def fail(message: str) -> object:
        errors.append(FieldError(path, message))
        return _INVALID

    if spec.type == "str":
        if not isinstance(value, str):
            return fail("must be a string")
        text = value.strip()
        if len(text) < (spec.min_length if spec.min_length is not None else 1):
            return fail("must not be empty")
        if spec.max_length is not None and len(text) > spec.max_length:
            return fail(f"must be at most {spec.max_length} characters")
        return text
    if spec.type in ("int", "number"):
        # bool is an int in Python but never a count or a quantity here.
        if isinstance(value, bool) or not isinstance(value, int | float):
            return fail("must be an integer" if spec.type == "int" else "must be a number")
        if spec.type == "int" and not isinstance(value, int):
            return fail("must be an integer")
        if not math.isfinite(value):
            return fail("must be a finite number")
        if spec.min is not None and value < spec.min:
            return fail(f"must be at least {_num(spec.min)}")
        if spec.max is not None and value > spec.max:
            return fail(f"must be at most {_num(spec.max)}")
        return value
    if spec.type == "bool":
        return value if isinstance(value, bool) else fail("must be true or false")
    if spec.type == "date":
        parsed = iso_date(value)
        if parsed is None:
            return fail("must be a date (YYYY-MM-DD)")
        return _check_date(spec, parsed, days, fail)
    if spec.type == "enum":
        allowed = spec.values or ()
        if not isinstance(value, str) or value not in allowed:
            return fail(f"must be one of {', '.join(allowed)}")
        return value
    if spec.type == "object":
        if not isinstance(value, Mapping):
            return fail("must be an object")
        before = len(errors)
        checked = _check_fields(spec.fields or {}, value, f"{path}.", days, errors)
        return checked if len(errors) == before else _INVALID
    # list
    if not isinstance(value, list | tuple):
        return fail("must be a list")
    if spec.max_items is not None and len(value) > spec.max_items:
        return fail(f"must have at most {spec.max_items} items")
    if spec.min_items is not None and len(value) < spec.min_items:
        return fail(f"must have at least {spec.min_items} items")
    assert spec.items is not None
    before = len(errors)
    items = [
        _check_value(spec.items, item, f"{path}[{i}]", days, errors) for i, item in enumerate(value)
    ]
    if len(errors) != before:
        return _INVALID
    if spec.officials_of_both_sides and days.official_side is not None:
        return _check_officials(items, path, days.official_side, fail)
    return items


def _check_officials(
    ids: list[Any], path: str, official_side: Callable[[str], str | None], fail: Any
) -> Any:
    sides = [official_side(str(i)) for i in ids]
    unknown = [str(i) for i, side in zip(ids, sides, strict=True) if side is None]
    if unknown:
        return fail(f"names no official: {', '.join(unknown)}")
    if not {"EU", "CN"} <= set(sides):
        return fail("must name officials of both sides")
    return list(dict.fromkeys(ids))


def _check_date(spec: ParamSpec, parsed: date, days: _Days, fail: Any) -> Any:
    today, submitted_on = days.today, days.submitted_on
    if spec.not_before_submission and submitted_on is not None and parsed < submitted_on:
        return fail(f"must not be before the application's submission ({submitted_on.isoformat()})")
    stage_start = days.stage_started_on
    if spec.not_before_stage_start and stage_start is not None and parsed < stage_start:
        return fail(f"must not be before the stage began ({stage_start.isoformat()})")
    if today is None:
        return parsed
    if spec.not_after_today and parsed > today:
        return fail(f"must not be after today ({today.isoformat()})")
    if spec.max_days_before_today is not None:
        earliest = today - timedelta(days=spec.max_days_before_today)
        if parsed < earliest:
            return fail(f"must not be before {earliest.isoformat()}")
    if spec.max_days_after_today is not None:
        latest = today + timedelta(days=spec.max_days_after_today)
        if parsed > latest:
            return fail(f"must not be after {latest.isoformat()}")
    return parsed


def iso_date(value: Any) -> date | None:
    """A date, or the text of one in ISO form (YYYY-MM-DD, ASCII digits); None otherwise.

    Parameters and priority rules read dates from JSON: one reading for both."""
    if type(value) is date:
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
