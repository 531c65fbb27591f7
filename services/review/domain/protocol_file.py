"""The schema of protocol.yaml: who acts, states, actions, permissions, deadlines, as models.

Frozen and strict pydantic models, so a typo in the file fails on load; the engine
(protocol.py) resolves and answers questions about them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

ActorSide = Literal["EU", "CN", "system", "applicant"]
CalendarSide = Literal["EU", "CN", "joint"]
Role = Literal["officer", "supervisor"]
Clock = Literal["running", "paused", "none"]
ClockStart = Literal["stage_start", "acknowledgement"]
Verdict = Literal["licence_granted", "licence_refused"]
LabelKind = Literal[
    "state", "action", "proposal", "reason", "licence_type", "element", "form", "value_chain"
]
ProposalVerb = Literal["countersign", "reject", "withdraw"]
DEFAULT_LANGUAGE = "en"
SAME = "same"
PREVIOUS = "previous"
_OFFICIAL_SIDES = ("EU", "CN")


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
    # Not before the day the case entered its present stage (a joint meeting is held after
    # the escalation that called it).
    not_before_stage_start: bool = False
    # Required while the case is in one of these states (the joint meeting's record, on
    # every action that takes a case out of joint review).
    required_in: tuple[str, ...] | None = None
    # A list of official ids: each must name an official, and both sides must be among them
    # (the service looks them up; the engine checks what it is told).
    officials_of_both_sides: bool = False
    min_items: int | None = None
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
    # What a terminal state says of the licence, for the approval rate (granted / (granted +
    # refused)); the other terminal states (not admitted, withdrawn, lapsed) are no verdict.
    verdict: Verdict | None = None


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


class CountersignerRule(_Model):
    """Who countersigns: an official of the proposer's own side with this role, never the
    proposer (four eyes)."""

    same_side: Literal[True] = True
    role: Role = "supervisor"


class CountersignSpec(_Model):
    by: CountersignerRule = Field(default_factory=CountersignerRule)


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
    # Only after these once-only actions were taken (correct_acceptance_date: acknowledge).
    after: tuple[str, ...] = ()
    # Four eyes: the action is a proposal until a second official countersigns it.
    countersign: CountersignSpec | None = None
    params: dict[str, ParamSpec] = Field(default_factory=dict)


class TierLimit(_Model):
    normal: int = Field(ge=0)
    P1: int = Field(ge=0)


Limit = int | TierLimit


class ProposalVerbSpec(_Model):
    """What may be done with a pending proposal: countersign, reject or withdraw it."""

    description: str
    label: Label


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


class CodeLabels(_Model):
    """Names of the other codes people read: a decision's reasons (per action), licence types,
    and an application's elements, forms and value chains (its end-use categories)."""

    reason_codes: dict[str, dict[str, Label]] = Field(default_factory=dict)
    licence_types: dict[str, Label] = Field(default_factory=dict)
    elements: dict[str, Label] = Field(default_factory=dict)
    forms: dict[str, Label] = Field(default_factory=dict)
    value_chains: dict[str, Label] = Field(default_factory=dict)

    def of(self, kind: LabelKind, group: str | None = None) -> Mapping[str, Label]:
        """The labels of one kind of code (reason codes: of the action `group`)."""
        if kind == "reason":
            return self.reason_codes.get(group or "", {})
        return dict(
            licence_type=self.licence_types,
            element=self.elements,
            form=self.forms,
            value_chain=self.value_chains,
        ).get(kind, {})


def _default_language_first(languages: tuple[str, ...]) -> tuple[str, ...]:
    if not languages or languages[0] != DEFAULT_LANGUAGE:
        raise ValueError(f"the languages start with {DEFAULT_LANGUAGE!r}, the labels' fallback")
    return languages


class ProtocolFile(_Model):
    version: str
    # The languages people read the labels in (BCP 47 tags), and the console is offered in.
    languages: Annotated[tuple[str, ...], AfterValidator(_default_language_first)] = (
        DEFAULT_LANGUAGE,
    )
    sides: tuple[str, ...]
    roles: tuple[str, ...]
    supervisors_act_as_officers: bool
    tiers: tuple[str, ...]
    states: dict[str, StateSpec]
    reason_codes: dict[str, dict[str, str]]
    actions: dict[str, ActionSpec]
    proposals: dict[ProposalVerb, ProposalVerbSpec]
    permissions: dict[str, PermissionSpec]
    deadlines: dict[str, DeadlineSpec]
    decision_path: tuple[str, ...]
    licence_types: dict[str, LicenceTypeSpec]
    labels: CodeLabels = Field(default_factory=CodeLabels)


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
    after: tuple[str, ...] = ()
    countersign: CountersignSpec | None = None

    def permits(self, actor: Actor) -> bool:
        return any(rule.permits(actor, self.supervisors_act_as_officers) for rule in self.by)
