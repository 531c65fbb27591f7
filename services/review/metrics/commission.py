"""The Commission's own figures: the cumulative share of applications approved, the cases
past MOFCOM's statutory period, processing time by product category month by month, and
the month's report built from them (docs/metrics.md, "The Commission's figures").

Read from the same aggregates as the summary (metric_counts' month rows), apart from the
cases past the statutory period, which are the open acknowledged cases themselves.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from services.review.domain.calendar import working_days_between
from services.review.domain.deadlines import due_date
from services.review.domain.protocol import Protocol
from services.review.domain.statistics import MIN_PROCESSING_DAYS, floored_distribution
from services.review.metrics.facts import ALL, Audience, audience_grouping, aware
from services.review.metrics.reports import Period, summary
from services.review.store import Case, MetricCount

# The product categories the Commission monitors for bottlenecks (the seeds: rare-earth
# oxides, metals and magnet alloys; DOMAIN.md adds the magnets made of them), as goods forms.
CATEGORIES: Mapping[str, str] = {
    "oxide": "Oxides",
    "metal": "Metals",
    "alloy": "Magnet alloys",
    "magnet": "Magnets",
}
# China's decisions on the licence: what "processing time" measures for a category.
DECISIONS: tuple[str, ...] = ("approved", "refused")
CSV_COLUMNS = ("figure", "month", "key", "value")


def _month_rows(
    session: Session, grouping: str, measures: Sequence[str], values: Sequence[str] | None = None
) -> list[tuple[date, str, str, int, int]]:
    """(month, value, measure, days, cases) from the month rows of one grouping."""
    counts = MetricCount.__table__  # type: ignore[attr-defined]
    query = (
        sa_select(
            counts.c.day, counts.c.value, counts.c.measure, counts.c.days, func.sum(counts.c.cases)
        )
        .where(counts.c.grouping == grouping, counts.c.grain == "m", counts.c.measure.in_(measures))
        .group_by(counts.c.day, counts.c.value, counts.c.measure, counts.c.days)
    )
    if values is not None:
        query = query.where(counts.c.value.in_(values))
    return [(d, v, m, int(days), int(n or 0)) for d, v, m, days, n in session.execute(query)]


def approved_share(
    session: Session, audience: Audience, until: date | None = None
) -> list[dict[str, Any]]:
    """Month by month since the first application: applications filed so far, those approved
    so far, and the share approved (the Commission's "just over half", "about 70 %")."""
    filed: Counter[date] = Counter()
    approved: Counter[date] = Counter()
    everything = audience_grouping(audience, ALL)
    for month, _value, measure, _days, n in _month_rows(
        session, everything, ("submitted", "approved")
    ):
        (filed if measure == "submitted" else approved)[month] += n
    series, total_filed, total_approved = [], 0, 0
    for month in sorted(set(filed) | set(approved)):
        if until is not None and month > until:
            break
        total_filed += filed[month]
        total_approved += approved[month]
        series.append(
            {
                "month": month.strftime("%Y-%m"),
                "filed": total_filed,
                "approved": total_approved,
                "share": round(total_approved / total_filed, 4) if total_filed else None,
            }
        )
    return series


def category_times(
    session: Session, audience: Audience, month: date | None = None
) -> list[dict[str, Any]]:
    """Processing time of China's decisions per product category, by month of decision;
    decisions under MIN_PROCESSING_DAYS are counted but left out of the medians."""
    hists: dict[date, dict[str, Counter[int]]] = defaultdict(lambda: defaultdict(Counter))
    for day, value, _measure, days, n in _month_rows(
        session, audience_grouping(audience, "form"), DECISIONS, list(CATEGORIES)
    ):
        if month is None or day == month:
            hists[day][value][days] += n
    return [
        {
            "month": day.strftime("%Y-%m"),
            "categories": {
                form: {"label": label, **floored_distribution(hists[day][form])}
                for form, label in CATEGORIES.items()
            },
        }
        for day in sorted(hists)
    ]


def _statutory_state(protocol: Protocol) -> str:
    """The stage whose clock is MOFCOM's statutory period (cn_review in protocol.yaml)."""
    return next(s for s, d in protocol.deadlines.items() if d.statutory is not None)


def statutory_due(protocol: Protocol, state: str, case: Case) -> date:
    """The day an accepted case's statutory period ends (the case page's "Statutory" date),
    the applicant's pauses added."""
    assert case.acknowledged_on is not None
    return due_date(
        state,
        case.acknowledged_on,
        case.tier,
        limit="statutory",
        paused_working_days=case.paused_working_days,
        protocol=protocol,
    )


def past_statutory(session: Session, protocol: Protocol, today: date) -> dict[str, Any]:
    """Open cases whose statutory period (from MOFCOM's acceptance, pauses for the applicant
    added) ended before today, longest overdue first. Only cases sent to China have been
    accepted by MOFCOM, so both sides see the same cases; the list names what both may see."""
    state = _statutory_state(protocol)
    terminal = [s for s in protocol.states if protocol.is_terminal(s)]
    limit = protocol.deadlines[state].limit("statutory", None)
    rows: list[dict[str, Any]] = []
    query = select(Case).where(
        col(Case.acknowledged_on).is_not(None),
        col(Case.sent_to_cn_at).is_not(None),
        col(Case.state).not_in(terminal),
    )
    for case in session.exec(query):
        due = statutory_due(protocol, state, case)
        if due < today:
            rows.append(
                {
                    "id": case.id,
                    "reference": case.reference,
                    "state": case.state,
                    "tier": case.tier,
                    "accepted_on": case.acknowledged_on,
                    "statutory_due": due,
                    "working_days_over": working_days_between(
                        protocol.calendar_side(state) or "CN", due, today
                    ),
                }
            )
    rows.sort(key=lambda r: (-r["working_days_over"], r["reference"]))
    return {"limit_working_days": limit, "count": len(rows), "cases": rows}


def decided_late(session: Session, protocol: Protocol, start: date, end: date) -> int:
    """Decisions from `start` to `end` taken after the statutory period had ended."""
    state = _statutory_state(protocol)
    query = select(Case).where(
        col(Case.acknowledged_on).is_not(None),
        col(Case.sent_to_cn_at).is_not(None),
        col(Case.state).in_(DECISIONS),
        col(Case.decided_at) >= datetime.combine(start, time(0), UTC),
        col(Case.decided_at) < datetime.combine(end + timedelta(days=1), time(0), UTC),
    )
    late = 0
    for case in session.exec(query):
        assert case.decided_at is not None
        due = statutory_due(protocol, state, case)
        late += aware(case.decided_at).date() > due
    return late


def commission_figures(
    session: Session, protocol: Protocol, today: date, audience: Audience
) -> dict[str, Any]:
    """GET /v1/metrics/commission (docs/metrics.md)."""
    return {
        "as_of": today,
        "min_processing_days": MIN_PROCESSING_DAYS,
        "approved_share": approved_share(session, audience),
        "past_statutory": past_statutory(session, protocol, today),
        "processing_by_category": category_times(session, audience),
    }


def _next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def monthly_report(
    session: Session, protocol: Protocol, today: date, audience: Audience, month: date
) -> dict[str, Any]:
    """One month's page for the Commission: that month's decisions, by product category,
    the share approved so far, and the cases past the statutory period (the current month:
    the list; a past one: how many decisions came late)."""
    last = date.fromordinal(_next_month(month).toordinal() - 1)
    figures = summary(session, protocol, today, "form", Period(month, last), audience)
    times = category_times(session, audience, month)
    share = approved_share(session, audience, month)
    by_month = next((m for m in figures["by_month"] if m["month"] == month.strftime("%Y-%m")), None)
    current = month <= today <= last
    return {
        "month": month.strftime("%Y-%m"),
        "as_of": today,
        "min_processing_days": MIN_PROCESSING_DAYS,
        "filed": figures["overall"]["submitted"],
        "decided": figures["overall"]["decided"],
        "outcomes": figures["overall"]["outcomes"],
        "approval_rate": figures["overall"]["approval_rate"],
        "processing_days": by_month["processing_days"] if by_month else floored_distribution({}),
        "approved_share": share,
        "categories": times[0]["categories"] if times else category_times_empty(),
        "decided_late": decided_late(session, protocol, month, last),
        "past_statutory": past_statutory(session, protocol, today) if current else None,
    }


def category_times_empty() -> dict[str, Any]:
    return {
        form: {"label": label, **floored_distribution({})} for form, label in CATEGORIES.items()
    }


# --- CSV: one long table, a row per figure ----------------------------------------------------


def _share_rows(series: Iterable[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        ["approved_share", m["month"], key, m[key]]
        for m in series
        for key in ("filed", "approved", "share")
    ]


def _category_rows(month: str, categories: Mapping[str, Mapping[str, Any]]) -> list[list[Any]]:
    return [
        ["processing_days", month, f"{form}:{kind}", figures[kind]]
        for form, figures in categories.items()
        for kind in ("cases", "median", "p90", "under_floor")
    ]


def _statutory_rows(past: Mapping[str, Any] | None) -> list[list[Any]]:
    if past is None:
        return []
    return [["past_statutory", "", "count", past["count"]]] + [
        ["past_statutory", "", c["reference"], c["working_days_over"]] for c in past["cases"]
    ]


def _write(rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return out.getvalue()


def commission_csv(figures: Mapping[str, Any]) -> str:
    """The Commission's figures as one long table: figure, month, key, value."""
    rows = _share_rows(figures["approved_share"])
    for m in figures["processing_by_category"]:
        rows += _category_rows(m["month"], m["categories"])
    return _write(rows + _statutory_rows(figures["past_statutory"]))


def monthly_csv(report: Mapping[str, Any]) -> str:
    """A month's report in the same long table."""
    month = report["month"]
    rows: list[list[Any]] = [
        ["filed", month, "applications", report["filed"]],
        ["decided", month, "cases", report["decided"]],
        *(["decided", month, outcome, n] for outcome, n in report["outcomes"].items()),
        ["approval_rate", month, "approved/(approved+refused)", report["approval_rate"]],
        *(
            ["processing_days", month, f"all:{kind}", report["processing_days"][kind]]
            for kind in ("cases", "median", "p90", "under_floor")
        ),
        *_category_rows(month, report["categories"]),
        ["decided_late", month, "after the statutory period", report["decided_late"]],
    ]
    return _write(
        rows
        + _share_rows(report["approved_share"][-1:])
        + _statutory_rows(report["past_statutory"])
    )
