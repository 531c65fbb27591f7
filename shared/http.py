"""What every service's HTTP app has: problem details, auth, limits, health, readiness, metrics."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import re
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import fastapi_offline
from fastapi import Depends, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import problems
from shared.directory import CredentialKind, Directory, InvalidCredential, Principal
from shared.metrics import REQUESTS
from shared.problems import Problem, problem_response
from shared.ratelimit import LocalWindows
from shared.tracing import REQUEST_TELEMETRY

Readiness = Callable[[], Awaitable[dict[str, bool]]]

bearer = HTTPBearer(auto_error=False, description="An applicant API key or an official token")


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
        if declared is not None and declared.isdigit():
            if int(declared) > limit:
                await _too_large(limit)(scope, receive, send)
                return
            # The server delivers no more than the declared length: nothing to count, and the
            # hot path (intake's submissions) pays for no wrapper of receive and send.
            await self.app(scope, receive, send)
            return
        # A chunked body declares no length: its bytes are counted as they stream in.
        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            # FastAPI turns any error while it reads a JSON body into its own 400; the 413
            # below answers instead, so whatever the app said about a cut-off body is dropped.
            if exceeded and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLarge):  # the app may also catch it (see guarded_send)
            await self.app(scope, limited_receive, guarded_send)
        if exceeded and not started:
            await _too_large(limit)(scope, receive, send)


class _BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        self.limit = limit


def _too_large(limit: int) -> JSONResponse:
    return problem_response(
        413, "Payload too large", f"The request body exceeds {limit} bytes.", "payload-too-large"
    )


class Observe:
    """Answers 503 under /v1 until the service has booted; times each request; safety headers.

    A plain ASGI middleware: the request goes straight through, with no extra task per request.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime = getattr(scope["app"].state, "runtime", None)
        if runtime is not None and not runtime.booted and scope["path"].startswith("/v1"):
            starting = problem_response(
                503,
                "Service unavailable",
                "The service is starting: waiting for its database.",
                headers={"Retry-After": "2"},
            )
            await starting(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _value in headers}
                for name, value in _SAFETY_HEADERS:
                    if name not in names:
                        headers.append((name, value))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, observed_send)
        route = scope.get("route")
        REQUESTS.labels(scope["method"], getattr(route, "path", "unmatched"), str(status)).observe(
            time.perf_counter() - started
        )


_SAFETY_HEADERS = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))


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
    within_rate_limit(request, principal.credential_id)
    request.state.principal = principal
    return principal


def within_rate_limit(request: Request, credential_id: str) -> None:
    """Count a request of this credential (or a console session); 429 when over the limit."""
    wait = request.app.state.rate_limiter.hit(credential_id)
    if wait is not None:
        raise Problem(
            429,
            "Too many requests",
            "Rate limit exceeded for this credential.",
            headers={"Retry-After": str(wait)},
        )


P = ParamSpec("P")
T = TypeVar("T")

# Worker threads for the blocking calls of the hot routes (the credential lookup, intake's
# writes). A plain executor hop costs less than FastAPI's own for a sync function (anyio's
# capacity limiter, cancel scope and backend lookups, several times per request).
_BLOCKING = ThreadPoolExecutor(max_workers=16, thread_name_prefix="ree-blocking")


async def run_blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run a blocking call in a worker thread, with the caller's context variables."""
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_BLOCKING, call)


async def current_principal(
    request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)
) -> Principal:
    # Async, with one executor hop for the directory query (it stays a query per request, so
    # that a revocation takes effect at once). (A psycopg asyncio connection was tried instead
    # of the hop: its waits cost more CPU per query than the hop saves.)
    return await run_blocking(authenticated, request, creds)


_FOR_WHOM = {
    CredentialKind.applicant: "This route is for applicants (company API keys).",
    CredentialKind.official: "This route is for officials.",
    CredentialKind.operator: "This route is for operators.",
}


def of_kind(principal: Principal, kind: CredentialKind) -> Principal:
    """The principal if it is of that kind; else 403."""
    if principal.kind != kind:
        raise Problem(403, "Forbidden", _FOR_WHOM[kind])
    return principal


def authenticated_applicant(
    request: Request, creds: HTTPAuthorizationCredentials | None
) -> Principal:
    """`current_applicant` as a blocking call, for a route that authenticates in its own thread."""
    return of_kind(authenticated(request, creds), CredentialKind.applicant)


# The role checks are async so that FastAPI runs them on the event loop: no thread hop each.
async def current_applicant(principal: Principal = Depends(current_principal)) -> Principal:
    return of_kind(principal, CredentialKind.applicant)


async def current_official(principal: Principal = Depends(current_principal)) -> Principal:
    return of_kind(principal, CredentialKind.official)


DOCS_ASSETS = "/docs-assets"
# The documentation pages may load only what the service serves: ReDoc's footer would fetch
# its logo from the vendor's CDN (a request that says who reads the docs, and fails offline).
# Swagger UI starts from an inline script, and both inline their styles.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'"
)


def serve_documentation(app: FastAPI) -> None:
    """/docs (Swagger UI) and /redoc with the scripts and styles of fastapi-offline, served by
    the service itself under DOCS_ASSETS, so they work on a machine without internet."""
    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")
    headers = {"Content-Security-Policy": DOCS_POLICY}

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon.png",
        )
        page.headers.update(headers)
        return page

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title}: API",
            redoc_js_url=f"{DOCS_ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        page.headers.update(headers)
        return page


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
    app = FastAPI(
        title=title,
        description=description,
        version=version,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry spans, per request, once shared/tracing.py installs a
        # provider; nothing while tracing is off.
        telemetry=REQUEST_TELEMETRY,
    )
    serve_documentation(app)
    app.state.directory = directory
    # Counted per process until the service's runtime shares the count in Redis (runtime.py).
    app.state.rate_limiter = LocalWindows(rate_limit_per_minute)
    problems.install(app)

    app.add_middleware(Observe)
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

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
    )
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


_PLAIN = (str, int, float, bool, type(None))


def jsonable(value: Any) -> Any:
    """fastapi's jsonable_encoder, fast for the dicts, lists, dates and scalars views are made of.

    jsonable_encoder asks a dozen questions of every value; a page of fifty cases spent most of
    its time there. Any other type still goes through jsonable_encoder, so the output is the same.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {jsonable(k): jsonable(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [jsonable(v) for v in value]
    if kind is datetime or kind is date:
        return value.isoformat()
    return jsonable_encoder(value)


def page_params(limit: int | None, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if limit < 1 or limit > maximum:
        raise problems.invalid([{"field": "limit", "message": f"must be between 1 and {maximum}"}])
    return limit
