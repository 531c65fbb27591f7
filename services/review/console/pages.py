"""How a console page is answered: the templates, the security headers, readable errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from services.review.api.common import casework_of, side_of
from services.review.console.session import csrf_of
from services.review.console.wording import (
    CONSOLE_DETAILS,
    DOCUMENT_KINDS,
    LIST_SEPARATOR,
    PROBLEM_SENTENCES,
    UNFORESEEN,
    Words,
    field_message,
)
from services.review.domain import errors as domain_errors
from services.review.domain.errors import UnknownAction, UnknownState
from services.review.domain.protocol import Protocol
from services.review.domain.protocol_file import DEFAULT_LANGUAGE
from services.review.problems import problem_for
from shared.directory import Principal
from shared.i18n import Formats, Languages, Message, match_language
from shared.problems import Problem
from shared.web.pages import SECURITY_HEADERS, html_page, redirect
from shared.web.pages import TEMPLATES as SHARED_TEMPLATES

__all__ = ["SECURITY_HEADERS", "redirect", "render", "router", "words_of"]

REVIEW = Path(__file__).parent.parent
# The console's gettext domain: services/review/translations/<locale>/LC_MESSAGES/console.po.
CATALOGUE = "console"
# The console's one router: each page's module adds its routes (console/__init__.py imports
# them in order); included routers would hide their routes from the matrix that lists them.
router = APIRouter(include_in_schema=False)


def templates_for(protocol: Protocol) -> Languages:
    """The console's templates in each of the protocol's languages, naming codes in the
    protocol's words (its labels) in that language."""
    return Languages(
        [REVIEW / "templates", SHARED_TEMPLATES],
        REVIEW / "translations",
        CATALOGUE,
        protocol.languages,
        filters=lambda lang, gettext: (
            _label_filters(protocol, lang)
            | _problem_filters(protocol, lang, gettext)
            | _word_filters(lang, gettext)
        ),
    )


def _label_filters(protocol: Protocol, lang: str) -> dict[str, Any]:
    return {
        "state_label": lambda s: state_label(protocol, s, lang),
        "action_label": lambda a: action_label(protocol, a, lang),
        # `code|label("element")`, `code|label("reason", "refuse")`: the protocol's names.
        "label": lambda code, kind, of=None: protocol.label(kind, str(code), lang, of),
    }


def _problem_filters(
    protocol: Protocol, lang: str, gettext: Callable[[str], str]
) -> dict[str, Any]:
    """How a page says a refusal: English as the API words it; another language by the
    translation of its message template, with its particulars (codes by their labels), or,
    for a message without a template in the catalogue, by its kind (wording.py); field
    messages translated."""
    if lang == DEFAULT_LANGUAGE:
        return {"problem": str, "field_problem": lambda line, _message=None: str(line)}

    def problem(message: object) -> str:
        said = problem_in(protocol, lang, gettext, getattr(message, "detail", message))
        if said is not None:
            return said
        return gettext(getattr(message, "kind_sentence", str(message)))

    def field_problem(line: object, message: object = None) -> str:
        """A field's message; with the refusal it belongs to, a reason code it names by the
        label of that refusal's action."""
        detail = getattr(message, "detail", message)
        action = detail.params.get("action") if isinstance(detail, Message) else None
        return field_message(str(line), gettext, _code_label(protocol, lang, action))

    return {"problem": problem, "field_problem": field_problem}


def _code_label(protocol: Protocol, lang: str, action: object) -> Callable[[str, str], str] | None:
    """How a field message names a code of the action's parameters (a reason code)."""
    if not isinstance(action, str):
        return None
    return lambda field, code: (
        protocol.label("reason", code, lang, of=action) if field == "reason" else code
    )


def problem_in(
    protocol: Protocol, lang: str, gettext: Callable[[str], str], detail: object
) -> str | None:
    """A refusal's message (domain/errors.py) in the page's language with its particulars;
    None when it is no Message or its template has no translation."""
    if not isinstance(detail, Message):
        return None
    wording = gettext(detail.template)
    if wording == detail.template:
        return None
    params = detail.params
    if not params:
        return wording

    def particular(name: str, value: object) -> object:
        if name == "action":
            return action_label(protocol, value, lang)
        if name == "state":
            return state_label(protocol, value, lang)
        if name in ("status", "role"):
            return gettext(str(value))
        if name == "actor" and isinstance(value, str) and " " in value:
            side, _, role = value.partition(" ")  # "CN officer" (protocol_file.Actor)
            return f"{side} {gettext(role)}"
        if name == "listed" and "errors" in params:
            errors: Any = params["errors"]
            codes = _code_label(protocol, lang, params.get("action"))
            lines = (field_message(f"{e.field}: {e.message}", gettext, codes) for e in errors)
            return gettext(LIST_SEPARATOR).join(lines)
        if name == "listed" and "excesses" in params:
            excesses: Any = params["excesses"]
            said = (problem_in(protocol, lang, gettext, e.message) or e.message for e in excesses)
            return gettext(LIST_SEPARATOR).join(said)
        if name == "element":
            return protocol.label("element", str(value), lang)
        if name in ("requested_kg", "remaining_kg"):
            return Formats(lang).number(float(str(value)))
        if name == "date":
            return Formats(lang).date(value)
        return value

    return wording % {name: particular(name, value) for name, value in params.items()}


def _word_filters(lang: str, gettext: Callable[[str], str]) -> dict[str, Any]:
    """Names the console gives to codes the protocol does not label (wording.py)."""
    words = Words(lang, gettext)
    return {
        "param_label": words.param,
        "flag_label": words.flag,
        "document_kind": lambda kind: (
            gettext(DOCUMENT_KINDS[kind])
            if kind in DOCUMENT_KINDS
            else str(kind).replace("_", " ").capitalize()
        ),
    }


def state_label(protocol: Protocol, state: object, lang: str = DEFAULT_LANGUAGE) -> str:
    """A state's label; a code the protocol does not know is shown as it is."""
    try:
        return protocol.label("state", str(state), lang)
    except UnknownState:
        return str(state)


def action_label(protocol: Protocol, action: object, lang: str = DEFAULT_LANGUAGE) -> str:
    """An action's label; a code the protocol does not know is shown as it is."""
    try:
        return protocol.label("action", str(action), lang)
    except UnknownAction:
        # An audit entry that is no protocol action (a note, an assignment): named from its code.
        return str(action).replace("_", " ").capitalize()


def language_of(request: Request, principal: Principal | None) -> str:
    """The page's language: `?lang=` (the signed-out pages' switch), else the official's
    stored choice, else the browser's Accept-Language, else English."""
    known: str | None = getattr(request.state, "console_language", None)
    if known is not None:
        return known
    languages: Languages = request.app.state.console_templates
    asked = match_language(request.query_params.get("lang", "")[:35], languages.supported)
    if asked is None:
        directory = request.app.state.directory
        chosen = directory.language_of(principal.subject_id) if principal else None
        asked = languages.negotiate(chosen, request.headers.get("accept-language"))
    request.state.console_language = asked
    return asked


def words_of(request: Request, principal: Principal | None) -> Words:
    """The page's language, for text built in Python (the action forms)."""
    lang = language_of(request, principal)
    languages: Languages = request.app.state.console_templates
    return Words(lang, languages.gettext(lang))


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    lang = language_of(request, principal)
    context.update(
        request=request,
        me=principal,
        side=side_of(principal) if principal else None,
        role=principal.role.value if principal and principal.role else None,
        csrf=csrf_of(request) if principal else "",
        today=casework_of(request).today(),
        path=request.url.path,
        # Where the language switch returns to: this page, if it can be fetched again.
        here=str(request.url.path) + (f"?{request.url.query}" if request.url.query else "")
        if request.method == "GET"
        else "/",
    )
    # One set per app (console.install), so that the labels are its protocol's; one
    # environment per language, so a request never changes another's translations.
    return html_page(request.app.state.console_templates, lang, template, context, status)


def as_problem(exc: Problem | domain_errors.ReviewDomainError) -> Problem:
    """The problem details of a domain error, by the service's one mapping (problems.py)."""
    return exc if isinstance(exc, Problem) else problem_for(exc)


class ProblemMessage(str):
    """A problem's sentence as the API words it (English, with its particulars), carrying
    the detail as raised (a Message: its template and particulars, which a page in another
    language says in that language) and the sentence of its kind, for a detail without."""

    kind_sentence: str
    detail: str

    def __new__(cls, detail: str, kind_sentence: str) -> ProblemMessage:
        message = super().__new__(cls, detail)
        message.kind_sentence = kind_sentence
        message.detail = detail
        return message


def problem_text(exc: Problem | domain_errors.ReviewDomainError) -> tuple[int, str, list[str]]:
    """A domain error or problem as (status, sentence, field messages) for a person to read."""
    problem = as_problem(exc)
    fields = [f"{e.get('field')}: {e.get('message')}" for e in problem.extra.get("errors", [])]
    detail = problem.detail or problem.title
    sentence = detail if detail in CONSOLE_DETAILS else PROBLEM_SENTENCES.get(problem.type)
    return problem.status, ProblemMessage(detail, sentence or UNFORESEEN), fields


def invalid_fields(exc: ValidationError) -> list[str]:
    """A request model's refusal as the field messages a page lists (the API's 422 errors)."""
    return [
        f"{'.'.join(str(part) for part in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
    ]
