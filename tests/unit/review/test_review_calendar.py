"""Working-day calendars of both sides and the deadlines computed on them, with real 2026 dates."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.review.domain.calendar import (
    add_working_days,
    is_working_day,
    working_days_between,
)
from services.review.domain.deadlines import (
    breach,
    due_date,
    expected_decision_date,
    information_request_schedule,
)

BELGIAN_HOLIDAYS_2026 = [
    date(2026, 1, 1),  # New Year
    date(2026, 4, 6),  # Easter Monday
    date(2026, 5, 1),  # Labour Day
    date(2026, 5, 14),  # Ascension
    date(2026, 5, 25),  # Whit Monday
    date(2026, 7, 21),  # National Day
    date(2026, 8, 15),  # Assumption (a Saturday in 2026)
    date(2026, 11, 1),  # All Saints (a Sunday in 2026)
    date(2026, 11, 11),  # Armistice
    date(2026, 12, 25),  # Christmas
]


@pytest.mark.parametrize("day", BELGIAN_HOLIDAYS_2026, ids=str)
def test_belgian_public_holidays_are_not_eu_working_days(day: date) -> None:
    assert not is_working_day("EU", day)


def test_eu_weekdays_work_and_weekends_do_not() -> None:
    assert is_working_day("EU", date(2026, 4, 7))  # Tuesday after Easter
    assert not is_working_day("EU", date(2026, 4, 11))  # Saturday
    assert not is_working_day("EU", date(2026, 4, 12))  # Sunday


def test_spring_festival_2026_is_off_in_china_but_not_in_brussels() -> None:
    # 2026 schedule: off 15-23 Feb (Mon 16 to Fri 20 and Mon 23 on weekdays).
    for day in (16, 17, 18, 19, 20, 23):
        assert not is_working_day("CN", date(2026, 2, day)), day
        assert is_working_day("EU", date(2026, 2, day)), day
    assert is_working_day("CN", date(2026, 2, 24))


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 1, 4),  # Sunday before work resumes after New Year
        date(2026, 2, 14),  # Saturday before Spring Festival
        date(2026, 2, 28),  # Saturday after Spring Festival
        date(2026, 5, 9),  # Saturday after Labour Day
        date(2026, 9, 20),  # Sunday before National Day
        date(2026, 10, 10),  # Saturday after National Day
    ],
    ids=str,
)
def test_chinese_make_up_weekend_days_are_cn_working_days(day: date) -> None:
    assert day.weekday() >= 5
    assert is_working_day("CN", day)
    assert not is_working_day("EU", day)


def test_national_day_golden_week_is_off_in_china() -> None:
    for day in range(1, 8):
        assert not is_working_day("CN", date(2026, 10, day)), day
    assert is_working_day("CN", date(2026, 10, 8))


def test_joint_working_days_need_both_sides() -> None:
    assert not is_working_day("joint", date(2026, 5, 14))  # Ascension: Brussels is off
    assert is_working_day("CN", date(2026, 5, 14))
    assert not is_working_day("joint", date(2026, 2, 17))  # Spring Festival: Beijing is off
    assert not is_working_day("joint", date(2026, 2, 14))  # CN make-up Saturday, EU weekend
    assert is_working_day("joint", date(2026, 3, 3))


def test_adding_working_days_skips_easter_monday_in_brussels() -> None:
    # Thu 2 Apr + 3: Fri 3 (1), [weekend, Easter Monday 6], Tue 7 (2), Wed 8 (3).
    assert add_working_days("EU", date(2026, 4, 2), 3) == date(2026, 4, 8)


def test_adding_working_days_counts_a_make_up_saturday_in_china() -> None:
    # Thu 12 Feb + 3: Fri 13 (1), Sat 14 make-up (2), [15-23 off], Tue 24 (3).
    assert add_working_days("CN", date(2026, 2, 12), 3) == date(2026, 2, 24)


def test_adding_zero_working_days_is_the_start_itself() -> None:
    assert add_working_days("EU", date(2026, 4, 6), 0) == date(2026, 4, 6)
    with pytest.raises(ValueError):
        add_working_days("EU", date(2026, 4, 6), -1)


def test_working_days_between_counts_the_end_not_the_start() -> None:
    assert working_days_between("EU", date(2026, 4, 2), date(2026, 4, 8)) == 3
    assert working_days_between("EU", date(2026, 4, 8), date(2026, 4, 2)) == -3
    assert working_days_between("CN", date(2026, 9, 30), date(2026, 10, 8)) == 1


@given(
    st.sampled_from(["EU", "CN", "joint"]),
    st.dates(min_value=date(2025, 1, 1), max_value=date(2026, 12, 31)),
    st.integers(min_value=0, max_value=60),
)
def test_working_days_between_inverts_add_working_days(side: str, start: date, n: int) -> None:
    end = add_working_days(side, start, n)  # type: ignore[arg-type]
    assert working_days_between(side, start, end) == n  # type: ignore[arg-type]
    assert n == 0 or is_working_day(side, end)  # type: ignore[arg-type]


def test_unknown_calendar_side_is_an_error() -> None:
    with pytest.raises(ValueError):
        is_working_day("US", date(2026, 1, 5))  # type: ignore[arg-type]


# --- deadlines ------------------------------------------------------------------------------


def test_eu_screening_is_due_in_3_working_days_or_1_for_p1() -> None:
    assert due_date("eu_screening", date(2026, 4, 2), "P2") == date(2026, 4, 8)
    assert due_date("eu_screening", date(2026, 4, 2), "P1") == date(2026, 4, 3)


def test_a_pause_pushes_the_due_date_by_the_paused_working_days() -> None:
    assert due_date("eu_screening", date(2026, 4, 2), "P3", paused_working_days=2) == date(
        2026, 4, 10
    )


def test_cn_review_deadlines_run_on_the_chinese_calendar_from_acceptance() -> None:
    accepted = date(2026, 9, 28)  # Monday before Golden Week
    # Tue 29, Wed 30 (2), [1-7 Oct off], Thu 8, Fri 9 (4), Sat 10 make-up (5), 12-16 Oct (10).
    assert due_date("cn_review", accepted, "P1") == date(2026, 10, 16)
    assert due_date("cn_review", accepted, None, limit="statutory") == add_working_days(
        "CN", accepted, 45
    )


def test_information_request_schedule_defaults_to_10_7_and_20_working_days() -> None:
    schedule = information_request_schedule(date(2026, 5, 6))  # Wednesday
    # EU calendar: Ascension (14 May) and Whit Monday (25 May) are skipped.
    assert schedule.reminder == add_working_days("EU", date(2026, 5, 6), 7) == date(2026, 5, 18)
    assert schedule.due == date(2026, 5, 21)
    assert schedule.lapse == date(2026, 6, 5)


def test_a_short_answer_period_moves_the_reminder_before_the_due_date() -> None:
    schedule = information_request_schedule(date(2026, 3, 2), due_in_working_days=3)
    assert schedule.due == date(2026, 3, 5)
    assert schedule.reminder == date(2026, 3, 4)
    one_day = information_request_schedule(date(2026, 3, 2), due_in_working_days=1)
    assert one_day.reminder is None


def test_cn_review_past_its_channel_target_breaches_and_escalates() -> None:
    accepted = date(2026, 3, 2)
    due = due_date("cn_review", accepted, "P2")
    assert breach("cn_review", "P2", accepted, due) is None
    late = breach("cn_review", "P2", accepted, due + timedelta(days=1))
    assert late is not None
    assert (late.limit, late.due, late.action) == ("target", due, "escalate")


def test_cn_review_before_acknowledgement_has_no_breach() -> None:
    assert breach("cn_review", "P1", None, date(2027, 1, 1)) is None


def test_an_unanswered_request_breaches_at_the_lapse_limit() -> None:
    asked = date(2026, 3, 2)
    assert breach("awaiting_applicant", None, asked, date(2026, 3, 20)) is None  # past due only
    lapsed = breach("awaiting_applicant", None, asked, date(2026, 3, 31))
    assert lapsed is not None
    assert (lapsed.limit, lapsed.due, lapsed.action) == ("lapse", date(2026, 3, 30), "lapse")


def test_expected_decision_date_from_screening_sums_every_stage_ahead() -> None:
    # Screening due Wed 8 Apr (EU), queue +5 EU days: Wed 15 Apr, CN +20 CN days: Labour Day
    # break 1-5 May, make-up Sat 9 May counts.
    expected = expected_decision_date("eu_screening", "P2", date(2026, 4, 2), date(2026, 4, 2))
    queue_end = add_working_days("EU", date(2026, 4, 8), 5)
    assert queue_end == date(2026, 4, 15)
    assert expected == add_working_days("CN", queue_end, 20) == date(2026, 5, 15)


def test_p1_cases_expect_a_much_earlier_decision() -> None:
    expected = expected_decision_date("eu_screening", "P1", date(2026, 4, 2), date(2026, 4, 2))
    # 1 + 1 EU days (3 Apr, 7 Apr), then 10 CN days: 8-10, 13-17, 20-21 Apr.
    assert expected == date(2026, 4, 21)


def test_expected_decision_in_cn_review_counts_from_acknowledgement() -> None:
    acknowledged = date(2026, 3, 2)
    expected = expected_decision_date(
        "cn_review", "P2", date(2026, 2, 25), date(2026, 3, 3), acknowledged_on=acknowledged
    )
    assert expected == due_date("cn_review", acknowledged, "P2")


def test_an_overdue_stage_is_expected_to_end_today_at_the_earliest() -> None:
    today = date(2026, 6, 1)
    expected = expected_decision_date("queued", "P3", date(2026, 3, 2), today)
    assert expected == add_working_days("CN", today, 20)


def test_while_the_applicant_holds_the_case_the_answer_due_date_extends_the_stage() -> None:
    today = date(2026, 3, 4)
    answer_due = date(2026, 3, 11)  # 5 EU working days after today
    expected = expected_decision_date(
        "awaiting_applicant",
        "P2",
        date(2026, 3, 2),  # screening started
        today,
        previous_state="eu_screening",
        answer_due=answer_due,
    )
    screening_due = due_date("eu_screening", date(2026, 3, 2), "P2", paused_working_days=5)
    assert screening_due == date(2026, 3, 12)
    queue_end = add_working_days("EU", screening_due, 5)
    assert expected == add_working_days("CN", queue_end, 20)


def test_terminal_cases_expect_no_decision() -> None:
    assert expected_decision_date("approved", "P1", date(2026, 1, 5), date(2026, 2, 1)) is None


def test_a_case_not_yet_opened_has_the_whole_path_ahead() -> None:
    today = date(2026, 3, 2)  # Monday
    screening = add_working_days("EU", today, 3)
    queue = add_working_days("EU", screening, 5)
    expected = expected_decision_date("submitted", None, today, today)
    assert expected == add_working_days("CN", queue, 20) == date(2026, 4, 10)
