"""The language switch on every page: an official's choice, kept with the official."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from services.review.console.pages import redirect, router
from services.review.console.session import posted_form, signed_in
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
