"""What every service's HTTP app has: problem details, auth, limits, health, readiness, metrics."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import problems
from shared.directory import CredentialKind, Directory, InvalidCredential, Principal
from shared.metrics import REQUESTS
from shared.problems import Problem, problem_response

Readiness = Callable[[], Awaitable[dict[str, bool]]]

_bearer = HTTPBearer(auto_error=False, description="An applicant API key or an official token")


class BodyLimit:
    """Refuses request bodies over a limit with 413 before the route reads them."""

    def __init__(self, app: ASGIApp, default: int, per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.per_path = [(re.compile(p), n) for p, n in (per_path or {}).items()]

    def _limit(self, path: str) -> int:
        for pattern, limit in self.per_path:
            if pattern.search(path):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _too_large(limit)(scope, receive, send)


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


def _too_large(limit: int) -> JSONResponse:
    return problem_response(
        413, "Payload too large", f"The request body exceeds {limit} bytes.", "payload-too-large"
    )


class RateLimiter:
    """A fixed one-minute window per credential, per process."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one request; return seconds to wait when over the limit, else None."""
        now = time.time()
        window = int(now // 60)
        with self._lock:
            current, count = self._windows.get(key, (window, 0))
            if current != window:
                current, count = window, 0
            count += 1
            self._windows[key] = (current, count)
            if len(self._windows) > 100_000:
                self._windows = {k: v for k, v in self._windows.items() if v[0] == window}
        if count > self.per_minute:
            return max(1, int(60 - now % 60))
        return None


def authenticated(request: Request, creds: HTTPAuthorizationCredentials | None) -> Principal:
    directory: Directory = request.app.state.directory
    if creds is None or not creds.credentials:
        raise Problem(
            401,
            "Unauthorized",
            "An Authorization: Bearer credential is required.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = directory.authenticate(creds.credentials)
    except InvalidCredential as exc:
        raise Problem(
            401,
            "Unauthorized",
            "The credential is not valid.",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        ) from exc
    wait = request.app.state.rate_limiter.hit(principal.credential_id)
    if wait is not None:
        raise Problem(
            429,
            "Too many requests",
            "Rate limit exceeded for this credential.",
            headers={"Retry-After": str(wait)},
        )
    request.state.principal = principal
    return principal


def current_principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> Principal:
    return authenticated(request, creds)


def current_applicant(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.kind != CredentialKind.applicant:
        raise Problem(403, "Forbidden", "This route is for applicants (company API keys).")
    return principal


def current_official(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.kind != CredentialKind.official:
        raise Problem(403, "Forbidden", "This route is for officials.")
    return principal


def current_operator(principal: Principal = Depends(current_principal)) -> Principal:
    if principal.kind != CredentialKind.operator:
        raise Problem(403, "Forbidden", "This route is for operators.")
    return principal


def create_app(
    *,
    title: str,
    description: str,
    version: str,
    directory: Directory,
    readiness: Readiness,
    lifespan: Any,
    max_body_bytes: int,
    rate_limit_per_minute: int,
    body_limits: dict[str, int] | None = None,
) -> FastAPI:
    app = FastAPI(title=title, description=description, version=version, lifespan=lifespan)
    app.state.directory = directory
    app.state.rate_limiter = RateLimiter(rate_limit_per_minute)
    problems.install(app)

    @app.middleware("http")
    async def _observe(request: Request, call_next: Any) -> Any:
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None and not runtime.booted and request.url.path.startswith("/v1"):
            return problem_response(
                503,
                "Service unavailable",
                "The service is starting: waiting for its database.",
                headers={"Retry-After": "2"},
            )
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        REQUESTS.labels(
            request.method, getattr(route, "path", "unmatched"), str(response.status_code)
        ).observe(time.perf_counter() - started)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    app.add_middleware(BodyLimit, default=max_body_bytes, per_path=body_limits)

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="Its database and Redis answer")
    async def readyz() -> JSONResponse:
        checks = await readiness()
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


def page_params(limit: int | None, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if limit < 1 or limit > maximum:
        raise problems.invalid([{"field": "limit", "message": f"must be between 1 and {maximum}"}])
    return limit
