"""When to try a webhook delivery again, when to give up, and when to disable an endpoint."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

# Waits after each failed attempt: the first attempt is immediate, so 8 attempts in all,
# spread over about 28 hours, which covers a receiver's overnight outage.
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
# Jitter spreads the retries of many deliveries that failed together (a receiver that was
# down) so they do not all arrive again in the same second.
RETRY_JITTER = 0.2
# A receiver's Retry-After can slow us down up to a day; it can never speed us up, and a
# longer value is cut to a day so one header cannot park a delivery past the retry window.
RETRY_AFTER_MIN = timedelta(seconds=1)
RETRY_AFTER_MAX = timedelta(hours=24)
# An endpoint that has failed every delivery for this long is switched off (Svix's rule).
DISABLE_FAILING_ENDPOINT_AFTER = timedelta(days=5)
# Default for the HTTP client of the delivery worker; the service's settings override it.
DEFAULT_REQUEST_TIMEOUT_SECONDS = 15.0

Uniform = Callable[[float, float], float]


class Outcome(StrEnum):
    """What one delivery attempt means for the message and for its endpoint."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    # 410 Gone: the receiver says the endpoint no longer exists; stop this message and
    # disable the endpoint rather than retry for days.
    DISABLE_ENDPOINT = "disable_endpoint"


@dataclass(frozen=True)
class RetryPolicy:
    """The retry and endpoint-health rules as data, so settings and tests can change them."""

    delays: tuple[timedelta, ...] = RETRY_SCHEDULE
    jitter: float = RETRY_JITTER
    retry_after_min: timedelta = RETRY_AFTER_MIN
    retry_after_max: timedelta = RETRY_AFTER_MAX
    disable_failing_endpoint_after: timedelta = DISABLE_FAILING_ENDPOINT_AFTER
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1


DEFAULT_RETRY_POLICY = RetryPolicy()


def classify(status_code: int | None, error: str | None = None) -> Outcome:
    """The outcome of an attempt from its HTTP status, or from its error when nothing answered.

    Only 2xx is success. Redirects count as failures: the worker must not follow them,
    since a redirect could point at an address the URL policy refused.
    """
    if status_code is None:
        if not error:
            # A delivery log row without a status needs the reason it has none.
            raise ValueError("an attempt without a response must say what went wrong")
        return Outcome.RETRY
    if 200 <= status_code < 300:
        return Outcome.SUCCEEDED
    if status_code == 410:
        return Outcome.DISABLE_ENDPOINT
    return Outcome.RETRY


def parse_retry_after(value: str | None, now: datetime) -> timedelta | None:
    """A Retry-After header (delay in seconds, or an HTTP date) as a wait from now.

    None when absent or unreadable: a malformed header is ignored, not an error, since
    the schedule already gives a sensible wait.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        # Anything past a few years is clamped later anyway; capping here keeps a
        # hostile 10,000-digit header from costing anything.
        return timedelta(seconds=int(value)) if len(value) <= 9 else timedelta.max
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # HTTP dates are always GMT; "-0000" parses as naive.
        when = when.replace(tzinfo=UTC)
    return when - now


def next_attempt_at(
    attempt_number: int,
    now: datetime,
    retry_after_header: str | None = None,
    *,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    uniform: Uniform = random.uniform,
) -> datetime | None:
    """When to try again after attempt `attempt_number` (1 = the first) failed; None = give up.

    The wait is the schedule's delay with jitter; a Retry-After header, clamped to
    [retry_after_min, retry_after_max], replaces it only when it asks for a longer wait.
    """
    if attempt_number < 1:
        raise ValueError(f"attempt numbers start at 1, got {attempt_number}")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if attempt_number >= policy.max_attempts:
        return None
    scheduled = policy.delays[attempt_number - 1]
    wait = scheduled * (1 + uniform(-policy.jitter, policy.jitter))
    asked = parse_retry_after(retry_after_header, now)
    if asked is not None:
        asked = min(max(asked, policy.retry_after_min), policy.retry_after_max)
        wait = max(wait, asked)
    return now + wait


def should_disable(
    first_failure_at: datetime | None,
    now: datetime,
    *,
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> bool:
    """Whether an endpoint failing without a success since `first_failure_at` is to be disabled.

    `first_failure_at` is the first failed attempt after the endpoint's last success
    (None when its latest attempt succeeded); any success resets it.
    """
    if first_failure_at is None:
        return False
    return now - first_failure_at >= policy.disable_failing_endpoint_after
