"""The endpoint-health rule: when an endpoint stops receiving webhooks, as pure logic.

An endpoint is switched off (Svix's rule) when its receiver answers `410 Gone`, or when
every attempt has failed for `RetryPolicy.disable_failing_endpoint_after` (5 days) since
the first failure after its last success. Any success ends the failing streak. The worker
applies this to every attempt it records; the store writes only what changed, so a
success on a healthy endpoint writes nothing.
"""

from __future__ import annotations

from datetime import datetime

from services.notify.domain import retry

ACTIVE = "active"
DISABLED = "disabled"

GONE_REASON = "The receiver answered 410 Gone, so the endpoint was disabled."


def failing_reason(failing_since: datetime | None) -> str:
    """What the endpoint's owner reads after it was disabled for failing too long."""
    since = failing_since.isoformat() if failing_since else "a long time"
    return f"Every delivery has failed since {since}, so the endpoint was disabled."


class EndpointHealth:
    """An endpoint's status and failing streak while a batch of attempts is recorded.

    A batch may hold several attempts to one endpoint: each changes this in turn, and only
    the first that disables the endpoint gives it a reason.
    """

    def __init__(self, status: str, failing_since: datetime | None) -> None:
        self.status = status
        self.failing_since = self.loaded_failing_since = failing_since
        # Set when an attempt of this batch disabled the endpoint (None: it did not).
        self.disable_reason: str | None = None

    @property
    def streak_changed(self) -> bool:
        """Whether the failing streak differs from what was read from the database."""
        return self.failing_since != self.loaded_failing_since

    def succeeded(self) -> None:
        self.failing_since = None

    def gone(self) -> None:
        """The receiver answered 410: switch the endpoint off, if it was on."""
        if self.status == ACTIVE:
            self._disable(GONE_REASON)

    def failed(self, attempted_at: datetime, now: datetime, policy: retry.RetryPolicy) -> bool:
        """Another failed attempt; True when it disables the endpoint (failing for too long)."""
        self.failing_since = self.failing_since or attempted_at
        if self.status == ACTIVE and retry.should_disable(self.failing_since, now, policy=policy):
            self._disable(failing_reason(self.failing_since))
            return True
        return False

    def _disable(self, reason: str) -> None:
        self.status, self.disable_reason = DISABLED, reason
