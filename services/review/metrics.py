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
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.review.domain.calendar import is_working_day
from services.review.domain.protocol import CalendarSide, Protocol
from services.review.store import AuditRecord, Breach, Case
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


def summary(
    session: Session,
    protocol: Protocol,
    today: date,
    group_by: str = "form",
    period: Period | None = None,
) -> dict[str, Any]:
    """The whole summary as GET /v1/metrics/summary returns it (docs/metrics.md)."""
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
    return JSONResponse(jsonable_encoder(result))
