"""Retry schedule, Retry-After, attempt outcomes and the failing-endpoint rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from services.notify.domain.retry import (
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DEFAULT_RETRY_POLICY,
    RETRY_SCHEDULE,
    Outcome,
    RetryPolicy,
    classify,
    next_attempt_at,
    parse_retry_after,
    should_disable,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def no_jitter(low: float, high: float) -> float:
    return 0.0


def most_jitter(low: float, high: float) -> float:
    return high


def least_jitter(low: float, high: float) -> float:
    return low


def test_schedule_is_5s_5min_30min_2h_5h_10h_10h() -> None:
    assert [d.total_seconds() for d in RETRY_SCHEDULE] == [
        5,
        5 * 60,
        30 * 60,
        2 * 3600,
        5 * 3600,
        10 * 3600,
        10 * 3600,
    ]


def test_eight_attempts_in_all_then_give_up() -> None:
    assert DEFAULT_RETRY_POLICY.max_attempts == 8
    waits = []
    for attempt in range(1, 8):
        at = next_attempt_at(attempt, NOW, uniform=no_jitter)
        assert at is not None
        waits.append(at - NOW)
    assert waits == list(RETRY_SCHEDULE)
    assert next_attempt_at(8, NOW, uniform=no_jitter) is None


def test_jitter_stays_within_twenty_percent() -> None:
    assert next_attempt_at(2, NOW, uniform=most_jitter) == NOW + timedelta(minutes=6)
    assert next_attempt_at(2, NOW, uniform=least_jitter) == NOW + timedelta(minutes=4)


def test_real_jitter_varies_within_bounds() -> None:
    waits = {next_attempt_at(4, NOW) for _ in range(50)}
    assert len(waits) > 1
    for at in waits:
        assert at is not None
        assert timedelta(hours=1.6) <= at - NOW <= timedelta(hours=2.4)


def test_retry_after_seconds_longer_than_the_schedule_is_honoured() -> None:
    assert next_attempt_at(1, NOW, "120", uniform=no_jitter) == NOW + timedelta(seconds=120)


def test_retry_after_http_date_is_honoured() -> None:
    header = format_datetime(NOW + timedelta(minutes=45), usegmt=True)
    assert next_attempt_at(2, NOW, header, uniform=no_jitter) == NOW + timedelta(minutes=45)


def test_retry_after_never_makes_us_retry_sooner_than_the_schedule() -> None:
    assert next_attempt_at(3, NOW, "1", uniform=no_jitter) == NOW + timedelta(minutes=30)


def test_retry_after_beyond_a_day_is_clamped_to_a_day() -> None:
    assert next_attempt_at(1, NOW, str(7 * 24 * 3600), uniform=no_jitter) == NOW + timedelta(
        hours=24
    )
    assert next_attempt_at(1, NOW, "9" * 5000, uniform=no_jitter) == NOW + timedelta(hours=24)


def test_retry_after_in_the_past_falls_back_to_the_schedule() -> None:
    header = format_datetime(NOW - timedelta(hours=1), usegmt=True)
    assert next_attempt_at(1, NOW, header, uniform=no_jitter) == NOW + timedelta(seconds=5)


@pytest.mark.parametrize("header", ["soon", "-5", "1.5", "", "Wed, 99 Foo 2026"])
def test_unreadable_retry_after_is_ignored(header: str) -> None:
    assert parse_retry_after(header, NOW) is None
    assert next_attempt_at(1, NOW, header, uniform=no_jitter) == NOW + timedelta(seconds=5)


def test_retry_after_does_not_add_attempts() -> None:
    assert next_attempt_at(8, NOW, "60") is None


def test_attempt_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        next_attempt_at(0, NOW)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError):
        next_attempt_at(1, NOW.replace(tzinfo=None))


def test_a_policy_from_settings_changes_the_schedule() -> None:
    fast = RetryPolicy(delays=(timedelta(seconds=1), timedelta(seconds=2)), jitter=0.0)
    assert fast.max_attempts == 3
    assert next_attempt_at(2, NOW, policy=fast) == NOW + timedelta(seconds=2)
    assert next_attempt_at(3, NOW, policy=fast) is None


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_only_2xx_is_success(status: int) -> None:
    assert classify(status) is Outcome.SUCCEEDED


@pytest.mark.parametrize("status", [100, 301, 302, 304, 400, 401, 404, 409, 429, 500, 502, 503])
def test_other_statuses_including_redirects_are_retried(status: int) -> None:
    assert classify(status) is Outcome.RETRY


def test_410_gone_disables_the_endpoint() -> None:
    assert classify(410) is Outcome.DISABLE_ENDPOINT


def test_no_response_is_retried() -> None:
    assert classify(None, "timed out after 15 s") is Outcome.RETRY


def test_no_response_without_an_error_is_a_programming_mistake() -> None:
    with pytest.raises(ValueError):
        classify(None)


def test_endpoint_failing_for_five_days_is_disabled() -> None:
    first_failure = NOW - timedelta(days=5)
    assert should_disable(first_failure, NOW)
    assert not should_disable(first_failure + timedelta(seconds=1), NOW)


def test_endpoint_whose_last_attempt_succeeded_is_not_disabled() -> None:
    assert not should_disable(None, NOW)


def test_request_timeout_default_is_fifteen_seconds() -> None:
    assert DEFAULT_REQUEST_TIMEOUT_SECONDS == 15.0
    assert DEFAULT_RETRY_POLICY.request_timeout_seconds == 15.0
