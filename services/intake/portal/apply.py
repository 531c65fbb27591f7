"""The portal's new-application page: the form (services/intake/application_form.py), and a
valid post registered as the API registers one (`service.submit`), then the application's page.

A post's CSRF token is its session's; its `form_token`, made when the form is first shown and
kept while it is shown again, is the submission's Idempotency-Key, so a form sent twice (a
double click, a reload of the answer) makes one application and leads to it both times.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.intake import application_form as apply_form
from services.intake import service
from services.intake.application_form import ApplyForm
from services.intake.domain import body_fingerprint
from services.intake.errors import NumberRegistered, StateConflict
from services.intake.portal.pages import nav, redirect, render, router, words_of
from services.intake.portal.session import Member, posted_form, signed_in
from services.intake.views import EarlierRequest
from shared.applications import ApplicationBody
from shared.db import utcnow
from shared.directory import CredentialKind, Principal
from shared.hs_codes import packaged as hs_codes
from shared.http import run_blocking
from shared.i18n import N_

PATH = "/apply"
TOKEN_FIELD = "form_token"
# The Idempotency-Key's bounds (the API's header: 1 to 255 characters).
TOKEN_LENGTH = range(16, 256)
REGISTERED = N_(
    "This MOFCOM application number is registered already as %(reference)s. A number is "
    "registered again only after its application was withdrawn, not admitted or lapsed."
)
SENT_WITH_OTHER_CONTENT = N_(
    "This form was sent already with other content. Open your applications to see what was "
    "registered, or start a new application."
)

nav(PATH, N_("New application"))


def _form(request: Request, member: Member, rows: int) -> ApplyForm:
    words = words_of(request, member)
    goods = request.app.state.controlled_goods
    return apply_form.build(goods, hs_codes(), utcnow().date(), words.lang, words.gettext, rows)


def _page(
    request: Request,
    member: Member,
    form: ApplyForm,
    token: str,
    status: int = 200,
    problem: str = "",
) -> HTMLResponse:
    return render(
        request,
        "apply.html",
        member,
        status=status,
        form=form,
        token=token,
        rows_field=apply_form.ROWS_FIELD,
        add_row=apply_form.ADD_ROW,
        max_rows=apply_form.MAX_ROWS,
        problem=problem,
    )


@router.get(PATH, response_class=HTMLResponse)
def new_application(request: Request) -> HTMLResponse:
    member = signed_in(request)
    form = _form(request, member, apply_form.ROWS)
    return _page(request, member, form, _new_token())


def _new_token() -> str:
    return "portal-" + secrets.token_urlsafe(24)


def _token(posted: Mapping[str, str]) -> str:
    token = posted.get(TOKEN_FIELD, "")
    return token if len(token) in TOKEN_LENGTH else _new_token()


@router.post(PATH, response_class=HTMLResponse)
async def submit_application(request: Request) -> Response:
    member = signed_in(request)
    posted = await posted_form(request)
    adding = apply_form.ADD_ROW in posted
    form = _form(request, member, apply_form.rows_of(posted, adding))
    values = form.values_from(posted)
    token = _token(posted)
    if adding:
        return _page(request, member, form.fill(values, {}), token)
    words = words_of(request, member)
    goods = request.app.state.controlled_goods
    checked = apply_form.check(form, values, goods, utcnow().date(), words.gettext, words.lang)
    if checked.body is None:
        return _page(request, member, form.fill(values, checked.errors), token, 422)
    try:
        application_id = await _register(request, member, checked.body, token)
    except NumberRegistered as exc:
        message = words.gettext(REGISTERED) % {"reference": exc.reference}
        errors = {"mofcom_application_number": message}
        return _page(request, member, form.fill(values, errors), token, 409)
    except StateConflict:
        problem = words.gettext(SENT_WITH_OTHER_CONTENT)
        return _page(request, member, form.fill(values, {}), _new_token(), 409, problem)
    return redirect(f"/applications/{application_id}")


async def _register(request: Request, member: Member, body: ApplicationBody, token: str) -> str:
    """The application's id: registered now, or by an earlier post of the same form."""
    content = body.model_dump(mode="json")
    fingerprint = body_fingerprint(content)
    applicant = Principal(
        kind=CredentialKind.applicant,
        subject_id=member.company_id,
        credential_id=f"portal:{member.person_id}",
        name=member.company_name,
    )
    state = request.app.state
    new, written = await run_blocking(
        service.submit,
        state.runtime.engine,
        state.writer,
        state.references,
        applicant,
        content,
        token,
        fingerprint,
    )
    if isinstance(written, EarlierRequest):
        view = await run_blocking(service.replay, state.runtime.engine, written, fingerprint)
        return view.id
    state.runtime.relay.wake()
    return new.id
