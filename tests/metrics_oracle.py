"""The metrics summary recomputed from every case and audit entry: the definition the tests
compare the service's aggregates with (docs/metrics.md). It reads the whole history, so
the service answers from its projection (services/review/metrics) instead."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from services.review.domain.priority import stops_before_decision
from services.review.domain.protocol import Protocol
from services.review.domain.statistics import (
    AGE_BANDS,
    MIN_PROCESSING_DAYS,
    WorkingDays,
    age_band,
    approval_rate,
    distribution,
)
from services.review.metrics.facts import (
    Audience,
    CaseFacts,
    Definition,
    case_facts,
    group_values,
)
from services.review.metrics.reports import Period, assemble
from services.review.store import AuditRecord, Breach, Case


def load_facts(
    session: Session, protocol: Protocol, today: date, audience: Audience = "EU"
) -> list[CaseFacts]:
    """Every case's facts (China: the cases sent to China): one query for the cases, one
    for their state changes."""
    days = WorkingDays()
    query = sa_select(
        col(Case.id),
        col(Case.state),
        col(Case.opened_at),
        col(Case.application),
        col(Case.list_number),
        col(Case.sent_to_cn_at),
    )
    if audience == "CN":
        query = query.where(col(Case.sent_to_cn_at).is_not(None))
    rows = session.execute(query).all()
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


def _figures(
    cases: Iterable[CaseFacts],
    period: Period,
    breaches: Mapping[str, int],
    stages: Sequence[str],
    outcomes_shown: Sequence[str],
) -> dict[str, Any]:
    outcomes = dict.fromkeys(outcomes_shown, 0)
    totals: list[float] = []
    per_stage: dict[str, list[float]] = {stage: [] for stage in stages}
    submitted = open_now = breached = 0
    for case in cases:
        submitted += period.holds(case.opened_at)
        open_now += case.age_days is not None
        breached += breaches.get(case.id, 0)
        if case.outcome is None or case.outcome not in outcomes:
            continue
        if not period.holds(case.decided_at):
            continue
        outcomes[case.outcome] += 1
        if case.total_days is not None:
            totals.append(case.total_days)
        for stage, spent in case.stage_days.items():
            if stage in per_stage:
                per_stage[stage].append(spent)
    return {
        "submitted": submitted,
        "open": open_now,
        "decided": sum(outcomes.values()),
        "outcomes": outcomes,
        "approval_rate": approval_rate(outcomes, Protocol.load()),
        "processing_days": {
            "total": distribution(totals),
            "stages": {stage: distribution(values) for stage, values in per_stage.items()},
        },
        "breaches": breached,
    }


def _backlog(cases: Sequence[CaseFacts], open_states: Sequence[str]) -> dict[str, Any]:
    by_state = dict.fromkeys(open_states, 0)
    by_age = {label: 0 for label, _ in AGE_BANDS}
    by_state_and_age = {s: {label: 0 for label, _ in AGE_BANDS} for s in open_states}
    for case in cases:
        if case.age_days is None:
            continue
        band = age_band(case.age_days)
        by_state[case.state] = by_state.get(case.state, 0) + 1
        by_age[band] += 1
        by_state_and_age.setdefault(case.state, {label: 0 for label, _ in AGE_BANDS})[band] += 1
    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_age": by_age,
        "by_state_and_age": by_state_and_age,
    }


def _months(
    cases: Sequence[CaseFacts], period: Period, outcomes_shown: Sequence[str]
) -> list[dict[str, Any]]:
    buckets: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in cases:
        if (
            case.outcome in outcomes_shown
            and case.decided_at is not None
            and period.holds(case.decided_at)
        ):
            buckets[case.decided_at.strftime("%Y-%m")].append(case)
    series = []
    for month in sorted(buckets):
        outcomes = dict.fromkeys(outcomes_shown, 0)
        for case in buckets[month]:
            outcomes[case.outcome or ""] += 1
        totals = [float(c.total_days) for c in buckets[month] if c.total_days is not None]
        kept = [t for t in totals if t >= MIN_PROCESSING_DAYS]
        series.append(
            {
                "month": month,
                "decided": len(buckets[month]),
                "outcomes": outcomes,
                "approval_rate": approval_rate(outcomes, Protocol.load()),
                "processing_days": {
                    **distribution(kept),
                    "under_floor": len(totals) - len(kept),
                },
            }
        )
    return series


def summary_from_audit(
    session: Session,
    protocol: Protocol,
    today: date,
    group_by: str,
    period: Period | None = None,
    audience: Audience = "EU",
) -> dict[str, Any]:
    """The summary recomputed from every case and audit entry (China's: from the cases
    sent to China, without what China may not see)."""
    period = period or Period()
    definition = Definition.of(protocol)
    stages, outcomes = definition.stages(audience), definition.outcomes(audience)
    cases = load_facts(session, protocol, today, audience)
    seen = {case.id for case in cases}
    breach_rows = session.exec(
        select(Breach.case_id, Breach.state, Breach.limit_name, Breach.recorded_at)
    ).all()
    breaches_per_case: dict[str, int] = defaultdict(int)
    breaches_by_stage: dict[str, int] = defaultdict(int)
    breaches_by_limit: dict[str, int] = defaultdict(int)
    for case_id, state, limit_name, recorded_at in breach_rows:
        hidden = audience == "CN" and state in definition.cn_hidden
        if case_id in seen and not hidden and period.holds(recorded_at):
            breaches_per_case[case_id] += 1
            breaches_by_stage[state] += 1
            breaches_by_limit[limit_name] += 1
    overall = _figures(cases, period, breaches_per_case, stages, outcomes)
    members: dict[str, list[CaseFacts]] = defaultdict(list)
    for case in cases:
        for value in case.groups[group_by]:
            members[value].append(case)
    groups = [
        {"group": value, **_figures(members[value], period, breaches_per_case, stages, outcomes)}
        for value in sorted(members)
    ]
    backlog = _backlog(cases, definition.open_states(protocol, audience))
    by_month = _months(cases, period, outcomes)
    return assemble(
        group_by, period, today, stages, overall, groups, backlog,
        breaches_by_stage, breaches_by_limit, by_month,
    )  # fmt: skip


def stopping_before_decision_from_cases(session: Session, protocol: Protocol) -> int:
    """The EU summary's open cases whose production stops before their expected decision,
    counted from each application as submitted (the service counts a column)."""
    count = 0
    for application, expected, state in session.execute(
        sa_select(col(Case.application), col(Case.expected_decision_date), col(Case.state))
    ).all():
        stop = (application.get("urgency") or {}).get("production_stop_date")
        if protocol.is_terminal(state) or stop is None or expected is None:
            continue
        count += date.fromisoformat(stop) < expected
    return count


def stopping_before_decision_from_columns(session: Session, protocol: Protocol) -> int:
    """The same figure, case by case from the columns the service keeps (for cases written
    without an application, as migrations and projections see them)."""
    rows = session.execute(
        sa_select(col(Case.state), col(Case.production_stop_date), col(Case.expected_decision_date))
    ).all()
    return sum(
        not protocol.is_terminal(state) and stops_before_decision(stop, expected)
        for state, stop, expected in rows
    )
