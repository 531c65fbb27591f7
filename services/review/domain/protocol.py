"""The case-handling protocol loaded from protocol.yaml, and the one engine that decides actions."""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from services.review.domain.errors import (
    ActionForbidden,
    ActionNotAllowedForTier,
    ActionNotAllowedInState,
    FieldError,
    InvalidActionParameters,
    InvalidProtocol,
    UnknownAction,
    UnknownState,
)

__all__ = [
    "ActionForbidden",
    "ActionNotAllowedForTier",
    "ActionNotAllowedInState",
    "Actor",
    "InvalidActionParameters",
    "Protocol",
    "Transition",
    "UnknownAction",
    "UnknownState",
]

ActorSide = Literal["EU", "CN", "system", "applicant"]
CalendarSide = Literal["EU", "CN", "joint"]
Role = Literal["officer", "supervisor"]
Clock = Literal["running", "paused", "none"]
ClockStart = Literal["stage_start", "acknowledgement"]
LabelKind = Literal["state", "action"]
DEFAULT_LANGUAGE = "en"
SAME = "same"
PREVIOUS = "previous"
_OFFICIAL_SIDES = ("EU", "CN")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Actor:
    """Who acts: an official (side EU/CN with a role), the applicant, or the system."""

    side: ActorSide
    role: Role | None = None

    def __post_init__(self) -> None:
        if self.side in _OFFICIAL_SIDES and self.role is None:
            raise ValueError(f"an {self.side} official needs a role (officer or supervisor)")
        if self.side not in _OFFICIAL_SIDES and self.role is not None:
            raise ValueError(f"the {self.side} actor has no role")

    def __str__(self) -> str:
        return f"{self.side} {self.role}" if self.role else f"the {self.side}"


@dataclass(frozen=True)
class Transition:
    """What an allowed action does: the state change and its validated, normalised parameters.

    `params` holds only the parameters the protocol declares (dates as `date`); `extra` keeps
    any other parameters the caller sent, untouched, since the API allows more fields.
    """

    action: str
    actor: Actor
    from_state: str
    to_state: str
    params: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def changes_state(self) -> bool:
        return self.from_state != self.to_state

    def payload(self) -> dict[str, Any]:
        """The validated parameters as JSON-ready data (dates in ISO format), e.g. for audit."""
        return _jsonable(self.params)


# --- the file's schema --------------------------------------------------------------------


class _Model(BaseModel):
    # Frozen and strict about unknown keys, so a typo in protocol.yaml fails on load.
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class ParamSpec(_Model):
    type: Literal["str", "int", "number", "bool", "date", "enum", "object", "list"]
    required: bool = False
    required_when: dict[str, Any] | None = None
    min_length: int | None = None
    max_length: int | None = None
    min: float | None = None
    max: float | None = None
    values: tuple[str, ...] | None = None
    values_from: str | None = None
    not_after_today: bool = False
    # Bounds of a date around the present, in days (a licence's validity starts within a
    # year of its approval: a date centuries away also overflows the validity arithmetic).
    max_days_before_today: int | None = Field(None, ge=0)
    max_days_after_today: int | None = Field(None, ge=0)
    # Not before the day the application was submitted (MOFCOM cannot have accepted a file
    # the channel has not yet seen registered: a date in year 1 moved every deadline there).
    not_before_submission: bool = False
    fields: dict[str, ParamSpec] | None = None
    items: ParamSpec | None = None
    max_items: int | None = None

    @model_validator(mode="after")
    def _shape_matches_type(self) -> ParamSpec:
        if self.type == "enum" and not (self.values or self.values_from):
            raise ValueError("an enum needs values or values_from")
        if self.type == "object" and not self.fields:
            raise ValueError("an object needs fields")
        if self.type == "list" and self.items is None:
            raise ValueError("a list needs items")
        return self


def _has_default_language(label: dict[str, str]) -> dict[str, str]:
    # Every other language falls back to the default one, so it must be there.
    if not label.get(DEFAULT_LANGUAGE, "").strip():
        raise ValueError(f"a label needs its {DEFAULT_LANGUAGE!r} wording")
    return label


# A name as people read it, per language (BCP 47 tags: en, zh-Hans).
Label = Annotated[dict[str, str], AfterValidator(_has_default_language)]


class StateSpec(_Model):
    description: str
    label: Label
    holder: Literal["none", "EU", "CN", "applicant", "joint"] = "none"
    calendar: CalendarSide | None = None
    clock: Clock = "none"
    terminal: bool = False


class ActorRule(_Model):
    side: ActorSide
    role: Role | None = None

    @model_validator(mode="after")
    def _role_only_for_officials(self) -> ActorRule:
        Actor(self.side, self.role)  # same invariant as a real actor
        return self

    def permits(self, actor: Actor, supervisors_act_as_officers: bool) -> bool:
        return self.admits(actor.side, actor.role, supervisors_act_as_officers)

    def admits(self, side: str | None, role: str | None, supervisors_act_as_officers: bool) -> bool:
        if side is None or side != self.side:
            return False
        if self.role is None or self.role == role:
            return True
        return supervisors_act_as_officers and role == "supervisor"


class StateSelector(_Model):
    terminal: bool | None = None
    holder: tuple[str, ...] | None = None


class TierCondition(_Model):
    tier: tuple[str, ...]


class ActionSpec(_Model):
    description: str
    label: Label
    by: tuple[ActorRule, ...]
    from_: tuple[str, ...] | StateSelector = Field(alias="from")
    to: str
    when: TierCondition | None = None
    # Taken at most once per case: it records a fact that a second time would rewrite
    # (acknowledge: a second acceptance date moved the statutory due date).
    once: bool = False
    params: dict[str, ParamSpec] = Field(default_factory=dict)


class TierLimit(_Model):
    normal: int = Field(ge=0)
    P1: int = Field(ge=0)


Limit = int | TierLimit


class PermissionSpec(_Model):
    description: str
    by: tuple[ActorRule, ...]


class DeadlineSpec(_Model):
    starts_on: ClockStart = "stage_start"
    target: Limit
    statutory: Limit | None = None
    reminder: Limit | None = None
    lapse: Limit | None = None
    on_breach: str | None = None
    breach_limit: Literal["target", "statutory", "lapse"] = "target"

    def limit(self, name: str, tier: str | None) -> int:
        """Working days of the named limit for a tier; P2, P3 and no tier use `normal`."""
        value = getattr(self, name, None)
        if value is None or name not in {"target", "statutory", "reminder", "lapse"}:
            raise KeyError(f"no {name!r} limit for this stage")
        if isinstance(value, TierLimit):
            return value.P1 if tier == "P1" else value.normal
        return int(value)


class LicenceTypeSpec(_Model):
    description: str
    validity_months: int = Field(gt=0)
    max_validity_months: int = Field(gt=0)
    quantity_basis: Literal["line", "element"]


class ProtocolFile(_Model):
    version: str
    sides: tuple[str, ...]
    roles: tuple[str, ...]
    supervisors_act_as_officers: bool
    tiers: tuple[str, ...]
    states: dict[str, StateSpec]
    reason_codes: dict[str, dict[str, str]]
    actions: dict[str, ActionSpec]
    permissions: dict[str, PermissionSpec]
    deadlines: dict[str, DeadlineSpec]
    decision_path: tuple[str, ...]
    licence_types: dict[str, LicenceTypeSpec]


# --- the engine ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    """One row of the actions table with its from-states resolved to names."""

    name: str
    description: str
    by: tuple[ActorRule, ...]
    from_states: tuple[str, ...]
    to: str
    tiers: tuple[str, ...] | None
    params: Mapping[str, ParamSpec]

    supervisors_act_as_officers: bool
    once: bool = False

    def permits(self, actor: Actor) -> bool:
        return any(rule.permits(actor, self.supervisors_act_as_officers) for rule in self.by)


class Protocol:
    """The protocol as loaded; `decide` is the only place that says whether an action may happen."""

    def __init__(self, spec: ProtocolFile) -> None:
        self.spec = spec
        self.version = spec.version
        self.states: Mapping[str, StateSpec] = spec.states
        self.deadlines: Mapping[str, DeadlineSpec] = spec.deadlines
        self.licence_types: Mapping[str, LicenceTypeSpec] = spec.licence_types
        self.tiers = spec.tiers
        self.permissions: Mapping[str, PermissionSpec] = spec.permissions
        self.decision_path = spec.decision_path
        self.actions: Mapping[str, Action] = {
            name: self._resolve_action(name, action) for name, action in spec.actions.items()
        }
        self._check_coherence()

    # loading

    @classmethod
    def load(cls) -> Protocol:
        """The packaged protocol.yaml, parsed once per process."""
        return _packaged_protocol()

    @classmethod
    def from_yaml(cls, text: str) -> Protocol:
        return cls.from_dict(yaml.safe_load(text))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Protocol:
        try:
            spec = ProtocolFile.model_validate(data)
        except ValidationError as error:
            raise InvalidProtocol(str(error)) from error
        return cls(spec)

    # questions about states

    def state(self, name: str) -> StateSpec:
        try:
            return self.states[name]
        except KeyError:
            raise UnknownState(name) from None

    def is_terminal(self, state: str) -> bool:
        return self.state(state).terminal

    def calendar_side(self, state: str) -> CalendarSide | None:
        """Whose working days count while the case is in `state` (None: no clock)."""
        return self.state(state).calendar

    def label(self, kind: LabelKind, code: str, lang: str = DEFAULT_LANGUAGE) -> str:
        """The name of a state or an action in `lang`, else in the default language."""
        labels = self.state(code).label if kind == "state" else self._action_spec(code).label
        return labels.get(lang) or labels[DEFAULT_LANGUAGE]

    def clock(self, state: str) -> Clock:
        """Whether the case's clock runs, is paused (the applicant holds it) or there is none."""
        return self.state(state).clock

    def clock_starts_on(self, state: str) -> ClockStart | None:
        """Which date the stage's deadline counts from; None: the stage has no deadline."""
        self.state(state)
        deadline = self.deadlines.get(state)
        return deadline.starts_on if deadline else None

    def on_breach(self, state: str) -> str | None:
        """What the system does when the stage's breach limit passes (None: it only records it)."""
        self.state(state)
        deadline = self.deadlines.get(state)
        return deadline.on_breach if deadline else None

    # who may act beyond the case actions

    def permits(self, permission: str, side: str | None, role: str | None) -> bool:
        """Whether an official of `side` with `role` holds `permission`.

        An unknown permission name raises KeyError: a typo must fail loudly, never deny (or
        let through) silently.
        """
        try:
            spec = self.permissions[permission]
        except KeyError:
            raise KeyError(f"the protocol names no permission {permission!r}") from None
        return any(
            rule.admits(side, role, self.spec.supervisors_act_as_officers) for rule in spec.by
        )

    def initial_state(self) -> str:
        """The state a case is in before the system opens it (the from-state of `open`)."""
        (state,) = self._action("open").from_states
        return state

    def target_of(self, action: str) -> str:
        """The state an action leads to (`same` and `previous` as the file says them)."""
        return self._action(action).to

    def return_states(self) -> tuple[str, ...]:
        """States a case may come from into a paused state (the applicant holds it), and so go
        back to on answer."""
        return tuple(
            state
            for action in self.actions.values()
            if action.to in self.states and self.clock(action.to) == "paused"
            for state in action.from_states
        )

    # the decision

    def decide(
        self,
        action: str,
        actor: Actor,
        state: str,
        *,
        tier: str | None = None,
        params: Mapping[str, Any] | None = None,
        previous_state: str | None = None,
        today: date | None = None,
        submitted_on: date | None = None,
        taken: Collection[str] = (),
    ) -> Transition:
        """Check `actor` may take `action` on a case in `state`; return what it does.

        Checks in the order the API reports them: unknown action, then side and role (403),
        then state and tier, or a `once` action already `taken` on the case (409), then
        parameters (422). `previous_state` is the state a case in awaiting_applicant came
        from (needed by `answer`); `today` and `submitted_on` (the application's submission
        day) let date parameters be checked against the present and the case's start.
        Raises and changes nothing when the action is refused.
        """
        spec = self._action(action)
        self.state(state)
        if not spec.permits(actor):
            raise ActionForbidden(action, str(actor))
        if state not in spec.from_states:
            raise ActionNotAllowedInState(action, state)
        if spec.tiers is not None and tier not in spec.tiers:
            raise ActionNotAllowedForTier(action, state, tier, spec.tiers)
        if spec.once and action in taken:
            raise ActionNotAllowedInState(
                action, state, f"{action} was taken on this case already; it is taken once"
            )
        to_state = self._target(spec, state, previous_state)
        validated, extra = validate_params(spec, params or {}, today, submitted_on=submitted_on)
        return Transition(action, actor, state, to_state, validated, extra)

    def allowed_actions(
        self, actor: Actor, state: str, tier: str | None = None, taken: Collection[str] = ()
    ) -> list[str]:
        """The actions `actor` may take now, in protocol order (parameters aside); `taken`
        as for decide."""
        self.state(state)
        return [
            name
            for name, spec in self.actions.items()
            if spec.permits(actor)
            and state in spec.from_states
            and (spec.tiers is None or tier in spec.tiers)
            and not (spec.once and name in taken)
        ]

    def as_document(self) -> dict[str, Any]:
        """The protocol as plain data for GET /v1/protocol, selectors resolved to state lists."""
        spec = self.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
        for name, action in self.actions.items():
            entry = spec["actions"][name]
            entry["from"] = list(action.from_states)
            entry["params"] = {
                param: p.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                | {"type": p.type}
                for param, p in action.params.items()
            }
        return spec

    # internals

    def _action_spec(self, name: str) -> ActionSpec:
        try:
            return self.spec.actions[name]
        except KeyError:
            raise UnknownAction(name) from None

    def _action(self, name: str) -> Action:
        try:
            return self.actions[name]
        except KeyError:
            raise UnknownAction(name) from None

    def _target(self, spec: Action, state: str, previous_state: str | None) -> str:
        if spec.to == SAME:
            return state
        if spec.to != PREVIOUS:
            return spec.to
        if previous_state is None or previous_state not in self.return_states():
            # A caller bug or corrupted case data, not user input: the case must know it.
            raise ValueError(
                f"{spec.name} returns the case to the state it came from; "
                f"previous_state must be one of {', '.join(self.return_states())}, "
                f"not {previous_state!r}"
            )
        return previous_state

    def _resolve_action(self, name: str, action: ActionSpec) -> Action:
        selector = action.from_
        if isinstance(selector, StateSelector):
            from_states = tuple(
                state
                for state, spec in self.spec.states.items()
                if (selector.terminal is None or spec.terminal == selector.terminal)
                and (selector.holder is None or spec.holder in selector.holder)
            )
        else:
            from_states = selector
        params = {key: self._resolve_param(p) for key, p in action.params.items()}
        return Action(
            name=name,
            description=action.description,
            by=action.by,
            from_states=from_states,
            to=action.to,
            tiers=action.when.tier if action.when else None,
            params=params,
            supervisors_act_as_officers=self.spec.supervisors_act_as_officers,
            once=action.once,
        )

    def _resolve_param(self, spec: ParamSpec) -> ParamSpec:
        update: dict[str, Any] = {}
        if spec.values_from is not None:
            update["values"] = self._values_from(spec.values_from)
        if spec.fields is not None:
            update["fields"] = {k: self._resolve_param(v) for k, v in spec.fields.items()}
        if spec.items is not None:
            update["items"] = self._resolve_param(spec.items)
        return spec.model_copy(update=update) if update else spec

    def _values_from(self, ref: str) -> tuple[str, ...]:
        head, _, tail = ref.partition(".")
        if head == "tiers" and not tail:
            return self.spec.tiers
        if head == "licence_types" and not tail:
            return tuple(self.spec.licence_types)
        if head == "reason_codes" and tail in self.spec.reason_codes:
            return tuple(self.spec.reason_codes[tail])
        raise InvalidProtocol(f"values_from {ref!r} names no list in the protocol")

    def _check_coherence(self) -> None:
        states = self.spec.states
        problems: list[str] = []
        for name, action in self.actions.items():
            problems += [
                f"action {name}: unknown from-state {s!r}"
                for s in action.from_states
                if s not in states
            ]
            if action.to not in states and action.to not in (SAME, PREVIOUS):
                problems.append(f"action {name}: unknown to-state {action.to!r}")
            if action.tiers and not set(action.tiers) <= set(self.spec.tiers):
                problems.append(f"action {name}: unknown tier in {action.tiers}")
            problems += [
                f"action {name}: terminal from-state {s!r}"
                for s in action.from_states
                if s in states and states[s].terminal
            ]
        for stage, deadline in self.spec.deadlines.items():
            if stage not in states:
                problems.append(f"deadline for unknown state {stage!r}")
            if deadline.on_breach and deadline.on_breach not in self.actions:
                problems.append(
                    f"deadline {stage}: unknown on_breach action {deadline.on_breach!r}"
                )
        problems += [
            f"decision_path: {s!r} has no deadline"
            for s in self.decision_path
            if s not in self.spec.deadlines
        ]
        problems += [
            f"state {name}: a non-terminal state held by someone needs a calendar"
            for name, s in states.items()
            if not s.terminal and s.holder != "none" and s.calendar is None
        ]
        # A permission that is also a case action (issue_priority_list gates the route, the
        # action each case on the list) must name the same people, or the two would disagree.
        problems += [
            f"permission {name}: its `by` differs from the action's"
            for name, permission in self.spec.permissions.items()
            if name in self.actions and permission.by != self.actions[name].by
        ]
        if problems:
            raise InvalidProtocol("; ".join(problems))


@cache
def _packaged_protocol() -> Protocol:
    text = resources.files(__package__).joinpath("protocol.yaml").read_text(encoding="utf-8")
    return Protocol.from_yaml(text)


# --- parameter validation -----------------------------------------------------------------

_INVALID = object()


@dataclass(frozen=True)
class _Days:
    """The days date parameters are checked against; None: not known, not checked."""

    today: date | None = None
    submitted_on: date | None = None


def validate_params(
    action: Action,
    params: Mapping[str, Any],
    today: date | None = None,
    *,
    submitted_on: date | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate declared parameters (all errors at once); return (validated, extra)."""
    if not isinstance(params, Mapping):
        raise InvalidActionParameters(action.name, [FieldError("", "parameters must be an object")])
    errors: list[FieldError] = []
    validated = _check_fields(action.params, params, "", _Days(today, submitted_on), errors)
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
        parsed = _parse_date(value)
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
    assert spec.items is not None
    before = len(errors)
    items = [
        _check_value(spec.items, item, f"{path}[{i}]", days, errors) for i, item in enumerate(value)
    ]
    return items if len(errors) == before else _INVALID


def _check_date(spec: ParamSpec, parsed: date, days: _Days, fail: Any) -> Any:
    today, submitted_on = days.today, days.submitted_on
    if spec.not_before_submission and submitted_on is not None and parsed < submitted_on:
        return fail(f"must not be before the application's submission ({submitted_on.isoformat()})")
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


def _parse_date(value: Any) -> date | None:
    if isinstance(value, date) and type(value) is date:
        return value
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
