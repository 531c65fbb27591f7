"""Serve one service's app with uvicorn, with logging, graceful shutdown on SIGTERM and limits.

The limits (red-team finding F19): uvicorn bounds the idle time between requests
(`timeout_keep_alive`), the size of an incomplete request head (h11 only) and, with
`limit_concurrency`, the connections and tasks at once (503 beyond), but it has no timeout
for reading a request's head: a client that sends part of a request line and waits kept a
connection open as long as it liked. `HeadTimeoutProtocol` closes a connection whose
request line and headers have not all arrived within `REE_HEADER_TIMEOUT_SECONDS` of the
request's first byte (or of the connection, for its first request).
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shared import logs, tracing
from shared.config import ServiceSettings


class ServerLimits(BaseSettings):
    """The HTTP server's own limits, read from the environment."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", env_file=None)

    header_timeout_seconds: float = Field(10.0, gt=0, alias="REE_HEADER_TIMEOUT_SECONDS")
    keep_alive_seconds: int = Field(5, ge=1, alias="REE_KEEP_ALIVE_SECONDS")
    max_head_bytes: int = Field(64 * 1024, ge=1024, alias="REE_MAX_HEAD_BYTES")
    limit_concurrency: int = Field(2048, ge=1, alias="REE_LIMIT_CONCURRENCY")


class HeadTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head is late.

    The timer starts when the connection opens and again at each request's first byte, and
    stops when the headers are complete; bytes trickling in do not restart it.
    """

    header_timeout: float = ServerLimits.model_fields["header_timeout_seconds"].default
    max_head_bytes: int = ServerLimits.model_fields["max_head_bytes"].default

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._in_head = False

    def _arm_head_timer(self) -> None:
        self._disarm_head_timer()
        self._in_head, self._head_bytes = True, 0
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _disarm_head_timer(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # Still no whole head after these bytes: httptools sets no bound on its size.
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._disarm_head_timer()
                self.send_400_response("Request head too large.")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()


def protocol_with(limits: ServerLimits) -> type[HeadTimeoutProtocol]:
    """The protocol class with these limits (uvicorn instantiates it per connection)."""
    return type(
        "LimitedHTTPProtocol",
        (HeadTimeoutProtocol,),
        {"header_timeout": limits.header_timeout_seconds, "max_head_bytes": limits.max_head_bytes},
    )


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    logs.configure(settings.service_name, settings.log_level, settings.log_format)
    tracing.configure(settings.service_name)
    limits = ServerLimits()
    # uvicorn finishes in-flight requests on SIGTERM before the lifespan stops the consumers.
    try:
        _run(app, settings, limits)
    finally:
        tracing.shutdown()  # the spans still buffered leave before the process does


def _run(app: FastAPI, settings: ServiceSettings, limits: ServerLimits) -> None:
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        # uvicorn's loggers go to the root handler, in the service's log format.
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=20,
        proxy_headers=False,
        http=protocol_with(limits),
        timeout_keep_alive=limits.keep_alive_seconds,
        h11_max_incomplete_event_size=limits.max_head_bytes,
        limit_concurrency=limits.limit_concurrency,
    )
