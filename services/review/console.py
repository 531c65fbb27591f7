"""The officials' web console at `/`: server-rendered pages over the same Casework engine.

Sign-in keeps the official's token in an HttpOnly, SameSite=Strict cookie; every form that
changes something carries a CSRF token derived from that session (HMAC of the token), so a
page of another site cannot post on the official's behalf. What a page shows is the side's
view (visibility.view_for via api.side_view); what it offers are exactly the actions
Casework.allowed_actions returns, with the fields the protocol's parameters need.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, or_, select

from services.review.api.common import parse_number
from services.review.api.views import side_view
from services.review.queue import QUEUE_ORDER, counted
from services.review.casework import Casework, Who
from services.review.domain import errors as domain_errors
from services.review.domain.protocol import ParamSpec
from services.review.domain.visibility import view_for
from services.review.metrics.api import audience_of, compute, period_of
from services.review.metrics.facts import GROUPINGS, STAGE_LABELS
from services.review.metrics.reports import summary_csv
from services.review.store import Case, PriorityList
from shared.db import session_scope
from shared.directory import CredentialKind, InvalidCredential, Principal
from shared.problems import Problem, problem_response

HERE = Path(__file__).parent
SESSION_COOKIE = "ree_console"
LOGIN_COOKIE = "ree_login_csrf"
PAGE_SIZE = 50
# A text search or "assigned to me" is counted, up to this many (the page says "more than").
COUNT_CAP = 10_000
API_ROOTS = frozenset({"/healthz", "/readyz", "/metrics"})
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SECURITY_HEADERS = {
    # No inline script or style anywhere: charts are SVG with presentation attributes.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATE_LABELS = {
    "submitted": "Submitted",
    "eu_screening": "EU screening",
    "awaiting_applicant": "Waiting for applicant",
    "queued": "Queued for a list",
    "cn_review": "CN review",
    "joint_review": "Joint review",
    "approved": "Approved",
    "refused": "Refused",
    "not_admitted": "Not admitted",
    "withdrawn": "Withdrawn",
    "lapsed": "Lapsed",
}
SORTS: Mapping[str, Any] = {
    "priority": None,  # the protocol's queue order
    "reference": col(Case.reference),
    "state": col(Case.state),
    "due": col(Case.due_on),
    "submitted": col(Case.submitted_at),
}

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["state_label"] = lambda s: STATE_LABELS.get(str(s), str(s))
templates.env.filters["humanize"] = lambda s: str(s).replace("_", " ").capitalize()


# --- session, CSRF and headers -------------------------------------------------------------


class SignInRequired(Exception):
    """No valid console session: the official is sent to the sign-in page."""


def _casework(request: Request) -> Casework:
    return request.app.state.casework


def _engine(request: Request) -> Engine:
    return request.app.state.runtime.engine


def _secret(request: Request) -> bytes:
    return str(request.app.state.settings.token_secret).encode()


def csrf_token(request: Request, session_token: str) -> str:
    digest = hmac.new(_secret(request), b"console-csrf|" + session_token.encode(), hashlib.sha256)
    return digest.hexdigest()


def _secure(request: Request) -> bool:
    return not (request.url.scheme == "http" and (request.url.hostname or "") in LOCAL_HOSTS)


def _principal(request: Request) -> Principal:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired
    try:
        principal = request.app.state.directory.authenticate(token)
    except InvalidCredential as exc:
        raise SignInRequired from exc
    if principal.kind != CredentialKind.official:
        raise SignInRequired
    wait = request.app.state.rate_limiter.hit(principal.credential_id)
    if wait is not None:
        raise Problem(
            429,
            "Too many requests",
            f"Rate limit exceeded; retry in {wait} s.",
            headers={"Retry-After": str(wait)},
        )
    return principal


async def _form(request: Request) -> dict[str, str]:
    """The posted form, refused unless its CSRF token matches this session."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    token = request.cookies.get(SESSION_COOKIE, "")
    if not token or not hmac.compare_digest(fields.get("csrf", ""), csrf_token(request, token)):
        raise Problem(403, "Forbidden", "The form has expired or did not come from this console.")
    return fields


def _side(principal: Principal) -> str:
    assert principal.side is not None
    return principal.side.value


def _render(
    request: Request,
    template: str,
    principal: Principal | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    token = request.cookies.get(SESSION_COOKIE, "")
    context.update(
        me=principal,
        side=_side(principal) if principal else None,
        role=principal.role.value if principal and principal.role else None,
        csrf=csrf_token(request, token) if principal else "",
        today=_casework(request).today(),
        path=request.url.path,
    )
    response = templates.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def _redirect(url: str) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    response.headers.update(SECURITY_HEADERS)
    return response


def _problem_text(exc: Exception) -> tuple[int, str, list[str]]:
    """A domain error or problem as (status, sentence, field messages) for a person to read."""
    if isinstance(exc, Problem):
        fields = [f"{e.get('field')}: {e.get('message')}" for e in exc.extra.get("errors", [])]
        return exc.status, exc.detail or exc.title, fields
    if isinstance(exc, domain_errors.ActionForbidden):
        return 403, f"You may not do this: {exc}.", []
    if isinstance(exc, domain_errors.ActionNotAllowedInState):
        return 409, f"Not possible in the case's current state: {exc}.", []
    if isinstance(
        exc,
        domain_errors.InvalidActionParameters
        | domain_errors.InvalidRuleSet
        | domain_errors.InvalidShipment,
    ):
        return (
            422,
            "Some fields need attention.",
            [f"{e['field']}: {e['message']}" for e in exc.as_dicts()],
        )
    if isinstance(exc, domain_errors.LicenceNotActive | domain_errors.QuantityExceeded):
        return 409, str(exc), []
    return 422, str(exc), []


# --- sign in and out -------------------------------------------------------------------------


def _sign_in_form(request: Request, status: int = 200, error: str | None = None) -> HTMLResponse:
    """The sign-in form with a fresh nonce, its cookie scoped to /sign-in.

    Every answer that shows the form again (after a failed or expired sign-in too) gives a
    new nonce on the same path: a second cookie of that name on another path would be sent
    alongside, and the form would then be checked against the wrong one (a 403).
    """
    nonce = secrets.token_urlsafe(24)
    extra = {"error": error} if error else {}
    response = _render(request, "sign_in.html", None, status=status, login_csrf=nonce, **extra)
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
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
    signed_in = _redirect("/")
    signed_in.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=12 * 3600,
    )
    signed_in.delete_cookie(LOGIN_COOKIE, path="/sign-in")
    return signed_in


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    await _form(request)
    response = _redirect("/sign-in")
    response.delete_cookie(SESSION_COOKIE)
    return response


# --- the queue ---------------------------------------------------------------------------------

# The API's queue order (tier, deadline with none last, age), served by the same indexes.
QUEUE_ORDER_REVERSED = (
    col(Case.tier).desc(),
    col(Case.due_on).desc().nulls_first(),
    col(Case.opened_at).desc(),
    col(Case.id).desc(),
)


@router.get("/", response_class=HTMLResponse)
def queue(request: Request) -> HTMLResponse:
    principal = _principal(request)
    side = _side(principal)
    casework = _casework(request)
    q = request.query_params
    state = q.get("state") or None
    tier = q.get("tier") or None
    text = (q.get("q") or "").strip()[:60]
    mine = q.get("assigned") == "me"
    show = q.get("show", "open")
    sort = str(q.get("sort")) if q.get("sort") in SORTS else "priority"
    descending = q.get("dir") == "desc"
    offset = max(
        0, min(int(q.get("offset", "0") or 0) if q.get("offset", "").isdigit() else 0, 10**7)
    )
    terminal = [s for s in casework.protocol.states if casework.protocol.is_terminal(s)]

    query = select(Case)
    if side == "CN":
        query = query.where(col(Case.sent_to_cn_at).is_not(None))
    if state in casework.protocol.states:
        query = query.where(Case.state == state)
    elif show == "open":
        query = query.where(col(Case.state).not_in(terminal))
    if tier in ("P1", "P2", "P3"):
        query = query.where(Case.tier == tier)
    if mine:
        contact = Case.eu_contact_id if side == "EU" else Case.cn_contact_id
        query = query.where(contact == principal.subject_id)
    if text:
        like = f"%{text}%"
        query = query.where(or_(col(Case.reference).ilike(like), col(Case.id) == text))
    order: list[Any]
    if sort == "priority":
        order = list(QUEUE_ORDER_REVERSED if descending else QUEUE_ORDER)
    else:
        column = SORTS[sort]
        order = [column.desc() if descending else column, col(Case.opened_at)]
    with Session(_engine(request)) as session:
        if text or mine:
            # No running count for these filters: count, but stop past COUNT_CAP.
            capped = query.with_only_columns(col(Case.id)).limit(COUNT_CAP + 1).subquery()
            total = session.exec(select(func.count()).select_from(capped)).one()
        else:
            shown = state if state in casework.protocol.states else None
            open_states = [s for s in casework.protocol.states if s not in terminal]
            total = counted(session, side, shown or (open_states if show == "open" else None), tier)
        rows = session.exec(query.order_by(*order).offset(offset).limit(PAGE_SIZE)).all()
    today = casework.today()
    items = []
    for case in rows:
        summary = view_for(
            side,  # type: ignore[arg-type]
            {
                "id": case.id,
                "reference": case.reference,
                "state": case.state,
                "submitted_at": case.submitted_at,
                "application": case.application,
                "priority": {"tier": case.tier, "list_number": case.list_number},
                "deadlines": {"stage_due": case.due_on},
                "expected_decision_date": case.expected_decision_date,
            },
        )
        summary["overdue"] = case.due_on is not None and case.due_on < today
        items.append(summary)
    params = {
        k: v
        for k, v in {
            "state": state or "",
            "tier": tier or "",
            "q": text,
            "assigned": "me" if mine else "",
            "show": show,
        }.items()
        if v
    }

    def sort_link(name: str) -> str:
        flip = "asc" if sort == name and descending else "desc" if sort == name else "asc"
        return "/?" + urlencode({**params, "sort": name, "dir": flip})

    def page_link(to: int) -> str:
        return "/?" + urlencode(
            {**params, "sort": sort, "dir": "desc" if descending else "asc", "offset": to}
        )

    return _render(
        request,
        "queue.html",
        principal,
        items=items,
        total=int(total),
        more=total > COUNT_CAP,
        cap=COUNT_CAP,
        offset=offset,
        page_size=PAGE_SIZE,
        states=[s for s in casework.protocol.states if s != "submitted"],
        filters={"state": state, "tier": tier, "q": text, "assigned": mine, "show": show},
        sort=sort,
        descending=descending,
        sort_link=sort_link,
        prev_link=page_link(max(0, offset - PAGE_SIZE)) if offset else None,
        next_link=page_link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    )


# --- a case: view, action forms and their parsing -----------------------------------------------


@dataclass
class FormField:
    """One input of an action form, named by its dotted path in the action's parameters."""

    name: str
    label: str
    kind: str  # text | textarea | number | date | select | checkbox | hidden
    required: bool = False
    value: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    step: str | None = None
    min: str | None = None
    max: str | None = None
    hint: str = ""


@dataclass
class ActionForm:
    name: str
    label: str
    description: str
    fields: list[FormField]
    tone: str  # primary | danger | neutral


ACTION_LABELS = {
    "request_information": "Request information",
    "admit": "Admit",
    "decline": "Decline",
    "set_priority": "Change tier",
    "issue_priority_list": "Send to China on a new list",
    "fast_track": "Fast-track to China",
    "acknowledge": "Acknowledge (MOFCOM accepted)",
    "escalate": "Escalate to joint review",
    "return_to_review": "Return to CN review",
    "approve": "Approve and issue licence",
    "refuse": "Refuse",
}
DANGER = {"decline", "refuse", "escalate"}
PRIMARY = {"admit", "approve", "acknowledge", "issue_priority_list", "fast_track"}
# Filled in by the engine when a case goes on a list, never typed by an official.
ENGINE_PARAMS = {"issue_priority_list": {"list_number", "position"}}


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize().replace(" kg", " (kg)")


def _scalar_field(
    name: str,
    key: str,
    spec: ParamSpec,
    casework: Casework,
    action: str,
    defaults: Mapping[str, str],
) -> FormField:
    label = _label(key)
    value = defaults.get(name, "")
    if spec.type == "enum":
        descriptions = (
            casework.protocol.spec.reason_codes.get(action, {}) if key == "reason" else {}
        )
        options = [
            (v, f"{v} — {descriptions[v]}" if v in descriptions else v) for v in spec.values or ()
        ]
        if not spec.required:
            options.insert(0, ("", "—"))
        return FormField(name, label, "select", spec.required, value, options)
    if spec.type in ("int", "number"):
        return FormField(
            name,
            label,
            "number",
            spec.required,
            value,
            step="1" if spec.type == "int" else "any",
            min=None if spec.min is None else f"{spec.min:g}",
            max=None if spec.max is None else f"{spec.max:g}",
        )
    if spec.type == "date":
        return FormField(name, label, "date", spec.required, value)
    if spec.type == "bool":
        return FormField(name, label, "checkbox", spec.required, value)
    if spec.type == "list":
        return FormField(name, label, "text", spec.required, value, hint="comma-separated")
    long = spec.max_length is None or spec.max_length > 300
    hint = "required when the reason is 'other'" if spec.required_when else ""
    return FormField(name, label, "textarea" if long else "text", spec.required, value, hint=hint)


def _fields(
    params: Mapping[str, ParamSpec],
    prefix: str,
    casework: Casework,
    action: str,
    goods: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, str],
) -> list[FormField]:
    out: list[FormField] = []
    for key, spec in params.items():
        if prefix == "" and key in ENGINE_PARAMS.get(action, set()):
            continue
        name = f"{prefix}{key}"
        if spec.type == "object" and spec.fields:
            out += _fields(spec.fields, name + ".", casework, action, goods, defaults)
        elif (
            spec.type == "list" and spec.items and spec.items.fields and "line" in spec.items.fields
        ):
            # Per-line parameters (approved quantities): one row for each goods line of the case.
            for number, line in enumerate(goods, start=1):
                row = f"{name}.{number}."
                out.append(FormField(row + "line", "", "hidden", value=str(number)))
                for sub, sub_spec in spec.items.fields.items():
                    if sub == "line":
                        continue
                    item = _scalar_field(row + sub, sub, sub_spec, casework, action, defaults)
                    item.label = (
                        f"Line {number}: {line.get('element', '')} {line.get('form', '')}, "
                        f"{line.get('quantity_kg', '')} kg asked — {_label(sub).lower()}"
                    )
                    item.value = item.value or str(line.get("quantity_kg", ""))
                    out.append(item)
        else:
            out.append(_scalar_field(name, key, spec, casework, action, defaults))
    return out


def action_forms(
    casework: Casework, allowed: Sequence[str], view: Mapping[str, Any], today: date
) -> list[ActionForm]:
    application = view.get("application") or {}
    goods = [g for g in application.get("goods") or [] if isinstance(g, Mapping)]
    defaults = {
        "accepted_on": today.isoformat(),
        "licence.valid_from": today.isoformat(),
        "licence.type": str(application.get("licence_type") or ""),
        "licence.number": f"LIC-{view.get('reference', '')}",
    }
    forms = []
    for name in allowed:
        action = casework.protocol.actions[name]
        forms.append(
            ActionForm(
                name=name,
                label=ACTION_LABELS.get(name, _label(name)),
                description=action.description,
                fields=_fields(action.params, "", casework, name, goods, defaults),
                tone="danger" if name in DANGER else "primary" if name in PRIMARY else "neutral",
            )
        )
    return forms


_INDEX = re.compile(r"^\d+$")


def _convert(spec: ParamSpec, raw: str) -> Any:
    if spec.type == "int" and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if spec.type == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if spec.type == "bool":
        return raw in ("on", "true", "1")
    if spec.type == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw  # the engine validates and reports what is wrong


def parse_params(
    params: Mapping[str, ParamSpec], form: Mapping[str, str], prefix: str = ""
) -> dict[str, Any]:
    """Rebuild an action's parameters from dotted form names; empty inputs are left out."""
    out: dict[str, Any] = {}
    for key, spec in params.items():
        name = f"{prefix}{key}"
        if spec.type == "object" and spec.fields:
            nested = parse_params(spec.fields, form, name + ".")
            if nested:
                out[key] = nested
        elif spec.type == "list" and spec.items and spec.items.fields:
            indexes = sorted(
                {
                    int(part)
                    for k in form
                    if k.startswith(name + ".")
                    and _INDEX.match(part := k[len(name) + 1 :].split(".")[0])
                }
            )
            rows = [parse_params(spec.items.fields, form, f"{name}.{i}.") for i in indexes]
            rows = [r for r in rows if len(r) > 1 or (r and "line" not in r)]
            if rows:
                out[key] = rows
        else:
            raw = form.get(name, "").strip()
            if raw != "":
                out[key] = _convert(spec, raw)
    return out


def _case_page(
    request: Request,
    principal: Principal,
    case_id: str,
    status: int = 200,
    error: tuple[str, list[str]] | None = None,
    form: Mapping[str, str] | None = None,
    done: str | None = None,
) -> HTMLResponse:
    casework = _casework(request)
    with Session(_engine(request)) as session:
        case = casework.get_for(session, case_id, _side(principal))
        view = jsonable_encoder(side_view(session, casework, case, principal))
        overdue = case.due_on is not None and case.due_on < casework.today()
    forms = action_forms(casework, view.get("allowed_actions", []), view, casework.today())
    if form and error:
        # Keep what the official typed, so a refused form need not be filled in again.
        for action_form in forms:
            if action_form.name == form.get("action"):
                for f in action_form.fields:
                    if f.name in form and f.kind != "hidden":
                        f.value = form[f.name]
    return _render(
        request,
        "case.html",
        principal,
        status=status,
        case=view,
        overdue=overdue,
        forms=forms,
        failed_action=(form or {}).get("action") if error else None,
        error=error,
        done=done,
        stage_labels=STAGE_LABELS,
    )


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(case_id: str, request: Request) -> HTMLResponse:
    principal = _principal(request)
    done = request.query_params.get("done")
    return _case_page(
        request,
        principal,
        case_id,
        done=done if done in ACTION_LABELS or done in ("note", "assigned") else None,
    )


def _committed(request: Request) -> None:
    request.app.state.runtime.relay.wake()


@router.post("/cases/{case_id}/actions", response_class=HTMLResponse)
async def case_action(case_id: str, request: Request) -> Response:
    principal = _principal(request)
    form = await _form(request)
    action = form.get("action", "")
    casework = _casework(request)
    who = Who.official(principal)
    version = parse_number(form.get("version", "").strip())
    if version is None:
        return _case_page(
            request,
            principal,
            case_id,
            422,
            ("The form lacks the case version; reload the page.", []),
        )
    try:
        spec = casework.protocol.actions.get(action)
        if spec is None:
            raise domain_errors.UnknownAction(action)
        params = parse_params(spec.params, form)
        with session_scope(_engine(request)) as session:
            case = casework.get_for(session, case_id, _side(principal))
            if action == "issue_priority_list":
                # A single-case list goes through the same engine method as the lists page.
                if case.version != version:
                    raise Problem(
                        409,
                        "Conflict",
                        "The case has changed since you read it; reload and try again.",
                    )
                casework.issue_priority_list(session, who, [case.id], None)
            else:
                casework.act(session, case, who, action, params, version)
    except (domain_errors.ReviewDomainError, Problem) as exc:
        if isinstance(exc, Problem) and exc.status == 404:
            raise
        status, message, fields = _problem_text(exc)
        return _case_page(request, principal, case_id, status, (message, fields), form)
    _committed(request)
    return _redirect(f"/cases/{case_id}?done={action}")


@router.post("/cases/{case_id}/notes", response_class=HTMLResponse)
async def case_note(case_id: str, request: Request) -> Response:
    principal = _principal(request)
    form = await _form(request)
    text = form.get("text", "").strip()
    visibility = form.get("visibility", "")
    if not text or len(text) > 10_000 or visibility not in ("joint", "side"):
        return _case_page(
            request,
            principal,
            case_id,
            422,
            ("A note needs text (up to 10,000 characters) and a visibility.", []),
        )
    casework = _casework(request)
    with session_scope(_engine(request)) as session:
        case = casework.get_for(session, case_id, _side(principal))
        casework.add_note(session, case, Who.official(principal), text, visibility)
    return _redirect(f"/cases/{case_id}?done=note")


@router.post("/cases/{case_id}/assign", response_class=HTMLResponse)
async def case_assign(case_id: str, request: Request) -> Response:
    principal = _principal(request)
    await _form(request)
    casework = _casework(request)
    try:
        with session_scope(_engine(request)) as session:
            case = casework.get_for(session, case_id, _side(principal))
            casework.assign(session, case, Who.official(principal), None)
    except Problem as exc:
        if exc.status == 404:
            raise
        status, message, fields = _problem_text(exc)
        return _case_page(request, principal, case_id, status, (message, fields))
    _committed(request)
    return _redirect(f"/cases/{case_id}?done=assigned")


# --- priority lists ---------------------------------------------------------------------


def _lists_page(
    request: Request,
    principal: Principal,
    status: int = 200,
    error: tuple[str, list[str]] | None = None,
    issued: int | None = None,
) -> HTMLResponse:
    side = _side(principal)
    with Session(_engine(request)) as session:
        lists = session.exec(
            select(PriorityList).order_by(col(PriorityList.number).desc()).limit(100)
        ).all()
        queued = (
            session.exec(select(Case).where(Case.state == "queued").order_by(*QUEUE_ORDER)).all()
            if side == "EU"
            else []
        )
        rows = [
            {"number": p.number, "issued_at": p.issued_at, "cases": len(p.case_ids)} for p in lists
        ]
        queued_rows = [
            {
                "id": c.id,
                "reference": c.reference,
                "tier": c.tier,
                "due_on": c.due_on,
                "overdue": c.due_on is not None and c.due_on < _casework(request).today(),
                "mofcom": c.application.get("mofcom_application_number"),
            }
            for c in queued
        ]
    may_issue = side == "EU" and principal.role is not None and principal.role.value == "supervisor"
    return _render(
        request,
        "lists.html",
        principal,
        status=status,
        lists=rows,
        queued=queued_rows,
        may_issue=may_issue,
        error=error,
        issued=issued,
    )


@router.get("/priority-lists", response_class=HTMLResponse)
def lists_page(request: Request) -> HTMLResponse:
    principal = _principal(request)
    issued = request.query_params.get("issued")
    return _lists_page(request, principal, issued=parse_number(issued) if issued else None)


@router.post("/priority-lists", response_class=HTMLResponse)
async def issue_list(request: Request) -> Response:
    principal = _principal(request)
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    token = request.cookies.get(SESSION_COOKIE, "")
    if not hmac.compare_digest(fields.get("csrf", ""), csrf_token(request, token)):
        raise Problem(403, "Forbidden", "The form has expired or did not come from this console.")
    case_ids = [v for v in form.getlist("case_id") if isinstance(v, str)] or None
    raw_max = fields.get("max_cases", "").strip()
    max_cases = int(raw_max) if raw_max.isdigit() and int(raw_max) > 0 else None
    casework = _casework(request)
    try:
        with session_scope(_engine(request)) as session:
            plist = casework.issue_priority_list(
                session, Who.official(principal), case_ids, max_cases
            )
            number = plist.number
    except (domain_errors.ReviewDomainError, Problem) as exc:
        status, message, errors = _problem_text(exc)
        return _lists_page(request, principal, status, (message, errors))
    _committed(request)
    return _redirect(f"/priority-lists?issued={number}")


# --- the dashboard -------------------------------------------------------------------------------


def _dashboard_query(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    group_by = q.get("group_by") if q.get("group_by") in GROUPINGS else "form"
    return str(group_by), q.get("from", ""), q.get("to", "")


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    principal = _principal(request)
    group_by, start, end = _dashboard_query(request)
    try:
        period = period_of(request, start, end)
    except Problem as exc:
        _status, message, fields = _problem_text(exc)
        period, start, end = period_of(request, None, None), "", ""
        error: tuple[str, list[str]] | None = (message, fields)
    else:
        error = None
    result = compute(request, group_by, period, audience_of(principal))
    groups = result["groups"]
    charts = {
        "approval": [
            {
                "label": g["group"],
                "rate": g["approval_rate"],
                "n": g["outcomes"]["approved"] + g["outcomes"]["refused"],
            }
            for g in groups
        ],
        "processing": [
            {"label": g["group"], **g["processing_days"]["total"]}
            for g in groups
            if g["processing_days"]["total"]["cases"]
        ],
        "stages": [
            {**s, "label": STAGE_LABELS[s["stage"]]} for s in result["bottlenecks"]["stages"]
        ],
        "months": result["by_month"][-18:],
    }
    csv_link = "/dashboard.csv?" + urlencode({"group_by": group_by, "from": start, "to": end})
    return _render(
        request,
        "dashboard.html",
        principal,
        result=result,
        charts=charts,
        groupings=GROUPINGS,
        group_by=group_by,
        start=start,
        end=end,
        csv_link=csv_link,
        error=error,
        stage_labels=result["stages"],
    )


@router.get("/dashboard.csv")
def dashboard_csv(request: Request) -> Response:
    principal = _principal(request)
    group_by, start, end = _dashboard_query(request)
    result = compute(request, group_by, period_of(request, start, end), audience_of(principal))
    return Response(
        summary_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="ree-metrics-{group_by}.csv"',
            **SECURITY_HEADERS,
        },
    )


# --- wiring -------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Add the console's pages, its static files and the sign-in redirect to the review app."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        response = _redirect("/sign-in")
        if request.cookies.get(SESSION_COOKIE):
            response.delete_cookie(SESSION_COOKIE)
        return response

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        if not is_console_path(request.url.path):
            return problem_response(
                exc.status, exc.title, exc.detail, exc.type, exc.headers, **exc.extra
            )
        status, message, fields = _problem_text(exc)
        page = _render(
            request,
            "error.html",
            None,
            status=status,
            title=exc.title,
            message=message,
            fields=fields,
        )
        page.headers.update(exc.headers or {})
        return page


def is_console_path(path: str) -> bool:
    """Pages are everything but the API and the operations routes, which answer in JSON."""
    return not (path.startswith(("/v1/", "/docs", "/openapi", "/redoc")) or path in API_ROOTS)
