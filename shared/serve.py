"""Serve one service's app with uvicorn, with logging and graceful shutdown on SIGTERM."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from shared.config import ServiceSettings


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    logging.basicConfig(
        level=settings.log_level,
        format=f"%(asctime)s {settings.service_name} %(levelname)s %(name)s: %(message)s",
    )
    # uvicorn finishes in-flight requests on SIGTERM before the lifespan stops the consumers.
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=20,
        proxy_headers=False,
    )
