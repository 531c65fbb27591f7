"""The framework's floor: a bare FastAPI endpoint that validates the same body, one INSERT.

Same stack as the services (FastAPI, pydantic, uvicorn, SQLAlchemy with psycopg, the same
engine settings from shared.db) and nothing else: no authentication, no outbox, no events.
Run as `python -m bench.baseline` with BENCH_PORT, DATABASE_URL and REE_SCHEMA_PREFIX.
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shared.applications import ApplicationBody
from shared.config import CommonSettings
from shared.db import make_engine

COMPONENT = "baseline"


def build() -> FastAPI:
    settings = CommonSettings()
    engine = make_engine(settings, COMPONENT)
    schema = settings.schema_for(COMPONENT)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS applications ("
                " id bigserial PRIMARY KEY, body json NOT NULL,"
                " created_at timestamptz NOT NULL DEFAULT now())"
            )
        )
    app = FastAPI(title="baseline")
    insert = text("INSERT INTO applications (body) VALUES (:body) RETURNING id")

    @app.post("/v1/applications", status_code=201)
    def submit(body: ApplicationBody) -> JSONResponse:
        with engine.begin() as conn:
            new_id = conn.execute(insert, {"body": body.model_dump_json()}).scalar_one()
        return JSONResponse({"id": str(new_id)}, status_code=201)

    @app.get("/readyz")
    def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


if __name__ == "__main__":
    uvicorn.run(
        build(),
        host="127.0.0.1",
        port=int(os.environ["BENCH_PORT"]),
        log_level="warning",
        access_log=False,
    )
