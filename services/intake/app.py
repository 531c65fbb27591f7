"""Wiring of the intake service: settings, runtime, routes and subscribers in one place."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.intake import portal
from services.intake.api import install_errors, router
from services.intake.domain import References
from services.intake.handlers import REVIEW_HANDLERS, prepare
from services.intake.settings import IntakeSettings
from shared.accounts.accounts import open_accounts
from shared.documents import open_store
from shared.events import REVIEW_STREAM
from shared.http import create_app
from shared.rawpg import RawConnections
from shared.redis import connect_blocking
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    runtime = ServiceRuntime(settings, MIGRATIONS)
    runtime.consume(REVIEW_STREAM, REVIEW_HANDLERS, prepare=prepare)
    app = create_app(
        title="REE Channel — intake",
        description="Applicants register their rare-earth export licence applications.",
        version="1.0.0",
        directory=runtime.directory,
        readiness=runtime.readiness,
        lifespan=runtime.lifespan(),
        max_body_bytes=settings.max_body_bytes,
        rate_limit_per_minute=settings.rate_limit_per_minute,
        body_limits={r"/documents$": settings.max_upload_bytes + 64 * 1024},
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.references = References(settings.references_key())
    # Validated here: a broken list stops intake at start, not at the first application.
    app.state.controlled_goods = settings.controlled_goods()
    app.state.documents = open_store(settings)
    # POST /v1/applications writes through plain psycopg connections on PostgreSQL.
    postgres = runtime.engine.dialect.name == "postgresql"
    app.state.writer = (
        RawConnections(runtime.engine, size=settings.db_pool_size) if postgres else None
    )
    # Company staff sign in to the portal (shared/accounts/): sessions, sign-in delays in Redis.
    app.state.accounts = open_accounts(runtime.directory, connect_blocking(settings), settings)
    app.include_router(router)
    install_errors(app)
    portal.install(app)
    return app
