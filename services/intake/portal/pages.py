"""How a portal page is answered: its templates in the company's language, the security
headers and the redirect after a form (shared/web/pages.py, as the console's are).

The language of a page: `?lang=` (the switch; kept in a cookie for the next pages), else
the one kept, else the browser's Accept-Language, else English. English is the templates'
own; every other language is a catalogue of the `portal` domain,
services/intake/translations/<locale>/LC_MESSAGES/portal.po (docs/portal.md, Languages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.intake.portal import wording
from services.intake.portal.session import Member, csrf_of
from shared.accounts.sessions import is_local
from shared.i18n import Languages, match_language
from shared.web.pages import SECURITY_HEADERS, html_page, redirect
from shared.web.pages import TEMPLATES as SHARED_TEMPLATES

__all__ = [
    "LANGUAGES",
    "NAV",
    "SECURITY_HEADERS",
    "NavItem",
    "Words",
    "nav",
    "redirect",
    "render",
    "router",
    "templates",
    "words_of",
]

INTAKE = Path(__file__).parent.parent
# The portal's gettext domain: services/intake/translations/<locale>/LC_MESSAGES/portal.po.
CATALOGUE = "portal"
# English first (the message ids' language), then each language with a catalogue.
LANGUAGES = ("en", "zh-Hans")
LANGUAGE_COOKIE = "ree_portal_lang"
# The portal's one router: each page's module adds its routes (portal/__init__.py imports
# them in order); included routers would hide their routes from the matrix that lists them.
router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class NavItem:
    """An entry of the portal's main navigation."""

    href: str
    label: str  # English, marked N_ where defined; translated where shown
    admin_only: bool = False
    # Paths under which the entry is the current page, besides its own.
    within: tuple[str, ...] = ()

    def is_current(self, path: str) -> bool:
        return path == self.href or any(path.startswith(prefix) for prefix in self.within)


# The main navigation, in the order the page modules add to it (portal/__init__.py's PAGES).
NAV: list[NavItem] = []


def nav(href: str, label: str, admin_only: bool = False, within: tuple[str, ...] = ()) -> None:
    """Add a page to the main navigation (once, where its module defines its routes)."""
    NAV.append(NavItem(href, label, admin_only, within))


def nav_items(member: Member | None) -> list[NavItem]:
    """What the navigation offers this member (an admin's pages to admins only)."""
    if member is None:
        return []
    return [item for item in NAV if member.is_admin or not item.admin_only]


def templates() -> Languages:
    """The portal's templates (its own, then the shared ones) in each of its languages."""
    return Languages(
        [INTAKE / "templates", SHARED_TEMPLATES],
        INTAKE / "translations",
        CATALOGUE,
        LANGUAGES,
        filters=wording.filters,
    )


@dataclass(frozen=True)
class Words:
    """The page's language, for text built in Python (a refusal's message, say)."""

    lang: str
    gettext: Callable[[str], str]


def _languages(request: Request) -> Languages:
    languages: Languages = request.app.state.portal_templates
    return languages


def language_of(request: Request) -> str:
    """The page's language: `?lang=`, else the one kept in the cookie, else the browser's
    Accept-Language, else English."""
    known: str | None = getattr(request.state, "portal_language", None)
    if known is not None:
        return known
    languages = _languages(request)
    asked = match_language(request.query_params.get("lang", "")[:35], languages.supported)
    if asked is None:
        kept = request.cookies.get(LANGUAGE_COOKIE, "")[:35] or None
        asked = languages.negotiate(kept, request.headers.get("accept-language"))
    request.state.portal_language = asked
    return asked


def words_of(request: Request, member: Member | None = None) -> Words:
    """The words of this request's page (the member's language is the page's)."""
    lang = language_of(request)
    return Words(lang, _languages(request).gettext(lang))


def _here(request: Request) -> str:
    # Where the language switch returns to: this page, if it can be fetched again.
    if request.method != "GET":
        return "/"
    query = "&".join(f"{k}={v}" for k, v in request.query_params.multi_items() if k != "lang")
    return request.url.path + (f"?{query}" if query else "")


def render(
    request: Request,
    template: str,
    member: Member | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A portal page: `me` the member (None before sign-in), `csrf` their session's token
    for the forms, `path` to mark the nav's current page, `here` for the language switch."""
    lang = language_of(request)
    context.update(
        request=request,
        me=member,
        csrf=csrf_of(request) if member else "",
        path=request.url.path,
        here=_here(request),
        nav_items=nav_items,
    )
    response = html_page(_languages(request), lang, template, context, status)
    keep_language(request, response)
    return response


def keep_language(request: Request, response: Response) -> None:
    """Keep a language asked with `?lang=` for the next pages (a cookie; no account field)."""
    asked = match_language(request.query_params.get("lang", "")[:35], _languages(request).supported)
    if asked is not None:
        response.set_cookie(
            LANGUAGE_COOKIE,
            asked,
            max_age=365 * 86400,
            httponly=True,
            samesite="lax",
            secure=not is_local(request.url.hostname),
            path="/",
        )
