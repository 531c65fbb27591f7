"""The case-handling protocol loaded from protocol.yaml, and the one engine that decides actions.

The file's schema is protocol_file.py, the parameter checks protocol_params.py; this module
answers every question about the protocol: who may act, what an action does, labels, clocks.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, get_args

import yaml
from pydantic import ValidationError

from services.review.domain.errors import (
    ActionForbidden,
    ActionNotAllowedForTier,
    ActionNotAllowedInState,
    InvalidActionParameters,
    InvalidProtocol,
    UnknownAction,
    UnknownState,
)
from services.review.domain.protocol_file import (
    DEFAULT_LANGUAGE,
    PREVIOUS,
    SAME,
    Action,
    ActionSpec,
    Actor,
    CalendarSide,
    Clock,
    ClockStart,
    DeadlineSpec,
    LabelKind,
    LicenceTypeSpec,
    ParamSpec,
    PermissionSpec,
    ProposalVerb,
    ProposalVerbSpec,
    ProtocolFile,
    StateSelector,
    StateSpec,
    Verdict,
)
from services.review.domain.protocol_params import jsonable, validate_params
from shared.i18n import N_, Message

__all__ = [
    "ActionForbidden",
    "ActionNotAllowedForTier",
    "ActionNotAllowedInState",
    "Actor",
    "CalendarSide",
    "InvalidActionParameters",
    "ParamSpec",
    "Protocol",
    "Transition",
    "UnknownAction",
    "UnknownState",
    "validate_params",
]


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
        return jsonable(self.params)


class Protocol:
    """The protocol as loaded; `decide` is the only place that says whether an action may happen."""

    def __init__(self, spec: ProtocolFile) -> None:
        self.spec = spec
        self.version = spec.version
        self.languages = spec.languages
        self.states: Mapping[str, StateSpec] = spec.states
        self.deadlines: Mapping[str, DeadlineSpec] = spec.deadlines
        self.licence_types: Mapping[str, LicenceTypeSpec] = spec.licence_types
        self.tiers = spec.tiers
        self.permissions: Mapping[str, PermissionSpec] = spec.permissions
        self.proposals: Mapping[str, ProposalVerbSpec] = {
            str(verb): verb_spec for verb, verb_spec in spec.proposals.items()
        }
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

    def verdict_states(self, verdict: Verdict) -> tuple[str, ...]:
        """The terminal states whose verdict on the licence is `verdict`."""
        return tuple(name for name, spec in self.states.items() if spec.verdict == verdict)

    def calendar_side(self, state: str) -> CalendarSide | None:
        """Whose working days count while the case is in `state` (None: no clock)."""
        return self.state(state).calendar

    def label(
        self, kind: LabelKind, code: str, lang: str = DEFAULT_LANGUAGE, of: str | None = None
    ) -> str:
        """The name of a code in `lang`, else in the default language.

        States and actions must exist (a typo fails); the other codes (a reason code `of` an
        action, licence types, elements, forms, value chains) come from applications and
        decisions already stored, so one without a label is shown as its code.
        """
        if kind == "state":
            labels: Mapping[str, str] | None = self.state(code).label
        elif kind == "action":
            labels = self._action_spec(code).label
        elif kind == "proposal":
            labels = self.proposals[code].label
        else:
            labels = self.spec.labels.of(kind, of).get(code)
        if labels is None:
            return code
        return labels.get(lang) or labels[DEFAULT_LANGUAGE]

    def names(self, kind: LabelKind, code: str, of: str | None = None) -> dict[str, str] | None:
        """A code's name in each of the protocol's languages, as events carry it to the
        services that show the code but do not read this protocol (shared/events.py `Names`);
        None for a code with no label, which they word themselves."""
        if self.spec.labels.of(kind, of).get(code) is None:
            return None
        return {lang: self.label(kind, code, lang, of=of) for lang in self.languages}

    def labels_in(self, lang: str) -> dict[str, Any]:
        """Every label of the protocol in one language, by kind of code (GET /v1/protocol)."""
        named = self.spec.labels
        return {
            "states": {s: self.label("state", s, lang) for s in self.states},
            "actions": {a: self.label("action", a, lang) for a in self.actions},
            "reason_codes": {
                action: {code: self.label("reason", code, lang, of=action) for code in codes}
                for action, codes in self.spec.reason_codes.items()
            },
            "licence_types": {t: self.label("licence_type", t, lang) for t in self.licence_types},
            "elements": {c: self.label("element", c, lang) for c in named.elements},
            "forms": {c: self.label("form", c, lang) for c in named.forms},
            "value_chains": {c: self.label("value_chain", c, lang) for c in named.value_chains},
        }

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
        stage_started_on: date | None = None,
        official_side: Callable[[str], str | None] | None = None,
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
            once = N_("%(action)s was taken on this case already; it is taken once")
            raise ActionNotAllowedInState(action, state, Message(once, action=action))
        missing = [before for before in spec.after if before not in taken]
        if missing:
            after = N_("%(action)s comes after %(before)s, not yet taken")
            raise ActionNotAllowedInState(
                action, state, Message(after, action=action, before=", ".join(missing))
            )
        to_state = self._target(spec, state, previous_state)
        validated, extra = validate_params(
            spec,
            params or {},
            today,
            submitted_on=submitted_on,
            state=state,
            stage_started_on=stage_started_on,
            official_side=official_side,
        )
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
            and all(before in taken for before in spec.after)
        ]

    # four eyes

    def needs_countersignature(self, action: str) -> bool:
        """Whether the action is only a proposal until a second official countersigns it."""
        return self._action(action).countersign is not None

    def countersigner_refusal(
        self, action: str, proposer: Actor, proposer_id: str, actor: Actor, actor_id: str
    ) -> str | None:
        """Why `actor` may not countersign (or reject) a proposal of `action`; None: they may."""
        countersign = self._action(action).countersign
        if countersign is None:
            return Message(N_("%(action)s needs no countersignature"), action=action)
        rule = countersign.by
        if actor_id == proposer_id:
            return N_("A proposal is countersigned by a second official, not by its proposer.")
        if rule.same_side and actor.side != proposer.side:
            return Message(
                N_("Only an official of the %(side)s side countersigns this proposal."),
                side=proposer.side,
            )
        if actor.role != rule.role:
            return Message(
                N_("Only a %(role)s countersigns a proposal to %(action)s."),
                role=rule.role,
                action=action,
            )
        return None

    def withdrawal_refusal(
        self, action: str, proposer: Actor, proposer_id: str, actor: Actor, actor_id: str
    ) -> str | None:
        """Why `actor` may not withdraw a proposal of `action`: its proposer may, and whoever
        may countersign it; None: they may."""
        if actor_id == proposer_id:
            return None
        if self.countersigner_refusal(action, proposer, proposer_id, actor, actor_id) is None:
            return None
        return N_("Only the proposer or an official who may countersign withdraws a proposal.")

    def as_document(self, lang: str | None = None) -> dict[str, Any]:
        """The protocol as plain data for GET /v1/protocol, selectors resolved to state lists.

        Codes only, with the states' and actions' labels in the default language, as it has
        always been; with `lang`, those labels also in that language, and `labels`: every
        code's name in it.
        """
        spec = self.spec.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude={"labels"}
        )
        wanted = {DEFAULT_LANGUAGE} | ({lang} if lang else set())
        for kind in ("states", "actions"):
            for entry in spec[kind].values():
                entry["label"] = {k: v for k, v in entry["label"].items() if k in wanted}
        if lang:
            spec["labels"] = {"language": lang, **self.labels_in(lang)}
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
            after=action.after,
            countersign=action.countersign,
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
            problems += [
                f"action {name}: after {before!r}, which is no once-only action"
                for before in action.after
                if before not in self.actions or not self.actions[before].once
            ]
            if action.countersign and not all(r.side in ("EU", "CN") for r in action.by):
                problems.append(f"action {name}: only officials' actions are countersigned")
            problems += [
                f"action {name}: parameter {param} required in unknown state {s!r}"
                for param, p in action.params.items()
                for s in p.required_in or ()
                if s not in states
            ]
        verbs = set(get_args(ProposalVerb))
        if any(a.countersign for a in self.actions.values()) and set(self.proposals) != verbs:
            problems.append(f"proposals: countersigned actions need {', '.join(sorted(verbs))}")
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
            f"state {name}: only a terminal state has a verdict"
            for name, s in states.items()
            if s.verdict is not None and not s.terminal
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
        problems += self._unknown_labelled_codes()
        if problems:
            raise InvalidProtocol("; ".join(problems))

    def _unknown_labelled_codes(self) -> list[str]:
        """Labels of reason codes or licence types the protocol does not have (a typo)."""
        named = self.spec.labels
        problems = [
            f"labels: reason codes of unknown action {a!r}"
            for a in named.reason_codes
            if a not in self.spec.reason_codes
        ]
        problems += [
            f"labels: unknown reason code {a}.{code}"
            for a, codes in named.reason_codes.items()
            for code in codes
            if code not in self.spec.reason_codes.get(a, {})
        ]
        return problems + [
            f"labels: unknown licence type {t!r}"
            for t in named.licence_types
            if t not in self.spec.licence_types
        ]


@cache
def _packaged_protocol() -> Protocol:
    text = resources.files(__package__).joinpath("protocol.yaml").read_text(encoding="utf-8")
    return Protocol.from_yaml(text)
