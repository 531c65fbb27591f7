"""What the pages of a company's admin share (keys.py, colleagues.py): the signed-in member
as the actor of shared/accounts/company.py, and its refusals as a page or as a message next
to a form's field, in the page's language.

The rules themselves are shared/accounts/company.py's (the command line applies the same);
these pages only ask and show.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse

from services.intake.portal.pages import render, words_of
from services.intake.portal.session import Member
from shared.accounts.company import Actor
from shared.accounts.errors import AccountError, NotFound
from shared.i18n import N_
from shared.web.accounts import account_message

TITLES = {403: N_("Not allowed"), 404: N_("Not found"), 409: N_("Not done")}
# Another company's key or person is "not found", as one that never was: the same words.
NOT_FOUND = N_("There is no such key or colleague in your company.")


def actor_of(member: Member) -> Actor:
    return Actor(member.person_id, member.company_id, member.role.value)


def refusal_page(request: Request, member: Member, exc: AccountError) -> HTMLResponse:
    """The page of a refusal that has no form to show it on (403, 404, 409)."""
    message = NOT_FOUND if isinstance(exc, NotFound) else str(exc)
    return render(
        request,
        "error.html",
        member,
        status=exc.status,
        title=TITLES.get(exc.status, N_("Not done")),
        message=message,
    )


def form_errors(
    request: Request, member: Member, exc: AccountError, where: str = ""
) -> dict[str, str]:
    """The refusal's message under its field (`where` + the field; else above the form)."""
    return {where + (exc.field or "form"): account_message(str(exc), words_of(request, member))}
