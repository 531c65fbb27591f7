"""The demo history's plan follows the public record (docs/metrics.md, "The demo past").

The plan is pure (no database), so it is checked here at the command's full-scale defaults;
tests/unit/review/test_review_history_timeline.py plays a smaller plan through Casework.
"""

from __future__ import annotations

import inspect
import random
from collections import defaultdict
from datetime import UTC, date, datetime

import pytest

from reechannel.cli import simulate
from reechannel.simulate.timeline import (
    HistoryPlan,
    list_days,
    plan_history,
    record_figures,
)
from reechannel.simulate.world import COMPANY_STEMS, DemoCompany
from services.review.domain.calendar import is_working_day

# The day the brief calls today; the plan runs from 4 April 2025 up to it.
END = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
COMPANIES = [
    DemoCompany(f"c{i}", stem, f"{country}X{i:06d}", country, chain, "key")
    for i, (stem, chain, country) in enumerate(COMPANY_STEMS[:30])
]


def _defaults() -> int:
    """The history's size when `reechannel simulate` runs with its defaults."""
    params = inspect.signature(simulate).parameters
    return round(params["count"].default * params["history"].default)


@pytest.fixture(scope="module", params=[1, 2])
def full_scale(request: pytest.FixtureRequest) -> HistoryPlan:
    return plan_history(_defaults(), COMPANIES, random.Random(request.param), END)


def test_about_2000_applications_are_filed_by_5_november_2025(full_scale: HistoryPlan) -> None:
    figures = record_figures(full_scale)
    assert 1900 <= figures["filed_by_5_nov_2025"] <= 2100, figures


def test_just_over_half_are_approved_by_5_november_and_about_70_percent_by_new_year(
    full_scale: HistoryPlan,
) -> None:
    figures = record_figures(full_scale)
    assert 0.50 <= figures["approved_share_5_nov_2025"] <= 0.56, figures
    assert 0.65 <= figures["approved_share_end_2025"] <= 0.75, figures


def test_eight_priority_lists_by_the_end_of_october_all_on_working_days(
    full_scale: HistoryPlan,
) -> None:
    figures = record_figures(full_scale)
    assert figures["lists_by_end_oct_2025"] == 8
    assert figures["lists_on_working_days"]
    assert all(is_working_day("EU", d) for d in list_days(date(2027, 12, 31)))


def test_one_week_at_the_fastest_typically_one_to_one_and_a_half_months(
    full_scale: HistoryPlan,
) -> None:
    figures = record_figures(full_scale)
    assert 4 <= figures["fastest_approval_days"] <= 7, figures
    assert 21 <= figures["median_approval_days"] <= 33, figures
    decided = figures["outcomes"]["approved"] + figures["outcomes"]["refused"]
    assert 0 < figures["decided_past_statutory"] <= 0.06 * decided, "a few pass the 45 days"


def test_refusals_are_rare_and_withdrawals_lapses_and_requests_realistic(
    full_scale: HistoryPlan,
) -> None:
    figures = record_figures(full_scale)
    filed = figures["filed"]
    outcomes = figures["outcomes"]
    assert 0 < figures["refused_share_of_decided"] <= 0.06, figures
    assert 0.02 <= outcomes["withdrawn"] / filed <= 0.05, figures
    assert 0.005 <= outcomes["lapsed"] / filed <= 0.03, figures
    assert 0.08 <= figures["information_requests"] / filed <= 0.2, figures
    refusal_reasons = {s.data["reason"] for s in full_scale.steps if s.kind == "refuse"}
    assert {"military_end_use", "listed_entity"} <= refusal_reasons


def test_the_history_keeps_going_to_today_at_a_plausible_rate(full_scale: HistoryPlan) -> None:
    per_month: dict[str, int] = defaultdict(int)
    for case in full_scale.cases.values():
        per_month[f"{case.submitted:%Y-%m}"] += 1
    assert min(per_month) == "2025-04"
    assert max(per_month) == "2026-11", "up to the day before the end"
    assert all(20 <= per_month[f"2026-{m:02d}"] <= 150 for m in range(1, 12)), per_month


def test_every_case_s_steps_run_forward_in_time(full_scale: HistoryPlan) -> None:
    """The old plan put an admission before the opening in 239 of 1,999 cases (issue 23)."""
    steps = defaultdict(list)
    for step in full_scale.steps:
        if step.case_ref:
            steps[step.case_ref].append(step)
    for ref, planned in steps.items():
        planned.sort(key=lambda s: s.seq)  # the order the route was planned in
        assert planned[0].kind == "open", ref
        moments = [s.at for s in planned]
        assert moments == sorted(moments) and len(set(moments)) == len(moments), ref
