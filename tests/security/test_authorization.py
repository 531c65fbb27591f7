"""Every route of every service, called as every kind of caller: the status the matrix names."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import yaml

from services.review.console import router as console_router
from shared.accounts.company import OPERATOR, CompanyAdmin
from shared.accounts.invitations import Invitations
from shared.accounts.passwords import Passwords
from shared.accounts.people import People
from shared.accounts.sessions import Sessions
from shared.accounts.web import NONCE_COOKIE
from shared.directory import open_directory
from tests.integration.conftest import application
from tests.integration.notify_support import register
from tests.people import console as signed_in_console
from tests.people import enrol_official, enrol_staff, settings_of, sign_in_form
from tests.security.conftest import (
    CONSOLE_COOKIE,
    PORTAL_COOKIE,
    SERVICES,
    World,
    propose_decline,
)
from tests.security.matrix import DOC, KINDS, OFFICIALS, ROWS, SIGN_IN, STAFF, Row, render
from tests.support import ROOT, operator

pytestmark = pytest.mark.slow


@dataclass
class Call:
    path: str
    json: Any = None
    data: dict[str, str] | None = None
    files: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


Builder = Callable[[World, bool], Call]


def _version(world: World, case_id: str) -> str:
    with world.client("review", "eu_officer") as c:
        view = c.get(f"/v1/cases/{case_id}")
        if view.status_code != 200:
            with world.client("review", "cn_officer") as cn:
                view = cn.get(f"/v1/cases/{case_id}")
    return str(view.json()["version"])


def _screening(world: World, fresh: bool) -> str:
    return world.fresh("screening") if fresh else world.ids["case_main"]


def _admit(world: World, fresh: bool) -> Call:
    case_id = _screening(world, fresh)
    return Call(
        f"/v1/cases/{case_id}/actions",
        json={"action": "admit"},
        headers={"If-Match": _version(world, case_id)},
    )


def _acknowledge(world: World, fresh: bool) -> Call:
    case_id = world.fresh("cn_review") if fresh else world.ids["case_cn"]
    return Call(
        f"/v1/cases/{case_id}/actions",
        json={"action": "acknowledge", "accepted_on": date.today().isoformat()},
        headers={"If-Match": _version(world, case_id)},
    )


def _proposed(world: World, fresh: bool) -> tuple[str, str]:
    """A case in EU screening with a decline the EU officer proposed: a fresh one for a caller
    who succeeds, else the world's own pending one."""
    if not fresh:
        return world.ids["case_proposal"], world.ids["proposal"]
    case_id = world.fresh("screening")
    return case_id, propose_decline(world, case_id)


def _proposal_verb(verb: str, console: bool = False) -> Builder:
    def build(world: World, fresh: bool) -> Call:
        case_id, proposal_id = _proposed(world, fresh)
        if console:
            return Call(f"/cases/{case_id}/proposals/{proposal_id}/{verb}", data={})
        headers = {"If-Match": _version(world, case_id)} if verb == "countersign" else {}
        return Call(f"/v1/cases/{case_id}/proposals/{proposal_id}/{verb}", headers=headers)

    return build


def _issue_list(world: World, fresh: bool) -> Call:
    case_id = world.fresh("queued") if fresh else world.ids["case_main"]
    return Call("/v1/priority-lists", json={"case_ids": [case_id]})


def _adopt_rules(world: World, fresh: bool) -> Call:
    # The rule set in force under a new version each time: adopted, it changes no tier.
    rules = {**world.objects["rules"], "version": f"matrix-{uuid.uuid4().hex[:12]}"}
    return Call("/v1/priority/rules", json={"rules": rules, "reason": "authorization matrix"})


def _console_simulate(world: World, fresh: bool) -> Call:
    return Call(
        "/priority-rules", data={"do": "simulate", "draft": yaml.safe_dump(world.objects["rules"])}
    )


def _console_admit(world: World, fresh: bool) -> Call:
    case_id = _screening(world, fresh)
    return Call(
        f"/cases/{case_id}/actions",
        data={"action": "admit", "version": _version(world, case_id)},
    )


def _console_list(world: World, fresh: bool) -> Call:
    case_id = world.fresh("queued") if fresh else world.ids["case_main"]
    return Call("/priority-lists", data={"case_id": case_id})


def _shipment(world: World, fresh: bool) -> Call:
    return Call(
        f"/v1/licences/{world.ids['licence']}/shipments",
        json={"shipped_on": date.today().isoformat(), "lines": [{"line": 1, "quantity_kg": 1}]},
    )


def _delete_document(world: World, fresh: bool) -> Call:
    # A caller who may delete gets a document uploaded for the purpose; the others try A's own.
    document_id = world.ids["document"]
    if fresh:
        with world.client("intake", "applicant_a") as c:
            r = c.post(
                f"/v1/applications/{world.ids['app_main']}/documents",
                files={"file": ("spare.txt", b"a spare note\n", "text/plain")},
            )
            assert r.status_code == 201, r.text
            document_id = r.json()["id"]
    return Call(f"/v1/applications/{world.ids['app_main']}/documents/{document_id}")


def _endpoint_body(world: World, fresh: bool) -> Call:
    return Call(
        "/v1/webhook-endpoints",
        json={"url": world.mailbox.url, "event_types": ["application.received"]},
    )


def _checkpoint(world: World, fresh: bool) -> Call:
    # A checkpoint issued for the purpose, so the route has one to show whoever may see it.
    with world.client("review", "eu_supervisor") as c:
        issued = c.post("/v1/audit/checkpoints")
        assert issued.status_code == 201, issued.text
    return Call(f"/v1/audit/checkpoints/{issued.json()['number']}")


def _path(template: str, **ids: str) -> Builder:
    return lambda world, _fresh: Call(template.format(**{k: world.ids[v] for k, v in ids.items()}))


def _with(template: str, body: Any = None, **ids: str) -> Builder:
    def build(world: World, _fresh: bool) -> Call:
        return Call(template.format(**{k: world.ids[v] for k, v in ids.items()}), json=body)

    return build


def _company_admin(world: World) -> CompanyAdmin:
    engine = open_directory(settings_of(world.infra)).engine
    sessions = Sessions(engine)
    invitations = Invitations(engine, Passwords(), sessions)
    return CompanyAdmin(engine, People(engine, sessions), invitations)


def _key_of_a(world: World, fresh: bool) -> str:
    """A named key of A's (never the key the world calls with); a new one for an admin of
    A who revokes it."""
    if fresh or "portal_key" not in world.ids:
        admin = _company_admin(world)
        try:
            made, _secret = admin.create_key(
                OPERATOR, world.ids["applicant_a"], f"matrix {uuid.uuid4().hex[:8]}"
            )
        finally:
            admin.engine.dispose()
        if fresh:
            return made.id
        world.ids["portal_key"] = made.id
    return world.ids["portal_key"]


def _colleague_of_a(world: World, fresh: bool) -> str:
    """A member of A's staff; a new one for an admin of A who changes them."""
    if fresh or "portal_colleague" not in world.ids:
        directory = open_directory(settings_of(world.infra))
        try:
            made = str(enrol_staff(directory, world.ids["applicant_a"], "Colin", "member")["id"])
        finally:
            directory.engine.dispose()
        if fresh:
            return made
        world.ids["portal_colleague"] = made
    return world.ids["portal_colleague"]


def _endpoint_of_a(world: World) -> str:
    """A new endpoint of A's, for an admin of A who deletes it."""
    with world.client("notify", "applicant_a") as c:
        return str(register(c, world.mailbox)["id"])


CASE_CN = {"case_id": "case_cn"}
CASE_SCREENING = {"case_id": "case_main"}
APP = {"application_id": "app_main"}
ENDPOINT = {"endpoint_id": "endpoint"}
PERSON = {"person_id": "person"}

BUILDERS: dict[str, Builder] = {
    **{f"{s} GET {p}": _path(p) for s in SERVICES for p in ("/healthz", "/readyz", "/metrics")},
    "intake POST /v1/applications": lambda w, f: Call("/v1/applications", json=application()),
    "intake GET /v1/applications": _path("/v1/applications"),
    "intake GET /v1/applications/{application_id}": _path(
        "/v1/applications/{application_id}", **APP
    ),
    "intake POST /v1/applications/{application_id}/documents": lambda w, f: Call(
        f"/v1/applications/{w.ids['app_main']}/documents",
        files={"file": ("note.txt", b"plain text note\n", "text/plain")},
        data={"kind": "other"},
    ),
    "intake GET /v1/applications/{application_id}/documents/{document_id}": _path(
        "/v1/applications/{application_id}/documents/{document_id}",
        **APP,
        document_id="document",
    ),
    "intake DELETE /v1/applications/{application_id}/documents/{document_id}": _delete_document,
    "intake POST /v1/applications/{application_id}/information-requests/{request_id}/answer": (
        _with(
            "/v1/applications/{a}/information-requests/{r}/answer",
            {"answer": "Because."},
            a="app_asked",
            r="request",
        )
    ),
    "intake POST /v1/applications/{application_id}/withdraw": _with(
        "/v1/applications/{a}/withdraw", a="app_withdraw"
    ),
    "review GET /v1/protocol": _path("/v1/protocol"),
    "review GET /v1/cases": _path("/v1/cases"),
    "review GET /v1/cases/{case_id}": _path("/v1/cases/{case_id}", **CASE_CN),
    "review GET /v1/cases/{case_id} [not sent to China]": _path(
        "/v1/cases/{case_id}", **CASE_SCREENING
    ),
    "review GET /v1/cases/{case_id}/documents/{document_id}": _path(
        "/v1/cases/{c}/documents/{d}", c="case_cn", d="document_cn"
    ),
    "review GET /v1/cases/{case_id}/documents/{document_id} [not shareable]": _path(
        "/v1/cases/{c}/documents/{d}", c="case_cn", d="document_cn_private"
    ),
    "review GET /v1/cases/{case_id}/documents/{document_id} [not sent to China]": _path(
        "/v1/cases/{c}/documents/{d}", c="case_main", d="document"
    ),
    "review POST /v1/cases/{case_id}/actions": _admit,
    "review POST /v1/cases/{case_id}/actions [CN action]": _acknowledge,
    **{
        f"review POST /v1/cases/{{case_id}}/proposals/{{proposal_id}}/{verb}": _proposal_verb(verb)
        for verb in ("countersign", "reject", "withdraw")
    },
    "review POST /cases/{case_id}/proposals/{proposal_id}/{verb}": _proposal_verb(
        "countersign", console=True
    ),
    "review POST /v1/cases/{case_id}/notes": _with(
        "/v1/cases/{case_id}/notes", {"text": "matrix note", "visibility": "joint"}, **CASE_CN
    ),
    "review POST /v1/cases/{case_id}/notes [not sent to China]": _with(
        "/v1/cases/{case_id}/notes", {"text": "matrix note", "visibility": "side"}, **CASE_SCREENING
    ),
    "review POST /v1/cases/{case_id}/assign": _with("/v1/cases/{case_id}/assign", {}, **CASE_CN),
    "review GET /v1/cases/{case_id}/audit": _path("/v1/cases/{case_id}/audit", **CASE_CN),
    "review GET /v1/cases/{case_id}/audit [not sent to China]": _path(
        "/v1/cases/{case_id}/audit", **CASE_SCREENING
    ),
    "review GET /v1/cases/{case_id}/audit/verify": _path(
        "/v1/cases/{case_id}/audit/verify", **CASE_CN
    ),
    "review GET /v1/audit/checkpoints": _path("/v1/audit/checkpoints"),
    "review POST /v1/audit/checkpoints": lambda w, f: Call("/v1/audit/checkpoints"),
    "review GET /v1/audit/checkpoints/{number}": _checkpoint,
    "review GET /v1/audit/public-key": _path("/v1/audit/public-key"),
    "review POST /v1/priority-lists": _issue_list,
    "review GET /v1/priority-lists": _path("/v1/priority-lists"),
    "review GET /v1/priority-lists/{number}": _path("/v1/priority-lists/{n}", n="list"),
    "review GET /v1/priority-lists/{number} [CSV]": _path(
        "/v1/priority-lists/{n}?format=csv", n="list"
    ),
    "review POST /v1/priority/simulate": lambda w, f: Call(
        "/v1/priority/simulate", json=w.objects["rules"]
    ),
    "review GET /v1/priority/rules": _path("/v1/priority/rules"),
    "review POST /v1/priority/rules": _adopt_rules,
    "review GET /v1/licences/{number}": _path("/v1/licences/{n}", n="licence"),
    "review POST /v1/licences/{number}/shipments": _shipment,
    "review POST /v1/licences/{number}/revoke": _with(
        "/v1/licences/{n}/revoke", {"reason": "matrix"}, n="licence_revoke"
    ),
    "review GET /v1/metrics/summary": _path("/v1/metrics/summary"),
    "review GET /v1/metrics/commission": _path("/v1/metrics/commission"),
    "review GET /v1/metrics/monthly/{month}": lambda w, f: Call(
        f"/v1/metrics/monthly/{date.today():%Y-%m}"
    ),
    # The portal's (intake's `/`).
    "intake GET /sign-in": _path("/sign-in"),
    "intake POST /sign-in": _path("/sign-in"),
    "intake POST /sign-out": lambda w, f: Call("/sign-out", data={}),
    "intake GET /invitation": _path("/invitation?token={t}", t="staff_invitation_token"),
    "intake POST /invitation": lambda w, f: Call(
        "/invitation",
        data={"token": w.ids["staff_invitation_token"], "password": "short", "repeat": "short"},
    ),
    "intake GET /forgot-password": _path("/forgot-password"),
    "intake POST /forgot-password": lambda w, f: Call(
        "/forgot-password", data={"email": "nobody@example.com"}
    ),
    "intake GET /reset": _path("/reset?token={t}", t="staff_reset_token"),
    "intake POST /reset": lambda w, f: Call(
        "/reset", data={"token": w.ids["staff_reset_token"], "password": "short", "repeat": "short"}
    ),
    "intake GET /": _path("/"),
    "intake GET /applications/{application_id}": _path("/applications/{application_id}", **APP),
    "intake GET /applications/{application_id}/documents/{document_id}": _path(
        "/applications/{a}/documents/{d}", a="app_main", d="document"
    ),
    "intake POST /applications/{application_id}/documents": lambda w, f: Call(
        f"/applications/{w.ids['app_main']}/documents",
        data={"kind": "other"},
        files={"file": ("portal.txt", b"uploaded through the portal\n", "text/plain")},
    ),
    "intake POST /applications/{application_id}/information-requests/{request_id}/answer": (
        lambda w, f: Call(
            f"/applications/{w.ids['app_main']}/information-requests/no-such-request/answer",
            data={"answer": ""},
        )
    ),
    "intake GET /applications/{application_id}/withdraw": _path(
        "/applications/{application_id}/withdraw", **APP
    ),
    "intake POST /applications/{application_id}/withdraw": lambda w, f: Call(
        f"/applications/{w.ids['app_main']}/withdraw", data={"reason": "not confirmed"}
    ),
    "intake GET /apply": _path("/apply"),
    "intake POST /apply": lambda w, f: Call("/apply", data={}),
    "intake GET /keys": _path("/keys"),
    "intake POST /keys": lambda w, f: Call("/keys", data={"name": ""}),
    "intake GET /keys/{key_id}/revoke": lambda w, f: Call(f"/keys/{_key_of_a(w, f)}/revoke"),
    "intake POST /keys/{key_id}/revoke": lambda w, f: Call(
        f"/keys/{_key_of_a(w, f)}/revoke", data={}
    ),
    "intake GET /colleagues": _path("/colleagues"),
    "intake POST /colleagues": lambda w, f: Call("/colleagues", data={"email": ""}),
    "intake POST /colleagues/{person_id}/role": lambda w, f: Call(
        f"/colleagues/{_colleague_of_a(w, f)}/role", data={"role": "admin"}
    ),
    "intake GET /colleagues/{person_id}/{change}": lambda w, f: Call(
        f"/colleagues/{_colleague_of_a(w, f)}/disable"
    ),
    "intake POST /colleagues/{person_id}/{change}": lambda w, f: Call(
        f"/colleagues/{_colleague_of_a(w, f)}/disable", data={}
    ),
    "intake GET /webhooks": _path("/webhooks"),
    "intake POST /webhooks": lambda w, f: Call("/webhooks", data={}),
    "intake GET /webhooks/{endpoint_id}": _path("/webhooks/{endpoint_id}", **ENDPOINT),
    **{
        f"intake POST /webhooks/{{endpoint_id}}/{action}": (
            lambda w, f, action=action: Call(f"/webhooks/{w.ids['endpoint']}/{action}", data={})
        )
        for action in ("rotate-secret", "test", "enable")
    },
    "intake POST /webhooks/{endpoint_id}/delete": lambda w, f: Call(
        f"/webhooks/{_endpoint_of_a(w) if f else w.ids['endpoint']}/delete", data={}
    ),
    "intake POST /webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver": lambda w, f: Call(
        f"/webhooks/{w.ids['endpoint']}/deliveries/{w.ids['delivery']}/redeliver", data={}
    ),
    "intake POST /webhooks/{endpoint_id}/recover": lambda w, f: Call(
        f"/webhooks/{w.ids['endpoint']}/recover", data={"since": ""}
    ),
    "intake GET /me/emails": _path("/me/emails"),
    "intake POST /me/emails": lambda w, f: Call(
        "/me/emails", data={"event_types": "application.information_requested"}
    ),
    "intake GET /static/{path}": _path("/static/portal.css"),
    "review GET /sign-in": _path("/sign-in"),
    "review POST /sign-in": _path("/sign-in"),
    "review POST /sign-out": lambda w, f: Call("/sign-out", data={}),
    "review POST /language": lambda w, f: Call("/language", data={"lang": "en", "next": "/"}),
    "review GET /preferences": _path("/preferences"),
    "review POST /preferences": lambda w, f: Call("/preferences", data={"lang": "en"}),
    "review GET /invitation": _path("/invitation?token={t}", t="invitation_token"),
    "review POST /invitation": lambda w, f: Call(
        "/invitation",
        data={"token": w.ids["invitation_token"], "password": "short", "repeat": "short"},
    ),
    "review GET /forgot-password": _path("/forgot-password"),
    "review POST /forgot-password": lambda w, f: Call(
        "/forgot-password", data={"email": "nobody@example.eu"}
    ),
    "review GET /reset": _path("/reset?token={t}", t="reset_token"),
    "review POST /reset": lambda w, f: Call(
        "/reset", data={"token": w.ids["reset_token"], "password": "short", "repeat": "short"}
    ),
    "review GET /": _path("/"),
    "review GET /cases/{case_id}": _path("/cases/{case_id}", **CASE_CN),
    "review GET /cases/{case_id} [not sent to China]": _path("/cases/{case_id}", **CASE_SCREENING),
    "review GET /cases/{case_id}/documents/{document_id}": _path(
        "/cases/{c}/documents/{d}", c="case_cn", d="document_cn"
    ),
    "review GET /cases/{case_id}/documents/{document_id} [not shareable]": _path(
        "/cases/{c}/documents/{d}", c="case_cn", d="document_cn_private"
    ),
    "review POST /cases/{case_id}/actions": _console_admit,
    "review POST /cases/{case_id}/notes": lambda w, f: Call(
        f"/cases/{w.ids['case_cn']}/notes", data={"text": "console note", "visibility": "joint"}
    ),
    "review POST /cases/{case_id}/assign": lambda w, f: Call(
        f"/cases/{w.ids['case_cn']}/assign", data={}
    ),
    "review GET /priority-lists": _path("/priority-lists"),
    "review GET /priority-lists/{number}": _path("/priority-lists/{n}", n="list"),
    "review GET /priority-lists/{number}.csv": _path("/priority-lists/{n}.csv", n="list"),
    "review POST /priority-lists": _console_list,
    "review GET /priority-rules": _path("/priority-rules"),
    "review POST /priority-rules": _console_simulate,
    "review GET /dashboard": _path("/dashboard"),
    "review GET /dashboard.csv": _path("/dashboard.csv"),
    "review GET /dashboard/commission.csv": _path("/dashboard/commission.csv"),
    "review GET /reports/monthly": _path("/reports/monthly"),
    "review GET /reports/monthly.csv": _path("/reports/monthly.csv"),
    "review GET /static/{path}": _path("/static/console.css"),
    "notify POST /v1/webhook-endpoints": _endpoint_body,
    "notify GET /v1/webhook-endpoints": _path("/v1/webhook-endpoints"),
    "notify GET /v1/webhook-endpoints/{endpoint_id}": _path(
        "/v1/webhook-endpoints/{endpoint_id}", **ENDPOINT
    ),
    "notify DELETE /v1/webhook-endpoints/{endpoint_id}": _path(
        "/v1/webhook-endpoints/{e}", e="endpoint_delete"
    ),
    "notify POST /v1/webhook-endpoints/{endpoint_id}/rotate-secret": _path(
        "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", **ENDPOINT
    ),
    "notify POST /v1/webhook-endpoints/{endpoint_id}/enable": _path(
        "/v1/webhook-endpoints/{endpoint_id}/enable", **ENDPOINT
    ),
    "notify POST /v1/webhook-endpoints/{endpoint_id}/test": _path(
        "/v1/webhook-endpoints/{endpoint_id}/test", **ENDPOINT
    ),
    "notify GET /v1/webhook-endpoints/{endpoint_id}/deliveries": _path(
        "/v1/webhook-endpoints/{endpoint_id}/deliveries", **ENDPOINT
    ),
    "notify POST /v1/webhook-endpoints/{endpoint_id}/recover": lambda w, f: Call(
        f"/v1/webhook-endpoints/{w.ids['endpoint']}/recover",
        json={"since": (date.today() - timedelta(days=1)).isoformat() + "T00:00:00Z"},
    ),
    "notify GET /v1/event-types": _path("/v1/event-types"),
    "notify GET /v1/people/{person_id}/notifications": _path(
        "/v1/people/{person_id}/notifications", **PERSON
    ),
    "notify PUT /v1/people/{person_id}/notifications": _with(
        "/v1/people/{person_id}/notifications", {"event_types": ["licence.issued"]}, **PERSON
    ),
    "notify GET /v1/people/{person_id}/notifications/deliveries": _path(
        "/v1/people/{person_id}/notifications/deliveries", **PERSON
    ),
    "notify GET /v1/deliveries/{delivery_id}": _path("/v1/deliveries/{d}", d="delivery"),
    "notify POST /v1/deliveries/{delivery_id}/redeliver": _path(
        "/v1/deliveries/{d}/redeliver", d="delivery"
    ),
}


def _call_api(world: World, row: Row, kind: str, call: Call) -> httpx.Response:
    with world.client(row.service, kind) as c:
        return c.request(
            row.method,
            call.path,
            json=call.json,
            data=call.data,
            files=call.files,
            headers=call.headers,
        )


# Forms shown before sign-in: posted with the nonce their page set (as a browser does).
PRE_SESSION = {"/sign-in", "/invitation", "/reset", "/forgot-password"}


def _call_console(world: World, row: Row, kind: str, call: Call) -> httpx.Response:
    cookie = world.console_cookie(kind)
    if row.path == "/sign-out" and kind in OFFICIALS:
        cookie = world.open_session(kind)  # signing out ends it: not the world's session
    with httpx.Client(base_url=world.services["review"].url, timeout=20) as c:
        if row.path in PRE_SESSION and row.method == "POST":
            page = c.get(row.path, params={"token": (call.data or {}).get("token", "")})
            nonce = c.cookies.get(NONCE_COOKIE) or ""
            assert page.status_code == 200 and nonce, page.text[:300]
            return c.post(row.path, data={**_form(world, row, kind, call), "csrf": nonce})
        if cookie is not None:
            c.cookies.set(CONSOLE_COOKIE, cookie)
        data = call.data
        if data is not None:
            data = {**data, "csrf": world.csrf(cookie) if cookie else ""}
        return c.request(row.method, call.path, data=data)


def _call_portal(world: World, row: Row, kind: str, call: Call) -> httpx.Response:
    """As a browser of the portal (intake's pages): staff sessions for A and B."""
    cookie = world.portal_cookie(kind)
    if row.path == "/sign-out" and kind in STAFF:
        cookie = world.open_session(f"portal_{kind}")  # signing out ends it
    with httpx.Client(base_url=world.services["intake"].url, timeout=20) as c:
        if row.path in PRE_SESSION and row.method == "POST":
            page = c.get(row.path, params={"token": (call.data or {}).get("token", "")})
            nonce = c.cookies.get(NONCE_COOKIE) or ""
            assert page.status_code == 200 and nonce, page.text[:300]
            return c.post(row.path, data={**_portal_form(world, row, kind, call), "csrf": nonce})
        if cookie is not None:
            c.cookies.set(PORTAL_COOKIE, cookie)
        data = call.data
        if data is not None:
            data = {**data, "csrf": world.csrf(cookie) if cookie else ""}
        return c.request(row.method, call.path, data=data, files=call.files)


def _portal_form(world: World, row: Row, kind: str, call: Call) -> dict[str, str]:
    """What the caller types: a staff member their e-mail and password; anyone else (an
    official too: their e-mail and password open nothing here) their credential."""
    if row.path != "/sign-in":
        return call.data or {}
    if kind in STAFF:
        return sign_in_form(world.people[f"portal_{kind}"], "")
    if kind in OFFICIALS:
        return sign_in_form(world.people[kind], "")
    password = world.credential(kind, "intake") or ""
    return {"email": f"{kind}.portal@example.com", "password": password, "code": ""}


def _form(world: World, row: Row, kind: str, call: Call) -> dict[str, str]:
    """What the caller types: an official their e-mail, password and code; anyone else
    their credential as the password."""
    if row.path != "/sign-in":
        return call.data or {}
    if kind in OFFICIALS:
        return sign_in_form(world.people[kind], "")
    # An address of its own per caller: their failures are not one account's to delay.
    password = world.credential(kind, "review") or ""
    return {"email": f"{kind}@example.eu", "password": password, "code": ""}


def _ordered(row: Row) -> list[str]:
    """Callers expected to fail first, so that a success never changes what they see."""
    return sorted(KINDS, key=row.succeeds)


def _check(world: World, row: Row, kind: str) -> str | None:
    expected = row.expect[kind]
    call = BUILDERS[row.key](world, row.succeeds(kind) and row.method != "GET")
    caller = _call_console if row.console else _call_portal if row.portal else _call_api
    answer = caller(world, row, kind, call)
    if answer.status_code != expected:
        got = f"{answer.status_code} {answer.text[:200]}"
        return f"{row.key} as {kind}: expected {expected}, got {got}"
    if "secret" in answer.text and row.service == "notify" and answer.status_code < 300:
        world.secrets += [v for k, v in answer.json().items() if k == "secret"]
    signs_in = OFFICIALS if row.console else STAFF if row.portal else ()
    if signs_in and expected == SIGN_IN and row.path != "/sign-out":
        to_sign_in = answer.headers.get("location", "").startswith("/sign-in")
        if to_sign_in == (kind in signs_in):
            return f"{row.key} as {kind}: 303 to {answer.headers.get('location')}"
    return None


# The first test of the security run builds the world in its setup (three services, the
# objects, people), and this one sends every route as every caller: on a loaded machine
# both together pass the suite's two minutes (and the portal's rows add intake's pages).
@pytest.mark.timeout(480)
def test_every_route_answers_every_caller_as_the_matrix_says(world: World) -> None:
    failures = []
    for row in ROWS:
        for kind in _ordered(row):
            failure = _check(world, row, kind)
            if failure:
                failures.append(failure)
    assert not failures, "\n".join(failures)


def test_every_route_a_service_serves_has_a_row(world: World) -> None:
    served = set()
    for service in SERVICES:
        with world.client(service) as c:
            paths = c.get("/openapi.json").json()["paths"]
        served |= {(service, m.upper(), p) for p, ops in paths.items() for m in ops}
    served |= {
        ("review", method, route.path)
        for route in console_router.routes
        for method in getattr(route, "methods", set()) - {"HEAD"}
    }
    served.add(("review", "GET", "/static/{path}"))
    served |= {("intake", method, path) for method, path in _portal_routes()}
    served.add(("intake", "GET", "/static/{path}"))
    covered = {(r.service, r.method, r.path) for r in ROWS}
    assert served - covered == set(), "routes without a row in tests/security/matrix.py"
    assert covered - served == set(), "rows for routes no service serves"
    assert set(BUILDERS) == {r.key for r in ROWS}, "every row needs a request to send"


def _portal_routes() -> list[tuple[str, str]]:
    """The portal's routes, listed by a process of their own: the portal brings intake's
    tables, which this process (review's, for the console's router) must not import too."""
    listed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json; from services.intake.portal import router; print(json.dumps("
            "[(m, r.path) for r in router.routes for m in sorted(r.methods - {'HEAD'})]))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return [(m, p) for m, p in json.loads(listed.stdout)]


def test_the_matrix_document_is_up_to_date() -> None:
    assert DOC.read_text() == render(), "run: python -m tests.security.matrix"


def test_a_revoked_credential_stops_working_at_once_in_every_service(world: World) -> None:
    eori = "DE" + uuid.uuid4().hex[:12].upper()
    company = operator(world.infra, "company", "create", "--name", "Short Lived", "--eori", eori)
    directory = open_directory(settings_of(world.infra))
    try:
        official = enrol_official(directory, "Leaving", "EU", "officer")
    finally:
        directory.engine.dispose()
    key, token = company["api_key"], official["token"]
    calls = [
        (world.services["intake"], key, "/v1/applications"),
        (world.services["notify"], key, "/v1/webhook-endpoints"),
        (world.services["review"], token, "/v1/cases"),
    ]
    for service, credential, path in calls:
        with service.client(credential) as c:
            assert c.get(path).status_code == 200
    console = signed_in_console(world.services["review"].url, official)
    assert console.get("/").status_code == 200
    operator(world.infra, "credential", "revoke", company["id"])
    operator(world.infra, "credential", "revoke", official["id"])
    for service, credential, path in calls:
        with service.client(credential) as c:
            assert c.get(path).status_code == 401, (service.name, path)
    refused = console.get("/")
    assert refused.status_code == 303 and refused.headers["location"] == "/sign-in"
    console.close()
