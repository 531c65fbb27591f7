"""Wiring of the review service: settings, runtime, casework, routes, subscribers, ticker."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import FastAPI

from services.review import audit_service, console, problems
from services.review.api import router
from services.review.digest import DailyDigest
from services.review.handlers import intake_handlers, prepare_read
from services.review.metrics.api import router as metrics_router
from services.review.service import Casework, rescore_open_cases
from services.review.settings import ReviewSettings
from shared.accounts.accounts import open_accounts
from shared.db import session_scope, utcnow
from shared.documents import open_store
from shared.events import INTAKE_STREAM
from shared.http import create_app
from shared.i18n import Languages
from shared.redis import connect_blocking
from shared.runtime import ServiceRuntime, every

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: ReviewSettings | None = None) -> FastAPI:
    settings = settings or ReviewSettings()
    runtime = ServiceRuntime(settings, MIGRATIONS)
    audit_keys = audit_service.AuditKeys.from_settings(settings)
    casework = Casework(runtime.directory, audit_key=audit_keys.chain_key)
    runtime.consume(
        INTAKE_STREAM,
        intake_handlers(casework),
        after_commit=lambda _e: runtime.relay.wake(),
        prepare=prepare_read(casework),
    )

    def woke(acted: int) -> None:
        if acted:
            runtime.relay.wake()

    # Lapse unanswered requests and escalate breached stages, on every replica safely.
    runtime.workers.append(
        every(
            settings.deadline_check_seconds,
            lambda: _check(runtime, casework),
            "deadline check",
            then=woke,
        )
    )
    # Urgency ages: each open case scored again once a day, and under rules another replica
    # adopted; looked at every interval, so a new day is taken up within one.
    runtime.workers.append(
        every(
            settings.priority_rescore_seconds,
            lambda: rescore_open_cases(runtime.engine, casework),
            "priority re-scoring",
            then=woke,
        )
    )
    # A signed checkpoint of every case's audit heads when the last is older than the interval
    # (daily by default); looked at hourly at most, so a restart does not issue another one.
    started = utcnow()
    runtime.workers.append(
        every(
            min(settings.audit_checkpoint_seconds, 3600.0),
            lambda: _checkpoint(runtime, audit_keys, settings.audit_checkpoint_seconds, started),
            "audit checkpoint",
            then=woke,
        )
    )
    app = create_app(
        title="REE Channel — review",
        description="EU and Chinese officials review licence applications under one protocol.",
        version="1.0.0",
        directory=runtime.directory,
        readiness=runtime.readiness,
        lifespan=runtime.lifespan(),
        max_body_bytes=settings.max_body_bytes,
        rate_limit_per_minute=settings.rate_limit_per_minute,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.casework = casework
    app.state.audit_keys = audit_keys
    # People sign in to the console (shared/accounts/): sessions, sign-in delays in Redis.
    app.state.accounts = open_accounts(runtime.directory, connect_blocking(settings), settings)
    # Intake writes the documents' bytes, review reads them: the same store (never intake's
    # tables; which documents a case has comes from intake's events).
    app.state.documents = open_store(settings)
    # Domain errors become problem details in one place (services/review/problems.py).
    problems.install(app)
    app.include_router(router)
    app.include_router(metrics_router)
    console.install(app)
    app.state.digest = daily_digest(settings, runtime, casework, app.state.console_templates)
    # Each official's digest once a working day, on every replica safely (a claimed row each).
    runtime.workers.append(
        every(settings.digest_check_seconds, app.state.digest.tick, "daily digest")
    )
    return app


def daily_digest(
    settings: ReviewSettings, runtime: ServiceRuntime, casework: Casework, languages: Languages
) -> DailyDigest:
    return DailyDigest(
        runtime.engine,
        runtime.directory,
        casework.protocol,
        languages,
        settings,
        settings.console_url,
        settings.digest_days,
        settings.digest_hour,
    )


def _check(runtime: ServiceRuntime, casework: Casework) -> int:
    with session_scope(runtime.engine) as session:
        return casework.check_deadlines(session)


def _checkpoint(
    runtime: ServiceRuntime, keys: audit_service.AuditKeys, every_seconds: float, started: datetime
) -> int:
    with session_scope(runtime.engine) as session:
        if not audit_service.checkpoint_due(session, every_seconds, started):
            return 0
    return len(audit_service.issue_with_retry(runtime.engine, keys))
