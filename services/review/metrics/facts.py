"""One case reduced to what the metrics need, and what it contributes to the aggregates.

Processing times come from the audit trail (each state-changing entry's from/to states and
time), counted in working days with the calendar of the side that held the case
(domain/calendar.py). No commercial field is ever read.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import pairwise
from typing import Any, Literal

from services.review.domain.protocol import CalendarSide, Protocol
from services.review.domain.statistics import WorkingDays
from services.review.store import CaseFact

GroupBy = Literal["form", "element", "value_chain", "licence_type", "priority_list"]
GROUPINGS: tuple[str, ...] = ("form", "element", "value_chain", "licence_type", "priority_list")
# The stages a case is held in on its way to a decision, in the order of the usual route.
STAGES: tuple[str, ...] = (
    "eu_screening",
    "queued",
    "cn_review",
    "awaiting_applicant",
    "joint_review",
)
# The stages' names are the protocol's labels: one set for the console, the API and the CSV.
STAGE_LABELS: Mapping[str, str] = {s: Protocol.load().label("state", s) for s in STAGES}
OUTCOMES: tuple[str, ...] = ("approved", "refused", "not_admitted", "withdrawn", "lapsed")
# Overall processing time is reported in the Commission's (EU) working days.
TOTAL_CALENDAR: CalendarSide = "EU"
NO_GROUP = "(none)"
NOT_LISTED = "not listed"

# Who reads the figures. The EU's figures cover every case; China's only the cases sent to
# China (Casework.visible_to) and only what China may know of them: not the EU-internal
# states before sending (holder EU or none in protocol.yaml) nor the EU's own decision
# not to admit a case (`decline`, from eu_screening only).
Audience = Literal["EU", "CN"]
AUDIENCES: tuple[Audience, ...] = ("EU", "CN")
CN_HIDDEN_OUTCOMES = frozenset({"not_admitted"})

ALL = "*"  # the grouping (value "") that every case of an audience is in: `overall`
CLOSED = ""  # metric_members.state of a case that is not open
CLOSED_SINCE = date(2000, 1, 1)
CountKey = tuple[str, str, date, str, str, int]  # grouping, grain, day, value, measure, days
MemberKey = tuple[str, str, str, date]  # grouping, value, state, since


def audience_grouping(audience: Audience, grouping: str) -> str:
    """The aggregates' grouping column for an audience: China's rows are `cn:<grouping>`."""
    return grouping if audience == "EU" else f"cn:{grouping}"


@dataclass(frozen=True)
class Definition:
    """What the protocol says the figures need: terminal states, what China may not see."""

    terminal: frozenset[str]
    cn_hidden: frozenset[str]

    @classmethod
    def of(cls, protocol: Protocol) -> Definition:
        terminal = frozenset(s for s in protocol.states if protocol.is_terminal(s))
        before_sending = frozenset(
            s
            for s in protocol.states
            if s not in terminal and protocol.state(s).holder in ("EU", "none")
        )
        return cls(terminal, before_sending | CN_HIDDEN_OUTCOMES)

    def stages(self, audience: Audience) -> tuple[str, ...]:
        return tuple(s for s in STAGES if audience == "EU" or s not in self.cn_hidden)

    def outcomes(self, audience: Audience) -> tuple[str, ...]:
        return tuple(o for o in OUTCOMES if audience == "EU" or o not in self.cn_hidden)

    def open_states(self, protocol: Protocol, audience: Audience) -> list[str]:
        return [
            s
            for s in protocol.states
            if s not in self.terminal and (audience == "EU" or s not in self.cn_hidden)
        ]


@dataclass
class CaseFacts:
    """One case reduced to what the metrics need, from its whole audit trail."""

    id: str
    state: str
    opened_at: datetime
    groups: dict[str, list[str]]
    outcome: str | None = None
    decided_at: datetime | None = None
    total_days: int | None = None
    stage_days: dict[str, int] = field(default_factory=dict)
    age_days: int | None = None


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def group_values(
    application: Mapping[str, Any], list_number: int | None, sent_to_cn: bool
) -> dict[str, list[str]]:
    """The groups a case belongs to; a case with several goods lines may be in several."""
    goods = [g for g in application.get("goods") or [] if isinstance(g, Mapping)]
    end_use = application.get("end_use") or {}
    if list_number is not None:
        plist = f"list {list_number}"
    else:
        plist = "fast track" if sent_to_cn else NOT_LISTED
    return {
        "form": sorted({str(g["form"]) for g in goods if g.get("form")}) or [NO_GROUP],
        "element": sorted({str(g["element"]) for g in goods if g.get("element")}) or [NO_GROUP],
        "value_chain": [str(end_use.get("category") or NO_GROUP)],
        "licence_type": [str(application.get("licence_type") or NO_GROUP)],
        "priority_list": [plist],
    }


def sent_to_china(groups: Mapping[str, Sequence[str]]) -> bool:
    """Whether China has the case: its priority-list group is a list or the fast track
    (Casework sets the list number only when it sends a case, with `sent_to_cn_at`)."""
    return list(groups.get("priority_list") or [NOT_LISTED]) != [NOT_LISTED]


def case_facts(
    case_id: str,
    state: str,
    opened_at: datetime,
    groups: dict[str, list[str]],
    moves: Sequence[tuple[datetime, str | None, str | None]],
    protocol: Protocol,
    days: WorkingDays,
    today: date,
) -> CaseFacts:
    """Reduce one case's state-changing audit entries (time, from, to; in order) to figures."""
    facts = CaseFacts(case_id, state, aware(opened_at), groups)
    stage_days: dict[str, int] = defaultdict(int)
    for (at, _from, entered), (left_at, _f, _t) in pairwise(moves):
        side = protocol.calendar_side(entered) if entered else None
        if entered in STAGES and side is not None:
            stage_days[entered] += days.between(side, aware(at).date(), aware(left_at).date())
    facts.stage_days = dict(stage_days)
    first = aware(moves[0][0]) if moves else facts.opened_at
    last_at, _, last_state = moves[-1] if moves else (first, None, state)
    if last_state is not None and protocol.is_terminal(last_state):
        facts.outcome = last_state
        facts.decided_at = aware(last_at)
        facts.total_days = days.between(TOTAL_CALENDAR, first.date(), facts.decided_at.date())
    elif not protocol.is_terminal(state):
        facts.age_days = days.between(TOTAL_CALENDAR, first.date(), today)
    return facts


def fact_row(
    facts: CaseFacts,
    moves: Sequence[tuple[datetime, str | None, str | None]],
    breaches: Iterable[tuple[datetime, str, str]],
) -> CaseFact:
    """A case's facts row from its whole history: `facts` is what case_facts() made of its
    state changes `moves`; `breaches` are its rows of `breaches` (the backfill's way)."""
    opened_on = facts.opened_at.date()
    return CaseFact(
        case_id=facts.id,
        state=facts.state,
        opened_on=opened_on,
        first_on=aware(moves[0][0]).date() if moves else opened_on,
        last_state=moves[-1][2] if moves else None,
        last_on=aware(moves[-1][0]).date() if moves else None,
        outcome=facts.outcome,
        decided_on=facts.decided_at.date() if facts.decided_at else None,
        total_days=facts.total_days,
        stage_days=dict(facts.stage_days),
        groups=facts.groups,
        breaches=sorted([aware(at).date().isoformat(), st, lim] for at, st, lim in breaches),
    )


def _month(day: date) -> date:
    return day.replace(day=1)


def contributions(
    fact: CaseFact, definition: Definition
) -> tuple[Counter[CountKey], Counter[MemberKey]]:
    """What one case adds to metric_counts and metric_members, for each audience."""
    counts: Counter[CountKey] = Counter()
    members: Counter[MemberKey] = Counter()
    if fact.outcome is None and fact.state not in definition.terminal:
        state, since = fact.state, fact.first_on or fact.opened_on
    else:
        state, since = CLOSED, CLOSED_SINCE
    measures: list[tuple[date, str, int]] = [(fact.opened_on, "submitted", 0)]
    if fact.outcome is not None and fact.decided_on is not None:
        measures.append((fact.decided_on, fact.outcome, fact.total_days or 0))
        measures += [(fact.decided_on, f"stage:{s}", n) for s, n in fact.stage_days.items()]
    measures += [
        (date.fromisoformat(recorded), f"breach:{stage}:{limit}", 0)
        for recorded, stage, limit in fact.breaches
    ]
    for audience in AUDIENCES:
        if audience == "CN" and not sent_to_china(fact.groups):
            continue
        memberships = [(audience_grouping(audience, ALL), "")] + [
            (audience_grouping(audience, g), v) for g in GROUPINGS for v in fact.groups.get(g, [])
        ]
        for day, measure, days in measures:
            if audience == "CN" and _hidden_measure(measure, definition.cn_hidden):
                continue
            for grain, at in (("d", day), ("m", _month(day))):
                for grouping, value in memberships:
                    counts[(grouping, grain, at, value, measure, days)] += 1
        members.update((g, v, state, since) for g, v in memberships)
    return counts, members


def _hidden_measure(measure: str, hidden: Collection[str]) -> bool:
    """An outcome, stage or breach of a stage (`breach:<stage>:<limit>`) China may not see."""
    kind, _, rest = measure.partition(":")
    if kind == "stage":
        return rest in hidden
    if kind == "breach":
        return rest.partition(":")[0] in hidden
    return measure in OUTCOMES and measure in hidden  # `submitted` is a measure, not the state
