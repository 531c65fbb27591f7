"""Wiring of the review service: settings, runtime, casework, routes, subscribers, ticker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from fastapi import FastAPI

from services.review import console
from services.review.api import install_domain_errors, router
from services.review.casework import Casework
from services.review.handlers import intake_handlers, prepare_read
from services.review.metrics import router as metrics_router
from services.review.settings import ReviewSettings
from shared.db import session_scope
from shared.events import INTAKE_STREAM
from shared.http import create_app
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"
log = logging.getLogger(__name__)


def build(settings: ReviewSettings | None = None) -> FastAPI:
    settings = settings or ReviewSettings()
    runtime = ServiceRuntime(settings, MIGRATIONS)
    casework = Casework(runtime.directory)
    runtime.consume(
        INTAKE_STREAM,
        intake_handlers(casework),
        after_commit=lambda _e: runtime.relay.wake(),
        prepare=prepare_read(casework),
    )

    async def deadline_ticker(stop: asyncio.Event) -> None:
        """Lapse unanswered requests and escalate breached stages, on every replica safely."""
        while not stop.is_set():
            try:
                acted = await asyncio.to_thread(_check, runtime, casework)
                if acted:
                    runtime.relay.wake()
            except Exception:
                log.exception("deadline check failed; retrying next tick")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=settings.deadline_check_seconds)

    runtime.workers.append(deadline_ticker)
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
    install_domain_errors(app)
    app.include_router(router)
    app.include_router(metrics_router)
    console.install(app)
    return app


def _check(runtime: ServiceRuntime, casework: Casework) -> int:
    with session_scope(runtime.engine) as session:
        return casework.check_deadlines(session)
