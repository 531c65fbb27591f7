"""The endpoint-health rule: 410 disables at once, failing for 5 days disables, a success resets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.notify.domain.health import (
    ACTIVE,
    DISABLED,
    GONE_REASON,
    EndpointHealth,
    failing_reason,
)
from services.notify.domain.retry import RetryPolicy

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FIVE_DAYS = RetryPolicy()
ONE_HOUR = RetryPolicy(disable_failing_endpoint_after=timedelta(hours=1))


def test_a_first_failure_starts_the_streak_and_does_not_disable() -> None:
    health = EndpointHealth(ACTIVE, None)
    assert not health.failed(NOW, NOW, FIVE_DAYS)
    assert health.failing_since == NOW
    assert health.streak_changed
    assert (health.status, health.disable_reason) == (ACTIVE, None)


def test_later_failures_keep_the_streaks_first_failure() -> None:
    started = NOW - timedelta(days=2)
    health = EndpointHealth(ACTIVE, started)
    assert not health.failed(NOW, NOW, FIVE_DAYS)
    assert health.failing_since == started
    assert not health.streak_changed, "nothing to write: the stored streak is the same"


def test_failing_for_the_whole_period_disables_with_the_streaks_start() -> None:
    started = NOW - timedelta(days=5)
    health = EndpointHealth(ACTIVE, started)
    assert health.failed(NOW, NOW, FIVE_DAYS)
    assert health.status == DISABLED
    assert health.disable_reason == failing_reason(started)
    assert started.isoformat() in (health.disable_reason or "")


def test_failing_a_second_less_than_the_period_does_not_disable() -> None:
    health = EndpointHealth(ACTIVE, NOW - timedelta(days=5) + timedelta(seconds=1))
    assert not health.failed(NOW, NOW, FIVE_DAYS)
    assert health.status == ACTIVE


def test_the_period_comes_from_the_policy() -> None:
    health = EndpointHealth(ACTIVE, NOW - timedelta(hours=1))
    assert health.failed(NOW, NOW, ONE_HOUR)


def test_a_success_ends_the_streak() -> None:
    health = EndpointHealth(ACTIVE, NOW - timedelta(days=4))
    health.succeeded()
    assert health.failing_since is None
    assert health.streak_changed
    # A new failure then starts a new streak, far from the 5 days.
    assert not health.failed(NOW, NOW, FIVE_DAYS)
    assert health.failing_since == NOW


def test_a_success_on_a_healthy_endpoint_changes_nothing_to_write() -> None:
    health = EndpointHealth(ACTIVE, None)
    health.succeeded()
    assert not health.streak_changed
    assert health.disable_reason is None


def test_410_gone_disables_an_active_endpoint_at_once() -> None:
    health = EndpointHealth(ACTIVE, None)
    health.gone()
    assert (health.status, health.disable_reason) == (DISABLED, GONE_REASON)


def test_an_endpoint_already_disabled_is_not_disabled_again() -> None:
    gone_twice = EndpointHealth(ACTIVE, None)
    gone_twice.gone()
    gone_twice.gone()
    assert gone_twice.disable_reason == GONE_REASON
    # Disabled before the batch: neither 410 nor a long streak gives it a (new) reason.
    stored = EndpointHealth(DISABLED, NOW - timedelta(days=30))
    stored.gone()
    assert not stored.failed(NOW, NOW, FIVE_DAYS)
    assert stored.disable_reason is None


def test_the_first_reason_in_a_batch_wins() -> None:
    health = EndpointHealth(ACTIVE, NOW - timedelta(days=6))
    assert health.failed(NOW, NOW, FIVE_DAYS)
    health.gone()
    assert health.disable_reason == failing_reason(NOW - timedelta(days=6))
