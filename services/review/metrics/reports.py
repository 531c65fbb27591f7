"""The summary (GET /v1/metrics/summary, the console's dashboard) and its CSV, read from
the aggregates the projection keeps, in a few indexed queries (docs/metrics.md)."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

# Imported at start-up rather than by the first summary's working-day count (0.3 s).
import holidays.countries  # noqa: F401
from sqlalchemy import and_, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session

from services.review.domain.protocol import Protocol
from services.review.domain.statistics import (
    AGE_BANDS,
    WorkingDays,
    age_band,
    approval_rate,
    floored_distribution,
    hist_distribution,
)
from services.review.metrics.facts import (
    ALL,
    CLOSED,
    STAGE_LABELS,
    TOTAL_CALENDAR,
    Audience,
    Definition,
    audience_grouping,
    aware,
)
from services.review.store import MetricCount, MetricMember

FIRST_DAY, LAST_DAY = date(1, 1, 1), date(9999, 12, 31)


@dataclass(frozen=True)
class Period:
    """Dates inclusive at both ends; either may be open."""

    start: date | None = None
    end: date | None = None

    def holds(self, moment: datetime | date | None) -> bool:
        if moment is None:
            return False
        day = aware(moment).date() if isinstance(moment, datetime) else moment
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)


def _month(day: date) -> date:
    return day.replace(day=1)


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


@dataclass
class _Tally:
    protocol: Protocol
    stages_shown: Sequence[str]
    outcomes_shown: Sequence[str]
    outcomes: Counter[str] = field(default_factory=Counter)
    total: Counter[int] = field(default_factory=Counter)
    stages: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    submitted: int = 0
    breaches: int = 0
    open: int = 0
    members: int = 0

    def add(self, measure: str, days: int, n: int) -> None:
        if measure in self.outcomes_shown:
            self.outcomes[measure] += n
            self.total[days] += n
        elif measure.startswith("stage:"):
            self.stages[measure[6:]][days] += n
        elif measure == "submitted":
            self.submitted += n
        elif measure.startswith("breach:"):
            self.breaches += n

    def figures(self) -> dict[str, Any]:
        outcomes = {o: self.outcomes.get(o, 0) for o in self.outcomes_shown}
        return {
            "submitted": self.submitted,
            "open": self.open,
            "decided": sum(outcomes.values()),
            "outcomes": outcomes,
            "approval_rate": approval_rate(outcomes, self.protocol),
            "processing_days": {
                "total": hist_distribution(self.total),
                "stages": {s: hist_distribution(self.stages[s]) for s in self.stages_shown},
            },
            "breaches": self.breaches,
        }


def bottlenecks(overall: Mapping[str, Any], groups: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Stages by median time, and groups by median total time with their slowest stage."""
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
    audience: Audience = "EU",
) -> dict[str, Any]:
    """The whole summary as GET /v1/metrics/summary returns it to `audience` (docs/metrics.md),
    read from the aggregates in a few indexed queries; China's covers only what it may see."""
    period = period or Period()
    definition = Definition.of(protocol)
    stages, outcomes = definition.stages(audience), definition.outcomes(audience)
    everything, grouping = audience_grouping(audience, ALL), audience_grouping(audience, group_by)
    counts, members = MetricCount.__table__, MetricMember.__table__  # type: ignore[attr-defined]
    in_period = or_(
        *(
            and_(counts.c.grain == grain, counts.c.day >= first, counts.c.day <= last)
            for grain, first, last in period_ranges(period)
        )
    )
    tallies: dict[tuple[str, str], _Tally] = defaultdict(lambda: _Tally(protocol, stages, outcomes))
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
        .where(counts.c.grouping.in_([everything, grouping]), in_period)
        .group_by(counts.c.grouping, counts.c.value, counts.c.measure, counts.c.days)
    ).all()
    for row_grouping, value, measure, days, n in rows:
        n = int(n or 0)
        if not n:
            continue
        tallies[(row_grouping, value)].add(measure, days, n)
        if row_grouping == everything and measure.startswith("breach:"):
            _, stage, limit = measure.split(":", 2)
            by_stage[stage] += n
            by_limit[limit] += n
    days_counter = WorkingDays()
    ages: dict[date, int] = {}
    open_states = definition.open_states(protocol, audience)
    by_state = dict.fromkeys(open_states, 0)
    by_age = {label: 0 for label, _ in AGE_BANDS}
    by_state_and_age = {s: {label: 0 for label, _ in AGE_BANDS} for s in open_states}
    for row_grouping, value, state, since, n in session.execute(
        sa_select(
            members.c.grouping, members.c.value, members.c.state, members.c.since, members.c.cases
        ).where(members.c.grouping.in_([everything, grouping]), members.c.cases != 0)
    ).all():
        tally = tallies[(row_grouping, value)]
        tally.members += n
        if state == CLOSED:
            continue
        tally.open += n
        if row_grouping == everything:
            if since not in ages:
                ages[since] = days_counter.between(TOTAL_CALENDAR, since, today)
            band = age_band(ages[since])
            by_state[state] = by_state.get(state, 0) + n
            by_age[band] += n
            by_state_and_age.setdefault(state, {label: 0 for label, _ in AGE_BANDS})[band] += n
    overall = tallies[(everything, "")].figures()
    groups = [
        {"group": value, **tallies[(g, value)].figures()}
        for g, value in sorted(k for k, t in tallies.items() if k[0] == grouping and t.members > 0)
    ]
    backlog = {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_age": by_age,
        "by_state_and_age": by_state_and_age,
    }
    by_month = _months_from_counts(session, protocol, everything, outcomes, in_period)
    return assemble(
        group_by, period, today, stages, overall, groups, backlog, by_stage, by_limit, by_month
    )


def assemble(
    group_by: str,
    period: Period,
    today: date,
    stages: Sequence[str],
    overall: dict[str, Any],
    groups: list[dict[str, Any]],
    backlog: dict[str, Any],
    by_stage: Mapping[str, int],
    by_limit: Mapping[str, int],
    by_month: list[dict[str, Any]],
) -> dict[str, Any]:
    """The summary's document (docs/metrics.md) from its parts, in its order."""
    return {
        "group_by": group_by,
        "from": period.start,
        "to": period.end,
        "as_of": today,
        "stages": {s: STAGE_LABELS[s] for s in stages},
        "overall": overall,
        "groups": groups,
        "backlog": backlog,
        "breaches": {
            "total": sum(by_stage.values()),
            "by_stage": dict(sorted(by_stage.items())),
            "by_limit": dict(sorted(by_limit.items())),
        },
        "by_month": by_month,
        "bottlenecks": bottlenecks(overall, groups),
    }


def _months_from_counts(
    session: Session,
    protocol: Protocol,
    everything: str,
    outcomes_shown: Sequence[str],
    in_period: Any,
) -> list[dict[str, Any]]:
    counts = MetricCount.__table__  # type: ignore[attr-defined]
    outcomes: dict[str, Counter[str]] = defaultdict(Counter)
    totals: dict[str, Counter[int]] = defaultdict(Counter)
    for day, measure, days, n in session.execute(
        sa_select(counts.c.day, counts.c.measure, counts.c.days, func.sum(counts.c.cases))
        .where(counts.c.grouping == everything, counts.c.measure.in_(outcomes_shown), in_period)
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
        figures = {o: outcomes[month].get(o, 0) for o in outcomes_shown}
        series.append(
            {
                "month": month,
                "decided": sum(figures.values()),
                "outcomes": figures,
                "approval_rate": approval_rate(figures, protocol),
                "processing_days": floored_distribution(totals[month]),
            }
        )
    return series


def csv_columns(result: Mapping[str, Any]) -> list[str]:
    """The CSV's header: the outcomes and stages the summary shows its reader."""
    return [
        "group",
        "submitted",
        "open",
        "decided",
        *result["overall"]["outcomes"],
        "approval_rate",
        "total_cases",
        "total_median_days",
        "total_p90_days",
        *(f"{stage}_{kind}" for stage in result["stages"] for kind in ("median_days", "p90_days")),
        "breaches",
    ]


def _csv_row(name: str, figures: Mapping[str, Any], stages: Sequence[str]) -> list[Any]:
    processing = figures["processing_days"]
    row: list[Any] = [name, figures["submitted"], figures["open"], figures["decided"]]
    row += list(figures["outcomes"].values())
    row += [
        "" if figures["approval_rate"] is None else figures["approval_rate"],
        processing["total"]["cases"],
        processing["total"]["median"],
        processing["total"]["p90"],
    ]
    for stage in stages:
        row += [processing["stages"][stage]["median"], processing["stages"][stage]["p90"]]
    row.append(figures["breaches"])
    return ["" if v is None else v for v in row]


def summary_csv(result: Mapping[str, Any]) -> str:
    """One row for all cases, then one per group; the same figures as the JSON."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(result))
    stages = list(result["stages"])
    writer.writerow(_csv_row("(all)", result["overall"], stages))
    for group in result["groups"]:
        writer.writerow(_csv_row(group["group"], group, stages))
    return out.getvalue()
