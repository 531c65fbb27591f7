"""Settings of the notify service: where webhooks may go, how long to wait, how often to retry."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from services.notify.domain.retry import (
    DEFAULT_REQUEST_TIMEOUT_SECONDS,
    DISABLE_FAILING_ENDPOINT_AFTER,
    RETRY_SCHEDULE,
    RetryPolicy,
)
from services.notify.domain.sealing import KeyRing
from services.notify.domain.ssrf import WebhookURLPolicy
from shared.config import ServiceSettings

# The development key: anyone reading this file can open what it sealed, so production
# refuses it.
DEV_WEBHOOK_SECRETS_KEY = "ZGV2LW9ubHktd2ViaG9vay1zZWNyZXRzLWtleS0wMDA"


class NotifySettings(ServiceSettings):
    service_name: str = "notify"
    port: int = Field(8003, alias="NOTIFY_PORT")
    webhook_timeout_seconds: float = Field(
        DEFAULT_REQUEST_TIMEOUT_SECONDS, gt=0, alias="REE_WEBHOOK_TIMEOUT_SECONDS"
    )
    # Comma-separated CIDRs exempt from the private-address rule, each on every port or on
    # the ports it names (`127.0.0.0/8:9000-9099`, the demo's; tests allow all of loopback);
    # plain text rather than a list so the variable reads like the docs show it.
    webhook_allowed_networks: str = Field("", alias="REE_WEBHOOK_ALLOWED_NETWORKS")
    webhook_allow_http: bool = Field(False, alias="REE_WEBHOOK_ALLOW_HTTP")
    # Comma-separated seconds between attempts, replacing 5 s, 5 min, 30 min, 2 h, 5 h, 10 h,
    # 10 h; tests use a few seconds so that a retry story fits in one test.
    webhook_retry_schedule: str | None = Field(None, alias="REE_WEBHOOK_RETRY_SCHEDULE")
    webhook_disable_failing_after_seconds: float = Field(
        DISABLE_FAILING_ENDPOINT_AFTER.total_seconds(),
        gt=0,
        alias="REE_WEBHOOK_DISABLE_FAILING_AFTER_SECONDS",
    )
    delivery_poll_seconds: float = Field(1.0, gt=0, alias="REE_DELIVERY_POLL_SECONDS")
    # A claimed delivery returns to the pool this long after its request timed out, in case
    # the worker that claimed it died mid-attempt.
    delivery_lease_margin_seconds: float = Field(
        30, gt=0, alias="REE_DELIVERY_LEASE_MARGIN_SECONDS"
    )
    delivery_concurrency: int = Field(32, ge=1, alias="REE_DELIVERY_CONCURRENCY")
    secret_rotation_grace_hours: float = Field(24, ge=0, alias="REE_SECRET_ROTATION_GRACE_HOURS")
    max_endpoints_per_company: int = Field(20, ge=1, alias="REE_MAX_WEBHOOK_ENDPOINTS")
    # Messages, deliveries and attempts older than this leave the delivery log (none with a
    # delivery still pending); services/notify/store/log_retention.py.
    delivery_log_days: float = Field(90, gt=0, alias="REE_DELIVERY_LOG_DAYS")
    # The keys that seal the endpoints' signing secrets at rest (AES-256-GCM, 32 bytes in
    # base64url; `reechannel webhook-secrets new-key`): the current one, and the old ones
    # still opening values sealed before a rotation (comma-separated).
    webhook_secrets_key: str = Field(DEV_WEBHOOK_SECRETS_KEY, alias="REE_WEBHOOK_SECRETS_KEY")
    webhook_secrets_old_keys: str = Field("", alias="REE_WEBHOOK_SECRETS_OLD_KEYS")

    @model_validator(mode="after")
    def _check_policies(self) -> NotifySettings:
        # A typo in an operator setting must stop the service at start, not at first delivery.
        self.url_policy()
        self.retry_policy()
        self.key_ring()
        if self.environment == "production" and self.webhook_secrets_key == DEV_WEBHOOK_SECRETS_KEY:
            raise ValueError("REE_WEBHOOK_SECRETS_KEY must be set in production")
        return self

    def key_ring(self) -> KeyRing:
        return KeyRing.of(self.webhook_secrets_key, self.webhook_secrets_old_keys.split(","))

    def url_policy(self) -> WebhookURLPolicy:
        networks = [n for n in self.webhook_allowed_networks.split(",") if n.strip()]
        return WebhookURLPolicy.from_settings(networks, allow_http=self.webhook_allow_http)

    def retry_policy(self) -> RetryPolicy:
        delays = RETRY_SCHEDULE
        if self.webhook_retry_schedule:
            try:
                seconds = [float(s) for s in self.webhook_retry_schedule.split(",") if s.strip()]
            except ValueError as exc:
                raise ValueError(
                    "REE_WEBHOOK_RETRY_SCHEDULE must be comma-separated seconds"
                ) from exc
            if any(s <= 0 for s in seconds):
                raise ValueError("REE_WEBHOOK_RETRY_SCHEDULE delays must be positive")
            delays = tuple(timedelta(seconds=s) for s in seconds)
        return RetryPolicy(
            delays=delays,
            disable_failing_endpoint_after=timedelta(
                seconds=self.webhook_disable_failing_after_seconds
            ),
            request_timeout_seconds=self.webhook_timeout_seconds,
        )

    @property
    def secret_rotation_grace(self) -> timedelta:
        return timedelta(hours=self.secret_rotation_grace_hours)

    @property
    def lease(self) -> timedelta:
        """How long a claimed delivery stays with one worker before another may take it over."""
        return timedelta(seconds=self.webhook_timeout_seconds + self.delivery_lease_margin_seconds)
