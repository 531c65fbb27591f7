"""The language switch on every page, and the official's preferences page (language, daily
digest): an official's choices, kept with the official."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from services.review.console.pages import redirect, render, router, words_of
from services.review.console.session import posted_form, signed_in
from shared.directory import Principal
from shared.i18n import N_, Languages
from shared.problems import Problem
from shared.web.pages import back_to


@router.post("/language")
async def choose_language(request: Request) -> Response:
    principal = signed_in(request)
    form = await posted_form(request)
    languages: Languages = request.app.state.console_templates
    lang = form.get("lang", "")
    if not languages.is_supported(lang):
        offered = ", ".join(languages.supported)
        raise Problem(
            422,
            "Validation failed",
            N_("That language is not offered."),
            type_="validation-failed",
            errors=[{"field": "lang", "message": f"must be one of {offered}"}],
        )
    request.app.state.directory.set_language(principal.subject_id, lang)
    return redirect(back_to(form.get("next", "/")))


@router.get("/preferences")
async def preferences_page(request: Request) -> Response:
    principal = signed_in(request)
    return _preferences(request, principal, saved=request.query_params.get("saved") == "1")


@router.post("/preferences")
async def save_preferences(request: Request) -> Response:
    """The language (the console's and the e-mails') and the daily digest, both stored
    with the official; an unknown language is refused next to its field, nothing stored."""
    principal = signed_in(request)
    form = await posted_form(request)
    languages: Languages = request.app.state.console_templates
    lang = form.get("lang", "")
    if not languages.is_supported(lang):
        message = words_of(request, principal).gettext(N_("That language is not offered."))
        return _preferences(request, principal, status=422, lang_error=message)
    directory = request.app.state.directory
    directory.set_language(principal.subject_id, lang)
    directory.set_digest(principal.subject_id, form.get("digest") == "on")
    return redirect("/preferences?saved=1")


def _preferences(
    request: Request, principal: Principal, status: int = 200, **shown: object
) -> Response:
    official = request.app.state.directory.official(principal.subject_id)
    person = request.app.state.accounts.people.get(principal.subject_id)
    return render(
        request,
        "preferences.html",
        principal,
        status=status,
        digest=bool(official and official.digest),
        email=person.email if person is not None else None,
        digest_days=request.app.state.settings.digest_days,
        **shown,
    )
