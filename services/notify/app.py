"""Wiring of the notify service: settings, runtime, routes, subscribers and the delivery worker."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from services.notify.api import install_errors, router
from services.notify.email import Mailer
from services.notify.handlers import INTAKE_HANDLERS, REVIEW_HANDLERS, writer
from services.notify.settings import NotifySettings
from services.notify.store import sealed
from services.notify.store.log_retention import delivery_log_rules
from services.notify.worker import DeliveryWorker
from shared.events import INTAKE_STREAM, REVIEW_STREAM, CloudEvent
from shared.forwarded import accept_forwarded_sessions
from shared.http import create_app
from shared.mail import MailSettings
from shared.runtime import ServiceRuntime

MIGRATIONS = Path(__file__).parent / "migrations"


def build(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings()
    runtime = ServiceRuntime(settings, MIGRATIONS)
    sealed.use_keys(settings.key_ring())
    # Secrets stored before sealing are sealed now; a secret sealed with a key not configured
    # stops the service before it signs anything.
    runtime.after_migrations.append(lambda: sealed.reseal(runtime.engine, only_plain=True))
    mail = MailSettings()
    worker = DeliveryWorker(
        runtime.engine, settings, runtime.redis, Mailer(mail, runtime.directory_engine)
    )
    # E-mail to people only where SMTP is configured: otherwise no e-mail endpoint is kept.
    write = writer(runtime.directory_engine if mail.enabled else None)

    def new_messages(_event: CloudEvent) -> None:
        worker.wake()

    for stream, handlers in ((INTAKE_STREAM, INTAKE_HANDLERS), (REVIEW_STREAM, REVIEW_HANDLERS)):
        consumer = runtime.consume(stream, handlers, after_commit=new_messages, finish=write)
        worker.follow(consumer.stream, consumer.group, handlers)
    runtime.workers.append(worker.run)
    # The claim's plans depend on how many deliveries are pending, which a burst changes
    # by thousands within seconds; and every delivery's updates leave dead rows.
    runtime.upkeep("webhook_deliveries")
    runtime.pruning.extra.append(delivery_log_rules(settings.delivery_log_days))
    app = create_app(
        title="REE Channel — notify",
        description=(
            "Applicants register webhook endpoints and receive signed notifications "
            "(Standard Webhooks) about their applications."
        ),
        version="1.0.0",
        directory=runtime.directory,
        readiness=runtime.readiness,
        lifespan=runtime.lifespan(),
        max_body_bytes=settings.max_body_bytes,
        rate_limit_per_minute=settings.rate_limit_per_minute,
    )
    app.state.settings = settings
    app.state.runtime = runtime
    app.state.worker = worker
    app.state.mail = mail
    # The portal (on intake) calls the company routes for its signed-in staff.
    accept_forwarded_sessions(app, runtime.directory_engine)
    app.include_router(router)
    install_errors(app)
    return app
