"""What the Commission tracks: approval rates, processing times per stage, backlog, breaches.

Every figure is computed from the review service's own tables; processing times come from
the audit trail (each state-changing entry's from/to states and time), counted in working
days with the calendar of the side that held the case (domain/calendar.py). docs/metrics.md
defines each figure exactly.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

# Imported at start-up rather than by the first summary's working-day count (0.3 s).
import holidays.countries  # noqa: F401
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import and_, event, func, or_, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from services.review.domain.calendar import is_working_day, working_days_between
from services.review.domain.protocol import CalendarSide, Protocol
from services.review.store import (
    AuditRecord,
    Breach,
    Case,
    CaseFact,
    MetricCount,
    MetricMember,
)
from shared.directory import Principal
from shared.http import current_official
from shared.problems import documented_errors, invalid

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
STAGE_LABELS: Mapping[str, str] = {
    "eu_screening": "EU screening",
    "queued": "Queue (waiting for a list)",
    "cn_review": "CN review",
    "awaiting_applicant": "Waiting for the applicant",
    "joint_review": "Joint review",
}
OUTCOMES: tuple[str, ...] = ("approved", "refused", "not_admitted", "withdrawn", "lapsed")
# Backlog age bands, in EU working days since the case was opened: (label, upper bound).
AGE_BANDS: tuple[tuple[str, int | None], ...] = (
    ("0-5", 5),
    ("6-10", 10),
    ("11-20", 20),
    ("21-45", 45),
    ("over 45", None),
)
# Overall processing time is reported in the Commission's (EU) working days.
TOTAL_CALENDAR: CalendarSide = "EU"
NO_GROUP = "(none)"


# --- working days, counted fast -------------------------------------------------------------


class WorkingDays:
    """working_days_between with prefix sums: thousands of intervals over months stay cheap."""

    def __init__(self) -> None:
        self._start: dict[str, date] = {}
        self._prefix: dict[str, list[int]] = {}

    def _ensure(self, side: CalendarSide, first: date, last: date) -> None:
        start = self._start.get(side)
        prefix = self._prefix.get(side)
        if start is not None and prefix is not None:
            end = start + timedelta(days=len(prefix) - 1)
            if start <= first and last <= end:
                return
            first, last = min(first, start), max(last, end)
        # Margin so that neighbouring look-ups reuse the table.
        first, last = first - timedelta(days=31), last + timedelta(days=31)
        counts = [0]
        day = first
        while day < last:
            day += timedelta(days=1)
            counts.append(counts[-1] + (1 if is_working_day(side, day) else 0))
        self._start[side], self._prefix[side] = first, counts

    def between(self, side: CalendarSide, start: date, end: date) -> int:
        """Working days in (start, end], as calendar.working_days_between counts them."""
        if end < start:
            return -self.between(side, end, start)
        self._ensure(side, start, end)
        base, prefix = self._start[side], self._prefix[side]
        return prefix[(end - base).days] - prefix[(start - base).days]


# --- statistics -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks.

    The same definition as numpy's default and statistics.quantiles(method="inclusive");
    q=50 is the usual median (the mean of the two middle values for an even count).
    """
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def distribution(values: Sequence[float]) -> dict[str, Any]:
    return {
        "cases": len(values),
        "median": _rounded(percentile(values, 50)),
        "p90": _rounded(percentile(values, 90)),
    }


def approval_rate(outcomes: Mapping[str, int]) -> float | None:
    """approved / (approved + refused); None when no case was approved or refused."""
    decided = outcomes.get("approved", 0) + outcomes.get("refused", 0)
    return None if decided == 0 else round(outcomes.get("approved", 0) / decided, 4)


# --- what one case contributes ----------------------------------------------------------------


@dataclass
class CaseFacts:
    """One case reduced to what the metrics need; no commercial field is ever read."""

    id: str
    state: str
    opened_at: datetime
    groups: dict[str, list[str]]
    outcome: str | None = None
    decided_at: datetime | None = None
    total_days: int | None = None
    stage_days: dict[str, int] = field(default_factory=dict)
    age_days: int | None = None


def _aware(value: datetime) -> datetime:
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
        plist = "fast track" if sent_to_cn else "not listed"
    return {
        "form": sorted({str(g["form"]) for g in goods if g.get("form")}) or [NO_GROUP],
        "element": sorted({str(g["element"]) for g in goods if g.get("element")}) or [NO_GROUP],
        "value_chain": [str(end_use.get("category") or NO_GROUP)],
        "licence_type": [str(application.get("licence_type") or NO_GROUP)],
        "priority_list": [plist],
    }


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
    facts = CaseFacts(case_id, state, _aware(opened_at), groups)
    stage_days: dict[str, int] = defaultdict(int)
    for (at, _from, entered), (left_at, _f, _t) in pairwise(moves):
        side = protocol.calendar_side(entered) if entered else None
        if entered in STAGES and side is not None:
            stage_days[entered] += days.between(side, _aware(at).date(), _aware(left_at).date())
    facts.stage_days = dict(stage_days)
    first = _aware(moves[0][0]) if moves else facts.opened_at
    last_at, _, last_state = moves[-1] if moves else (first, None, state)
    if last_state is not None and protocol.is_terminal(last_state):
        facts.outcome = last_state
        facts.decided_at = _aware(last_at)
        facts.total_days = days.between(TOTAL_CALENDAR, first.date(), facts.decided_at.date())
    elif not protocol.is_terminal(state):
        facts.age_days = days.between(TOTAL_CALENDAR, first.date(), today)
    return facts


def load_facts(session: Session, protocol: Protocol, today: date) -> list[CaseFacts]:
    """Every case's facts: one query for the cases, one for their state changes."""
    days = WorkingDays()
    rows = session.execute(
        sa_select(
            col(Case.id),
            col(Case.state),
            col(Case.opened_at),
            col(Case.application),
            col(Case.list_number),
            col(Case.sent_to_cn_at),
        )
    ).all()
    moves: dict[str, list[tuple[datetime, str | None, str | None]]] = defaultdict(list)
    changes = session.exec(
        select(AuditRecord.case_id, AuditRecord.at, AuditRecord.from_state, AuditRecord.to_state)
        .where(col(AuditRecord.from_state) != col(AuditRecord.to_state))
        .order_by(col(AuditRecord.case_id), col(AuditRecord.seq))
    ).all()
    for case_id, at, from_state, to_state in changes:
        moves[case_id].append((at, from_state, to_state))
    return [
        case_facts(
            case_id,
            state,
            opened_at,
            group_values(application or {}, list_number, sent_to_cn_at is not None),
            moves.get(case_id, []),
            protocol,
            days,
            today,
        )
        for case_id, state, opened_at, application, list_number, sent_to_cn_at in rows
    ]


# --- the summary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """Dates inclusive at both ends; either may be open."""

    start: date | None = None
    end: date | None = None

    def holds(self, moment: datetime | date | None) -> bool:
        if moment is None:
            return False
        day = _aware(moment).date() if isinstance(moment, datetime) else moment
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


def _figures(
    cases: Iterable[CaseFacts], period: Period, breaches: Mapping[str, int]
) -> dict[str, Any]:
    outcomes = dict.fromkeys(OUTCOMES, 0)
    totals: list[float] = []
    per_stage: dict[str, list[float]] = {stage: [] for stage in STAGES}
    submitted = open_now = breached = 0
    for case in cases:
        submitted += period.holds(case.opened_at)
        open_now += case.age_days is not None
        breached += breaches.get(case.id, 0)
        if case.outcome is None or not period.holds(case.decided_at):
            continue
        outcomes[case.outcome] = outcomes.get(case.outcome, 0) + 1
        if case.total_days is not None:
            totals.append(case.total_days)
        for stage, spent in case.stage_days.items():
            per_stage[stage].append(spent)
    return {
        "submitted": submitted,
        "open": open_now,
        "decided": sum(outcomes.values()),
        "outcomes": outcomes,
        "approval_rate": approval_rate(outcomes),
        "processing_days": {
            "total": distribution(totals),
            "stages": {stage: distribution(values) for stage, values in per_stage.items()},
        },
        "breaches": breached,
    }


def _age_band(age: int) -> str:
    for label, upper in AGE_BANDS:
        if upper is None or age <= upper:
            return label
    return AGE_BANDS[-1][0]


def _backlog(cases: Sequence[CaseFacts], protocol: Protocol) -> dict[str, Any]:
    open_states = [s for s in protocol.states if not protocol.is_terminal(s)]
    by_state = dict.fromkeys(open_states, 0)
    by_age = {label: 0 for label, _ in AGE_BANDS}
    by_state_and_age = {s: {label: 0 for label, _ in AGE_BANDS} for s in open_states}
    for case in cases:
        if case.age_days is None:
            continue
        band = _age_band(case.age_days)
        by_state[case.state] = by_state.get(case.state, 0) + 1
        by_age[band] += 1
        by_state_and_age.setdefault(case.state, {label: 0 for label, _ in AGE_BANDS})[band] += 1
    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_age": by_age,
        "by_state_and_age": by_state_and_age,
    }


def _months(cases: Sequence[CaseFacts], period: Period) -> list[dict[str, Any]]:
    buckets: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in cases:
        if (
            case.outcome is not None
            and case.decided_at is not None
            and period.holds(case.decided_at)
        ):
            buckets[case.decided_at.strftime("%Y-%m")].append(case)
    series = []
    for month in sorted(buckets):
        outcomes = dict.fromkeys(OUTCOMES, 0)
        for case in buckets[month]:
            outcomes[case.outcome or ""] = outcomes.get(case.outcome or "", 0) + 1
        totals = [float(c.total_days) for c in buckets[month] if c.total_days is not None]
        series.append(
            {
                "month": month,
                "decided": len(buckets[month]),
                "outcomes": outcomes,
                "approval_rate": approval_rate(outcomes),
                "processing_days": distribution(totals),
            }
        )
    return series


def _bottlenecks(overall: Mapping[str, Any], groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    stages = [
        {"stage": stage, "label": STAGE_LABELS[stage], **figures}
        for stage, figures in overall["processing_days"]["stages"].items()
        if figures["cases"]
    ]
    stages.sort(key=lambda s: (-(s["median"] or 0), -(s["p90"] or 0)))
    categories = []
    for group in groups:
        total = group["processing_days"]["total"]
        if not total["cases"]:
            continue
        slowest = max(
            (
                (figures["median"] or 0, stage)
                for stage, figures in group["processing_days"]["stages"].items()
                if figures["cases"]
            ),
            default=(0, None),
        )
        categories.append(
            {
                "group": group["group"],
                "cases": total["cases"],
                "median": total["median"],
                "p90": total["p90"],
                "slowest_stage": slowest[1],
                "slowest_stage_median": slowest[0] if slowest[1] else None,
            }
        )
    categories.sort(key=lambda c: (-(c["median"] or 0), -(c["p90"] or 0)))
    return {"stages": stages, "categories": categories}


def summary_from_audit(
    session: Session,
    protocol: Protocol,
    today: date,
    group_by: str = "form",
    period: Period | None = None,
) -> dict[str, Any]:
    """The summary recomputed from every case and audit entry (the definition, kept as the
    tests' oracle; it reads the whole history, so the API answers with `summary` instead)."""
    period = period or Period()
    cases = load_facts(session, protocol, today)
    breach_rows = session.exec(
        select(Breach.case_id, Breach.state, Breach.limit_name, Breach.recorded_at)
    ).all()
    breaches_per_case: dict[str, int] = defaultdict(int)
    breaches_by_stage: dict[str, int] = defaultdict(int)
    breaches_by_limit: dict[str, int] = defaultdict(int)
    for case_id, state, limit_name, recorded_at in breach_rows:
        if period.holds(recorded_at):
            breaches_per_case[case_id] += 1
            breaches_by_stage[state] += 1
            breaches_by_limit[limit_name] += 1
    overall = _figures(cases, period, breaches_per_case)
    members: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in cases:
        for value in case.groups[group_by]:
            members[value].append(case)
    groups = [
        {"group": value, **_figures(members[value], period, breaches_per_case)}
        for value in sorted(members)
    ]
    return {
        "group_by": group_by,
        "from": period.start,
        "to": period.end,
        "as_of": today,
        "stages": dict(STAGE_LABELS),
        "overall": overall,
        "groups": groups,
        "backlog": _backlog(cases, protocol),
        "breaches": {
            "total": sum(breaches_by_stage.values()),
            "by_stage": dict(breaches_by_stage),
            "by_limit": dict(breaches_by_limit),
        },
        "by_month": _months(cases, period),
        "bottlenecks": _bottlenecks(overall, groups),
    }


# --- per-case facts and aggregates, kept in the transactions that move the cases ---------------
#
# Each case has one `case_facts` row (what case_facts() above derives from its audit trail).
# What a row contributes to the aggregates (`metric_counts`, `metric_members`) is a pure
# function of it (`contributions`); when a case moves, its row is advanced and the difference
# between its contributions before and after is added to the aggregates just before COMMIT,
# so the aggregates always equal the sum over the cases (docs/metrics.md).

ALL = "*"  # the grouping (value "") that every case is in: the `overall` figures
CLOSED = ""  # metric_members.state of a case that is not open
CLOSED_SINCE = date(2000, 1, 1)
FIRST_DAY, LAST_DAY = date(1, 1, 1), date(9999, 12, 31)
CountKey = tuple[str, str, date, str, str, int]  # grouping, grain, day, value, measure, days
MemberKey = tuple[str, str, str, date]  # grouping, value, state, since
COUNT_KEYS = ("grouping", "grain", "day", "value", "measure", "days")
MEMBER_KEYS = ("grouping", "value", "state", "since")
_PENDING = "review.metric_deltas"
_FACTS = "review.case_facts"
CHUNK = 1000


def _month(day: date) -> date:
    return day.replace(day=1)


def contributions(
    fact: CaseFact, terminal: Collection[str]
) -> tuple[Counter[CountKey], Counter[MemberKey]]:
    """What one case adds to metric_counts and metric_members."""
    memberships = [(ALL, "")] + [(g, v) for g in GROUPINGS for v in fact.groups.get(g, [])]
    counts: Counter[CountKey] = Counter()

    def add(day: date, measure: str, days: int) -> None:
        for grain, at in (("d", day), ("m", _month(day))):
            for grouping, value in memberships:
                counts[(grouping, grain, at, value, measure, days)] += 1

    add(fact.opened_on, "submitted", 0)
    if fact.outcome is not None and fact.decided_on is not None:
        add(fact.decided_on, fact.outcome, fact.total_days or 0)
        for stage, spent in fact.stage_days.items():
            add(fact.decided_on, f"stage:{stage}", spent)
    for recorded, stage, limit in fact.breaches:
        add(date.fromisoformat(recorded), f"breach:{stage}:{limit}", 0)
    if fact.outcome is None and fact.state not in terminal:
        state, since = fact.state, fact.first_on or fact.opened_on
    else:
        state, since = CLOSED, CLOSED_SINCE
    members: Counter[MemberKey] = Counter((g, v, state, since) for g, v in memberships)
    return counts, members


def _terminal(protocol: Protocol) -> frozenset[str]:
    return frozenset(s for s in protocol.states if protocol.is_terminal(s))


def fact_row(
    case_id: str,
    state: str,
    opened_at: datetime,
    groups: dict[str, list[str]],
    moves: Sequence[tuple[datetime, str | None, str | None]],
    breaches: Iterable[tuple[datetime, str, str]],
    protocol: Protocol,
    days: WorkingDays,
) -> CaseFact:
    """A case's facts row from its whole history, by case_facts() (the backfill's way)."""
    facts = case_facts(case_id, state, opened_at, groups, moves, protocol, days, date.today())
    opened_on = _aware(opened_at).date()
    return CaseFact(
        case_id=case_id,
        state=state,
        opened_on=opened_on,
        first_on=_aware(moves[0][0]).date() if moves else opened_on,
        last_state=moves[-1][2] if moves else None,
        last_on=_aware(moves[-1][0]).date() if moves else None,
        outcome=facts.outcome,
        decided_on=facts.decided_at.date() if facts.decided_at else None,
        total_days=facts.total_days,
        stage_days=dict(facts.stage_days),
        groups=groups,
        breaches=sorted([_aware(at).date().isoformat(), st, lim] for at, st, lim in breaches),
    )


def _advance(fact: CaseFact, protocol: Protocol, on: date, to_state: str) -> None:
    """One more state change, as case_facts() would count it with the whole trail."""
    if fact.last_state is not None and fact.last_on is not None:
        entered = fact.last_state
        side = protocol.calendar_side(entered)
        if entered in STAGES and side is not None:
            stage_days = dict(fact.stage_days)
            stage_days[entered] = stage_days.get(entered, 0) + working_days_between(
                side, fact.last_on, on
            )
            fact.stage_days = stage_days
    else:
        fact.first_on = on
    fact.last_state, fact.last_on = to_state, on
    if protocol.is_terminal(to_state):
        assert fact.first_on is not None
        fact.outcome, fact.decided_on = to_state, on
        fact.total_days = working_days_between(TOTAL_CALENDAR, fact.first_on, on)
    else:
        fact.outcome, fact.decided_on, fact.total_days = None, None, None


def _case_groups(case: Case) -> dict[str, list[str]]:
    return group_values(case.application or {}, case.list_number, case.sent_to_cn_at is not None)


def _rebuild(session: Session, protocol: Protocol, case: Case) -> CaseFact:
    """A case with history but no facts row yet (written behind the service's back)."""
    session.flush()
    moves = [
        (at, f, t)
        for at, f, t in session.execute(
            sa_select(col(AuditRecord.at), col(AuditRecord.from_state), col(AuditRecord.to_state))
            .where(
                col(AuditRecord.case_id) == case.id,
                col(AuditRecord.from_state) != col(AuditRecord.to_state),
            )
            .order_by(col(AuditRecord.seq))
        ).all()
    ]
    breaches = session.execute(
        sa_select(col(Breach.recorded_at), col(Breach.state), col(Breach.limit_name)).where(
            col(Breach.case_id) == case.id
        )
    ).all()
    return fact_row(
        case.id,
        case.state,
        case.opened_at,
        _case_groups(case),
        moves,
        [(at, st, lim) for at, st, lim in breaches],
        protocol,
        WorkingDays(),
    )


def _cached_fact(session: Session, case_id: str) -> CaseFact | None:
    cache: dict[str, CaseFact] = session.info.setdefault(_FACTS, {})
    fact = cache.get(case_id)
    if fact is None:
        # No flush for this read: the case's changes go out once, at commit.
        with session.no_autoflush:
            fact = session.get(CaseFact, case_id)
        if fact is not None:
            cache[case_id] = fact
    return fact


def prefetch_facts(session: Session, case_ids: Sequence[str]) -> None:
    """Read the facts of many cases in a few queries (a priority list moves hundreds)."""
    cache: dict[str, CaseFact] = session.info.setdefault(_FACTS, {})
    wanted = [i for i in case_ids if i not in cache]
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        for fact in session.exec(select(CaseFact).where(col(CaseFact.case_id).in_(chunk))):
            cache[fact.case_id] = fact


def _note_deltas(
    session: Session,
    before: tuple[Counter[CountKey], Counter[MemberKey]],
    after: tuple[Counter[CountKey], Counter[MemberKey]],
) -> None:
    counts, members = session.info.setdefault(_PENDING, (Counter(), Counter()))
    counts.update(after[0])
    counts.subtract(before[0])
    members.update(after[1])
    members.subtract(before[1])


def note_change(
    session: Session, protocol: Protocol, case: Case, entry: AuditRecord | None
) -> None:
    """Casework's hook after a case changed (`entry` is the audit entry it just wrote)."""
    terminal = _terminal(protocol)
    # A case's first audit entry is its opening: it has no facts row yet, none to look for.
    fact = _cached_fact(session, case.id) if case.audit_seq > 1 else None
    before: tuple[Counter[CountKey], Counter[MemberKey]] = (Counter(), Counter())
    if fact is None:
        if case.audit_seq > 1:
            fact = _rebuild(session, protocol, case)
            entry = None  # the rebuilt row already holds it
        else:
            fact = CaseFact(
                case_id=case.id, state=case.state, opened_on=_aware(case.opened_at).date()
            )
        session.info.setdefault(_FACTS, {})[case.id] = fact
    else:
        before = contributions(fact, terminal)
    if (
        entry is not None
        and entry.from_state is not None
        and entry.to_state is not None
        and entry.from_state != entry.to_state
    ):
        _advance(fact, protocol, _aware(entry.at).date(), entry.to_state)
    fact.state = case.state
    groups = _case_groups(case)
    if groups != fact.groups:
        fact.groups = groups
    _note_deltas(session, before, contributions(fact, terminal))
    session.add(fact)


def note_breach(session: Session, protocol: Protocol, case: Case, breach: Breach) -> None:
    """Casework's hook after it recorded a deadline breach of a case."""
    terminal = _terminal(protocol)
    fact = _cached_fact(session, case.id)
    if fact is None:
        note_change(session, protocol, case, None)
        fact = _cached_fact(session, case.id)
        assert fact is not None
    before = contributions(fact, terminal)
    recorded = [_aware(breach.recorded_at).date().isoformat(), breach.state, breach.limit_name]
    fact.breaches = sorted([*fact.breaches, recorded])
    _note_deltas(session, before, contributions(fact, terminal))
    session.add(fact)


_PG_TYPES = {"day": "date", "since": "date", "days": "integer", "cases": "integer"}


def _upsert(conn: Connection, table: Any, keys: Sequence[str], deltas: Mapping[Any, int]) -> None:
    items = [(key, n) for key, n in sorted(deltas.items()) if n]
    if not items:
        return
    if conn.dialect.name == "postgresql":
        # One statement whatever the number of rows (a decision changes about 80): the
        # columns travel as arrays; the statement text, and so its plan, never changes.
        columns = [*keys, "cases"]
        arrays = {c: [key[i] for key, _ in items] for i, c in enumerate(keys)}
        arrays["cases"] = [n for _, n in items]
        unnest = ", ".join(f"CAST(:{c} AS {_PG_TYPES.get(c, 'text')}[])" for c in columns)
        conn.execute(
            text(
                f"INSERT INTO {table.name} ({', '.join(columns)}) "
                f"SELECT * FROM unnest({unnest}) "
                f"ON CONFLICT ({', '.join(keys)}) "
                f"DO UPDATE SET cases = {table.name}.cases + excluded.cases"
            ),
            arrays,
        )
        return
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={"cases": table.c.cases + statement.excluded.cases}
    )
    conn.execute(statement, [{**dict(zip(keys, key, strict=True)), "cases": n} for key, n in items])


def apply_deltas(
    conn: Connection, counts: Mapping[CountKey, int], members: Mapping[MemberKey, int]
) -> None:
    """Add to the aggregates; rows in one order, so two transactions never wait in a cycle."""
    _upsert(conn, MetricCount.__table__, COUNT_KEYS, counts)  # type: ignore[attr-defined]
    _upsert(conn, MetricMember.__table__, MEMBER_KEYS, members)  # type: ignore[attr-defined]


@event.listens_for(OrmSession, "before_commit")
def _apply_metric_deltas(session: OrmSession) -> None:
    pending = session.info.pop(_PENDING, None)
    session.info.pop(_FACTS, None)
    if pending:
        apply_deltas(session.connection(), *pending)


@event.listens_for(OrmSession, "after_rollback")
def _forget_metric_deltas(session: OrmSession) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_FACTS, None)


# --- backfill: facts and aggregates from the cases and the audit trail ------------------------


def _chunks_of_facts(conn: Connection, protocol: Protocol) -> Iterator[list[CaseFact]]:
    days = WorkingDays()
    cases, audit, breaches = Case.__table__, AuditRecord.__table__, Breach.__table__  # type: ignore[attr-defined]
    last = ""
    while True:
        rows = conn.execute(
            sa_select(
                cases.c.id,
                cases.c.state,
                cases.c.opened_at,
                cases.c.application,
                cases.c.list_number,
                cases.c.sent_to_cn_at,
            )
            .where(cases.c.id > last)
            .order_by(cases.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        ids = [r.id for r in rows]
        last = ids[-1]
        moves: dict[str, list[tuple[datetime, str | None, str | None]]] = defaultdict(list)
        for case_id, at, from_state, to_state in conn.execute(
            sa_select(audit.c.case_id, audit.c.at, audit.c.from_state, audit.c.to_state)
            .where(audit.c.case_id.in_(ids), audit.c.from_state != audit.c.to_state)
            .order_by(audit.c.case_id, audit.c.seq)
        ):
            moves[case_id].append((at, from_state, to_state))
        breached: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
        for case_id, at, state, limit in conn.execute(
            sa_select(
                breaches.c.case_id, breaches.c.recorded_at, breaches.c.state, breaches.c.limit_name
            ).where(breaches.c.case_id.in_(ids))
        ):
            breached[case_id].append((at, state, limit))
        yield [
            fact_row(
                r.id,
                r.state,
                r.opened_at,
                group_values(r.application or {}, r.list_number, r.sent_to_cn_at is not None),
                moves.get(r.id, []),
                breached.get(r.id, []),
                protocol,
                days,
            )
            for r in rows
        ]


def backfill(conn: Connection, protocol: Protocol | None = None) -> int:
    """Rebuild case_facts, metric_counts and metric_members from the cases and their audit
    trail with the definition's own code (case_facts()), a thousand cases at a time.
    Used by the migration that created the tables; returns the number of cases."""
    protocol = protocol or Protocol.load()
    terminal = _terminal(protocol)
    facts_table = CaseFact.__table__  # type: ignore[attr-defined]
    for table in (facts_table, MetricCount.__table__, MetricMember.__table__):  # type: ignore[attr-defined]
        conn.execute(table.delete())
    counts: Counter[CountKey] = Counter()
    members: Counter[MemberKey] = Counter()
    done = 0
    for chunk in _chunks_of_facts(conn, protocol):
        conn.execute(
            facts_table.insert(),
            [{c.name: getattr(fact, c.name) for c in facts_table.columns} for fact in chunk],
        )
        for fact in chunk:
            c, m = contributions(fact, terminal)
            counts.update(c)
            members.update(m)
        done += len(chunk)
    apply_deltas(conn, counts, members)
    return done


# --- the summary, from the aggregates -----------------------------------------------------------


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def period_ranges(period: Period) -> list[tuple[str, date, date]]:
    """The period as (grain, first day, last day) ranges: whole months, then the odd days."""
    start, end = period.start, period.end
    months_from = None if start is None else (start if start.day == 1 else _next_month(start))
    months_until = None  # the first day after the last whole month
    if end is not None:
        months_until = (
            _next_month(end) if _next_month(end) - timedelta(days=1) == end else _month(end)
        )
    if months_from is not None and months_until is not None and months_from >= months_until:
        assert start is not None and end is not None
        return [("d", start, end)]
    ranges = [
        (
            "m",
            months_from or FIRST_DAY,
            months_until - timedelta(days=1) if months_until else LAST_DAY,
        )
    ]
    if start is not None and months_from is not None and start < months_from:
        ranges.append(("d", start, months_from - timedelta(days=1)))
    if end is not None and months_until is not None and months_until <= end:
        ranges.append(("d", months_until, end))
    return ranges


def hist_percentile(hist: Mapping[int, int], q: float) -> float | None:
    """percentile() of the values a histogram (value -> how many) stands for."""
    values = sorted((v, n) for v, n in hist.items() if n > 0)
    count = sum(n for _, n in values)
    if not count:
        return None
    rank = (count - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)

    def kth(k: int) -> int:
        seen = 0
        for value, n in values:
            seen += n
            if k < seen:
                return value
        raise IndexError(k)

    if low == high:
        return float(kth(low))
    low_value, high_value = kth(low), kth(high)
    return low_value + (high_value - low_value) * (rank - low)


def hist_distribution(hist: Mapping[int, int]) -> dict[str, Any]:
    return {
        "cases": sum(n for n in hist.values() if n > 0),
        "median": _rounded(hist_percentile(hist, 50)),
        "p90": _rounded(hist_percentile(hist, 90)),
    }


@dataclass
class _Tally:
    outcomes: Counter[str] = field(default_factory=Counter)
    total: Counter[int] = field(default_factory=Counter)
    stages: dict[str, Counter[int]] = field(
        default_factory=lambda: {stage: Counter() for stage in STAGES}
    )
    submitted: int = 0
    breaches: int = 0
    open: int = 0
    members: int = 0

    def add(self, measure: str, days: int, n: int) -> None:
        if measure in OUTCOMES:
            self.outcomes[measure] += n
            self.total[days] += n
        elif measure.startswith("stage:"):
            self.stages.setdefault(measure[6:], Counter())[days] += n
        elif measure == "submitted":
            self.submitted += n
        elif measure.startswith("breach:"):
            self.breaches += n

    def figures(self) -> dict[str, Any]:
        outcomes = {o: self.outcomes.get(o, 0) for o in OUTCOMES}
        return {
            "submitted": self.submitted,
            "open": self.open,
            "decided": sum(outcomes.values()),
            "outcomes": outcomes,
            "approval_rate": approval_rate(outcomes),
            "processing_days": {
                "total": hist_distribution(self.total),
                "stages": {stage: hist_distribution(self.stages[stage]) for stage in STAGES},
            },
            "breaches": self.breaches,
        }


def summary(
    session: Session,
    protocol: Protocol,
    today: date,
    group_by: str = "form",
    period: Period | None = None,
) -> dict[str, Any]:
    """The whole summary as GET /v1/metrics/summary returns it (docs/metrics.md), read from
    the aggregates in a few indexed queries; equal to summary_from_audit()."""
    period = period or Period()
    counts, members = MetricCount.__table__, MetricMember.__table__  # type: ignore[attr-defined]
    in_period = or_(
        *(
            and_(counts.c.grain == grain, counts.c.day >= first, counts.c.day <= last)
            for grain, first, last in period_ranges(period)
        )
    )
    tallies: dict[tuple[str, str], _Tally] = defaultdict(_Tally)
    by_stage: Counter[str] = Counter()
    by_limit: Counter[str] = Counter()
    rows = session.execute(
        sa_select(
            counts.c.grouping,
            counts.c.value,
            counts.c.measure,
            counts.c.days,
            func.sum(counts.c.cases),
        )
        .where(counts.c.grouping.in_([ALL, group_by]), in_period)
        .group_by(counts.c.grouping, counts.c.value, counts.c.measure, counts.c.days)
    ).all()
    for grouping, value, measure, days, n in rows:
        n = int(n or 0)
        if not n:
            continue
        tallies[(grouping, value)].add(measure, days, n)
        if grouping == ALL and measure.startswith("breach:"):
            _, stage, limit = measure.split(":", 2)
            by_stage[stage] += n
            by_limit[limit] += n
    days_counter = WorkingDays()
    ages: dict[date, int] = {}
    open_states = [s for s in protocol.states if not protocol.is_terminal(s)]
    by_state = dict.fromkeys(open_states, 0)
    by_age = {label: 0 for label, _ in AGE_BANDS}
    by_state_and_age = {s: {label: 0 for label, _ in AGE_BANDS} for s in open_states}
    for grouping, value, state, since, n in session.execute(
        sa_select(
            members.c.grouping, members.c.value, members.c.state, members.c.since, members.c.cases
        ).where(members.c.grouping.in_([ALL, group_by]), members.c.cases != 0)
    ).all():
        tally = tallies[(grouping, value)]
        tally.members += n
        if state == CLOSED:
            continue
        tally.open += n
        if grouping == ALL:
            if since not in ages:
                ages[since] = days_counter.between(TOTAL_CALENDAR, since, today)
            band = _age_band(ages[since])
            by_state[state] = by_state.get(state, 0) + n
            by_age[band] += n
            by_state_and_age.setdefault(state, {label: 0 for label, _ in AGE_BANDS})[band] += n
    overall = tallies[(ALL, "")].figures()
    groups = [
        {"group": value, **tallies[(grouping, value)].figures()}
        for grouping, value in sorted(
            k for k, t in tallies.items() if k[0] == group_by and t.members > 0
        )
    ]
    return {
        "group_by": group_by,
        "from": period.start,
        "to": period.end,
        "as_of": today,
        "stages": dict(STAGE_LABELS),
        "overall": overall,
        "groups": groups,
        "backlog": {
            "total": sum(by_state.values()),
            "by_state": by_state,
            "by_age": by_age,
            "by_state_and_age": by_state_and_age,
        },
        "breaches": {
            "total": sum(by_stage.values()),
            "by_stage": dict(sorted(by_stage.items())),
            "by_limit": dict(sorted(by_limit.items())),
        },
        "by_month": _months_from_counts(session, in_period),
        "bottlenecks": _bottlenecks(overall, groups),
    }


def _months_from_counts(session: Session, in_period: Any) -> list[dict[str, Any]]:
    counts = MetricCount.__table__  # type: ignore[attr-defined]
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    totals: dict[str, Counter[int]] = defaultdict(Counter)
    for day, measure, days, n in session.execute(
        sa_select(counts.c.day, counts.c.measure, counts.c.days, func.sum(counts.c.cases))
        .where(counts.c.grouping == ALL, counts.c.measure.in_(OUTCOMES), in_period)
        .group_by(counts.c.grain, counts.c.day, counts.c.measure, counts.c.days)
    ).all():
        n = int(n or 0)
        if not n:
            continue
        month = day.strftime("%Y-%m")
        outcomes[month][measure] += n
        totals[month][days] += n
    series = []
    for month in sorted(outcomes):
        figures = {o: outcomes[month].get(o, 0) for o in OUTCOMES}
        series.append(
            {
                "month": month,
                "decided": sum(figures.values()),
                "outcomes": figures,
                "approval_rate": approval_rate(figures),
                "processing_days": hist_distribution(totals[month]),
            }
        )
    return series


CSV_COLUMNS: tuple[str, ...] = (
    "group",
    "submitted",
    "open",
    "decided",
    *OUTCOMES,
    "approval_rate",
    "total_cases",
    "total_median_days",
    "total_p90_days",
    *(f"{stage}_{figure}" for stage in STAGES for figure in ("median_days", "p90_days")),
    "breaches",
)


def _csv_row(name: str, figures: Mapping[str, Any]) -> list[Any]:
    processing = figures["processing_days"]
    row: list[Any] = [name, figures["submitted"], figures["open"], figures["decided"]]
    row += [figures["outcomes"][o] for o in OUTCOMES]
    row += [
        "" if figures["approval_rate"] is None else figures["approval_rate"],
        processing["total"]["cases"],
        processing["total"]["median"],
        processing["total"]["p90"],
    ]
    for stage in STAGES:
        row += [processing["stages"][stage]["median"], processing["stages"][stage]["p90"]]
    row.append(figures["breaches"])
    return ["" if v is None else v for v in row]


def summary_csv(result: Mapping[str, Any]) -> str:
    """One row for all cases, then one per group; the same figures as the JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerow(_csv_row("(all)", result["overall"]))
    for group in result["groups"]:
        writer.writerow(_csv_row(group["group"], group))
    return out.getvalue()


# --- HTTP ---------------------------------------------------------------------------------------

router = APIRouter(prefix="/v1", responses=documented_errors())


def _engine(request: Request) -> Engine:
    return request.app.state.runtime.engine


def parse_period(start: str | None, end: str | None) -> Period:
    errors: list[dict[str, str]] = []
    parsed: dict[str, date | None] = {}
    for name, value in (("from", start), ("to", end)):
        try:
            parsed[name] = date.fromisoformat(value) if value else None
        except ValueError:
            errors.append({"field": name, "message": "must be a date, YYYY-MM-DD"})
    if errors:
        raise invalid(errors)
    period = Period(parsed["from"], parsed["to"])
    if period.start and period.end and period.start > period.end:
        raise invalid([{"field": "from", "message": "must not be after `to`"}])
    return period


def compute(request: Request, group_by: str, period: Period) -> dict[str, Any]:
    casework = request.app.state.casework
    with Session(_engine(request)) as session:
        return summary(session, casework.protocol, casework.today(), group_by, period)


@router.get(
    "/metrics/summary",
    tags=["metrics"],
    summary="Approval rate, processing times per stage, backlog and breaches, by group",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_summary(
    request: Request,
    _official: Annotated[Principal, Depends(current_official)],
    group_by: Annotated[GroupBy, Query()] = "form",
    start: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    end: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    # Both sides get the same aggregates: they are built only from fields CN may see.
    result = compute(request, group_by, parse_period(start, end))
    if format == "csv":
        name = f"ree-metrics-{group_by}.csv"
        return Response(
            summary_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    # The summary is plain JSON apart from its three dates (jsonable_encoder would walk
    # every figure to find them).
    dates = {k: v.isoformat() for k, v in result.items() if isinstance(v, date)}
    return JSONResponse({**result, **dates})
