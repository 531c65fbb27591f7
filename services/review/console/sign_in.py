"""Signing in (an official's token, checked by the directory) and out."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.review.console.pages import redirect, render, router
from services.review.console.session import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    posted_form,
    secure_cookies,
)
from shared.directory import CredentialKind, InvalidCredential


def _sign_in_form(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    """The sign-in form with a fresh nonce, its cookie scoped to /sign-in.

    Every answer that shows the form again (after a failed or expired sign-in too) gives a
    new nonce on the same path: a second cookie of that name on another path would be sent
    alongside, and the form would then be checked against the wrong one (a 403).
    """
    nonce = secrets.token_urlsafe(24)
    extra = {"error": error} if error else {}
    response = render(request, "sign_in.html", None, status=status, login_csrf=nonce, **extra)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        path="/sign-in",
    )
    return response


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request) -> HTMLResponse:
    return _sign_in_form(request)


@router.post("/sign-in", response_class=HTMLResponse)
async def sign_in(request: Request) -> Response:
    form = await request.form()
    token = str(form.get("token") or "").strip()
    nonce = request.cookies.get(LOGIN_COOKIE, "")
    if not nonce or not hmac.compare_digest(str(form.get("csrf") or ""), nonce):
        return _sign_in_form(request, 403, "The sign-in form expired; please try again.")
    try:
        principal = request.app.state.directory.authenticate(token)
    except InvalidCredential:
        principal = None
    if principal is None or principal.kind != CredentialKind.official:
        return _sign_in_form(request, 401, "That token is not a valid official's token.")
    signed_in = redirect("/")
    signed_in.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
        max_age=12 * 3600,
    )
    signed_in.delete_cookie(LOGIN_COOKIE, path="/sign-in")
    return signed_in


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await posted_form(request)
    response = redirect("/sign-in")
    response.delete_cookie(SESSION_COOKIE)
    return response
