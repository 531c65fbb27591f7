"""How a server-rendered page is answered, the same for the console and the portal: one
environment per language (shared/i18n.py's Languages), the security headers, the redirect
after a form, and where a "next" field may lead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse

from shared.i18n import Languages

# The templates every site with pages shares (the account forms), after the site's own.
TEMPLATES = Path(__file__).parent.parent / "templates"
SECURITY_HEADERS = {
    # No inline script or style anywhere: charts are SVG with presentation attributes.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def html_page(
    languages: Languages, lang: str, template: str, context: dict[str, Any], status: int = 200
) -> HTMLResponse:
    """A template rendered with its language's environment (never switched between
    requests), with the security headers and its Content-Language."""
    page = languages.environments[lang].get_template(template).render(context)
    response = HTMLResponse(page, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    response.headers["Content-Language"] = lang
    return response


def redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def back_to(path: str) -> str:
    """A page of this site to return to, never another site's address."""
    if not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    return path
