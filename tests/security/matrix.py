"""Who may call which route: one table, tested route by route, rendered to docs/authorization.md.

Every row is one HTTP route of one service (a route may have a second row when the object it
acts on changes the answer, e.g. a case China has not been sent yet). Each row names the
status every kind of caller gets. `tests/security/test_authorization.py` calls each route as
each caller over real HTTP and compares; it also fails when a service serves a route that has
no row here. Regenerate the document with `python -m tests.security.matrix`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

KINDS = (
    "none",
    "revoked",
    "applicant_a",
    "applicant_b",
    "eu_officer",
    "eu_supervisor",
    "cn_officer",
    "cn_supervisor",
    "operator",
)
OFFICIALS = ("eu_officer", "eu_supervisor", "cn_officer", "cn_supervisor")
HEADINGS = {
    "none": "no credential",
    "revoked": "revoked",
    "applicant_a": "applicant A",
    "applicant_b": "applicant B",
    "eu_officer": "EU officer",
    "eu_supervisor": "EU supervisor",
    "cn_officer": "CN officer",
    "cn_supervisor": "CN supervisor",
    "operator": "operator",
}
SIGN_IN = (
    303  # the console (portal) sends a caller without an official's (staff) session to /sign-in
)
# Who holds a portal session in the matrix: a staff member of each company.
STAFF = ("applicant_a", "applicant_b")
DOC = Path(__file__).resolve().parents[2] / "docs" / "authorization.md"


@dataclass(frozen=True)
class Row:
    service: str
    method: str
    path: str
    expect: dict[str, int]
    acts_on: str
    variant: str = ""
    console: bool = False
    portal: bool = False  # a page of intake's portal (a staff member's cookie session)
    note: str = ""
    # Callers that succeed here change something; each gets its own fresh object.
    success: tuple[int, ...] = field(default=(200, 201, 202, 204))

    def succeeds(self, kind: str) -> bool:
        """Whether this caller's request goes through (a console 303 for others is sign-in)."""
        if self.console and self.expect[kind] == SIGN_IN and kind not in OFFICIALS:
            return False
        if self.portal and self.expect[kind] == SIGN_IN and kind not in STAFF:
            return False
        return self.expect[kind] in self.success

    @property
    def key(self) -> str:
        suffix = f" [{self.variant}]" if self.variant else ""
        return f"{self.service} {self.method} {self.path}{suffix}"


def _statuses(default: int, unauthenticated: int = 401, **kinds: int) -> dict[str, int]:
    out = dict.fromkeys(KINDS, default)
    out["none"] = out["revoked"] = unauthenticated
    out.update(kinds)
    return out


def everyone(status: int = 200) -> dict[str, int]:
    return dict.fromkeys(KINDS, status)


def any_credential(status: int = 200) -> dict[str, int]:
    return _statuses(status)


def applicants(status: int) -> dict[str, int]:
    """Both companies may call it (on their own data)."""
    return _statuses(403, applicant_a=status, applicant_b=status)


def owner(status: int) -> dict[str, int]:
    """Applicant A's object: A succeeds, B gets 404 (another company's object is not there)."""
    return _statuses(403, applicant_a=status, applicant_b=404)


def officials(status: int, **overrides: int) -> dict[str, int]:
    return _statuses(403, **{**dict.fromkeys(OFFICIALS, status), **overrides})


def console_page(status: int, **overrides: int) -> dict[str, int]:
    return _statuses(SIGN_IN, SIGN_IN, **{**dict.fromkeys(OFFICIALS, status), **overrides})


def portal_page(status: int, other_company: int | None = None) -> dict[str, int]:
    """A portal page: A's staff get `status`, B's staff `other_company` (404 for A's object),
    every other caller is sent to sign in."""
    b = status if other_company is None else other_company
    return _statuses(SIGN_IN, SIGN_IN, applicant_a=status, applicant_b=b)


EU_ONLY = {"cn_officer": 403, "cn_supervisor": 403}
NOT_SENT_TO_CN = {"cn_officer": 404, "cn_supervisor": 404}
# A document China may not open answers as a case not sent to it does, and as no document.
NOT_SHAREABLE = NOT_SENT_TO_CN

ROWS: tuple[Row, ...] = (
    # --- operations: open to all, they carry no case data ---------------------------------
    *(
        Row(service, "GET", path, everyone(), "-", note=note)
        for service in ("intake", "review", "notify")
        for path, note in (
            ("/healthz", "liveness"),
            ("/readyz", "readiness; names the checks, no data"),
            ("/metrics", "Prometheus counters: route templates and status codes only"),
        )
    ),
    # --- intake -----------------------------------------------------------------------------
    Row("intake", "POST", "/v1/applications", applicants(201), "a new application"),
    Row("intake", "GET", "/v1/applications", applicants(200), "the caller's own applications"),
    Row("intake", "GET", "/v1/applications/{application_id}", owner(200), "A's application"),
    Row(
        "intake",
        "POST",
        "/v1/applications/{application_id}/documents",
        owner(201),
        "A's application",
    ),
    Row(
        "intake",
        "GET",
        "/v1/applications/{application_id}/documents/{document_id}",
        owner(200),
        "A's document",
    ),
    Row(
        "intake",
        "DELETE",
        "/v1/applications/{application_id}/documents/{document_id}",
        owner(204),
        "A's document (no answer refers to it, the case not decided)",
    ),
    Row(
        "intake",
        "POST",
        "/v1/applications/{application_id}/information-requests/{request_id}/answer",
        owner(200),
        "an open request on A's application",
    ),
    Row(
        "intake",
        "POST",
        "/v1/applications/{application_id}/withdraw",
        owner(200),
        "A's undecided application",
    ),
    # --- review (API) ----------------------------------------------------------------------
    Row(
        "review",
        "GET",
        "/v1/protocol",
        any_credential(),
        "-",
        note="the protocol is public data; any valid credential may read it",
    ),
    Row("review", "GET", "/v1/cases", officials(200), "the side's queue"),
    Row("review", "GET", "/v1/cases/{case_id}", officials(200), "a case sent to China"),
    Row(
        "review",
        "GET",
        "/v1/cases/{case_id}",
        officials(200, **NOT_SENT_TO_CN),
        "a case in EU screening",
        variant="not sent to China",
    ),
    Row(
        "review",
        "POST",
        "/v1/cases/{case_id}/actions",
        officials(200, **NOT_SENT_TO_CN),
        "`admit` on a case in EU screening",
        note="side, role and state are checked by the protocol engine",
    ),
    Row(
        "review",
        "POST",
        "/v1/cases/{case_id}/actions",
        officials(403, cn_officer=200, cn_supervisor=200),
        "`acknowledge` on a case in CN review",
        variant="CN action",
    ),
    Row(
        "review",
        "POST",
        "/v1/cases/{case_id}/proposals/{proposal_id}/countersign",
        officials(403, eu_supervisor=200, **NOT_SENT_TO_CN),
        "a decline the EU officer proposed on a case in EU screening",
        note="four eyes: a supervisor of the proposer's side, not the proposer",
    ),
    Row(
        "review",
        "POST",
        "/v1/cases/{case_id}/proposals/{proposal_id}/reject",
        officials(403, eu_supervisor=200, **NOT_SENT_TO_CN),
        "a decline the EU officer proposed on a case in EU screening",
    ),
    Row(
        "review",
        "POST",
        "/v1/cases/{case_id}/proposals/{proposal_id}/withdraw",
        officials(403, eu_officer=200, eu_supervisor=200, **NOT_SENT_TO_CN),
        "a decline the EU officer proposed on a case in EU screening",
        note="its proposer or one who may countersign it",
    ),
    Row(
        "review",
        "GET",
        "/v1/cases/{case_id}/documents/{document_id}",
        officials(200),
        "a shareable document of a case sent to China",
        note="every download is an audit entry",
    ),
    Row(
        "review",
        "GET",
        "/v1/cases/{case_id}/documents/{document_id}",
        officials(200, **NOT_SHAREABLE),
        "a document not marked shareable, of a case sent to China",
        variant="not shareable",
    ),
    Row(
        "review",
        "GET",
        "/v1/cases/{case_id}/documents/{document_id}",
        officials(200, **NOT_SENT_TO_CN),
        "a document of a case in EU screening",
        variant="not sent to China",
    ),
    Row("review", "POST", "/v1/cases/{case_id}/notes", officials(201), "a case sent to China"),
    Row(
        "review",
        "POST",
        "/v1/cases/{case_id}/notes",
        officials(201, **NOT_SENT_TO_CN),
        "a case in EU screening",
        variant="not sent to China",
    ),
    Row("review", "POST", "/v1/cases/{case_id}/assign", officials(200), "a case sent to China"),
    Row("review", "GET", "/v1/cases/{case_id}/audit", officials(200), "a case sent to China"),
    Row(
        "review",
        "GET",
        "/v1/cases/{case_id}/audit",
        officials(200, **NOT_SENT_TO_CN),
        "a case in EU screening",
        variant="not sent to China",
    ),
    Row(
        "review",
        "GET",
        "/v1/cases/{case_id}/audit/verify",
        officials(200),
        "a case sent to China",
    ),
    Row(
        "review",
        "GET",
        "/v1/audit/checkpoints",
        officials(200),
        "-",
        note="each side gets its own signed tree heads (over its view heads)",
    ),
    Row(
        "review",
        "POST",
        "/v1/audit/checkpoints",
        officials(403, eu_supervisor=201, cn_supervisor=201),
        "-",
        note="on demand, besides the daily one",
    ),
    Row(
        "review",
        "GET",
        "/v1/audit/checkpoints/{number}",
        officials(200),
        "an issued checkpoint",
    ),
    Row(
        "review",
        "GET",
        "/v1/audit/public-key",
        officials(200),
        "-",
        note="the Ed25519 key that verifies checkpoint signatures",
    ),
    Row(
        "review",
        "POST",
        "/v1/priority-lists",
        officials(403, eu_supervisor=201),
        "a queued case",
    ),
    Row("review", "GET", "/v1/priority-lists", officials(200), "-"),
    Row(
        "review",
        "GET",
        "/v1/priority-lists/{number}",
        officials(200),
        "an issued list",
        note="lists are what the EU sends to China; both sides see them",
    ),
    Row(
        "review",
        "GET",
        "/v1/priority-lists/{number}",
        officials(200),
        "an issued list, `?format=csv`",
        variant="CSV",
        note="each side's view of the cases, as a spreadsheet",
    ),
    Row(
        "review",
        "POST",
        "/v1/priority/simulate",
        officials(403, eu_supervisor=200),
        "the rule set in force, as a draft",
    ),
    Row("review", "GET", "/v1/priority/rules", officials(200, **EU_ONLY), "-"),
    Row(
        "review",
        "POST",
        "/v1/priority/rules",
        officials(403, eu_supervisor=201),
        "the rule set in force, under a new version",
    ),
    Row("review", "GET", "/v1/licences/{number}", officials(200), "an issued licence"),
    Row(
        "review",
        "POST",
        "/v1/licences/{number}/shipments",
        officials(403, cn_officer=201, cn_supervisor=201),
        "an active licence (1 kg)",
    ),
    Row(
        "review",
        "POST",
        "/v1/licences/{number}/revoke",
        officials(403, cn_supervisor=200),
        "an active licence",
    ),
    Row(
        "review",
        "GET",
        "/v1/metrics/summary",
        officials(200),
        "-",
        note="aggregates built only from fields both sides may see",
    ),
    Row(
        "review",
        "GET",
        "/v1/metrics/commission",
        officials(200),
        "-",
        note="each side's figures; the statutory list names only cases sent to China",
    ),
    Row(
        "review",
        "GET",
        "/v1/metrics/monthly/{month}",
        officials(200),
        "the current month",
        note="each side's figures",
    ),
    # --- intake (the companies' portal; cookie session, CSRF token on every form) ----------
    Row("intake", "GET", "/sign-in", everyone(), "-", portal=True),
    Row(
        "intake",
        "POST",
        "/sign-in",
        _statuses(403, unauthenticated=403, **dict.fromkeys(STAFF, 303)),
        "a staff member's e-mail and password; anyone else's credential as the password",
        portal=True,
        note="only a person of a company's staff opens a session (303 to the list); an "
        "official's e-mail and password open none here",
        success=(303,),
    ),
    Row(
        "intake",
        "POST",
        "/sign-out",
        everyone(303),
        "a staff member's own session",
        portal=True,
        note="ends the server session and clears the portal's cookie",
        success=(303,),
    ),
    Row("intake", "GET", "/invitation", everyone(), "an open staff invitation's link", portal=True),
    Row(
        "intake",
        "POST",
        "/invitation",
        everyone(422),
        "an open staff invitation's link",
        portal=True,
        note="a weak password is refused next to its field; nothing is created",
    ),
    Row("intake", "GET", "/forgot-password", everyone(), "-", portal=True),
    Row(
        "intake",
        "POST",
        "/forgot-password",
        everyone(),
        "an e-mail address",
        portal=True,
        note="the same answer whether or not the address is anyone's",
    ),
    Row("intake", "GET", "/reset", everyone(), "a staff member's reset link", portal=True),
    Row(
        "intake",
        "POST",
        "/reset",
        everyone(422),
        "a staff member's reset link",
        portal=True,
        note="a weak password is refused next to its field; nothing changes",
    ),
    Row("intake", "GET", "/", portal_page(200), "the company's own applications", portal=True),
    Row(
        "intake",
        "GET",
        "/applications/{application_id}",
        portal_page(200, 404),
        "A's application",
        portal=True,
    ),
    Row(
        "intake",
        "GET",
        "/applications/{application_id}/documents/{document_id}",
        portal_page(200, 404),
        "A's document",
        portal=True,
    ),
    Row(
        "intake",
        "POST",
        "/applications/{application_id}/documents",
        portal_page(303, 404),
        "A's application",
        portal=True,
        note="303 back to the application's page once stored",
        success=(303,),
    ),
    Row(
        "intake",
        "POST",
        "/applications/{application_id}/information-requests/{request_id}/answer",
        portal_page(422, 404),
        "A's application, an empty answer",
        portal=True,
        note="refused next to the field; B's staff do not learn the application exists",
    ),
    Row(
        "intake",
        "GET",
        "/applications/{application_id}/withdraw",
        portal_page(200, 404),
        "A's application",
        portal=True,
        note="the confirmation step",
    ),
    Row(
        "intake",
        "POST",
        "/applications/{application_id}/withdraw",
        portal_page(422, 404),
        "A's application, the confirmation not ticked",
        portal=True,
        note="nothing changes until the box is ticked",
    ),
    Row("intake", "GET", "/apply", portal_page(200), "the new-application form", portal=True),
    Row(
        "intake",
        "POST",
        "/apply",
        portal_page(422),
        "an empty form",
        portal=True,
        note="each company's staff apply for their own company; refused next to each field, "
        "nothing stored",
    ),
    # Your company (docs/portal.md): the matrix's staff of A and B are admins; a member's
    # answers (403) are tests/security/test_portal_admin_authorization.py's table.
    Row("intake", "GET", "/keys", portal_page(200), "the company's own keys", portal=True),
    Row(
        "intake",
        "POST",
        "/keys",
        portal_page(422),
        "an empty name",
        portal=True,
        note="each company's admins create their own company's keys; nothing stored",
    ),
    Row(
        "intake",
        "GET",
        "/keys/{key_id}/revoke",
        portal_page(200, 404),
        "a key of A",
        portal=True,
        note="the confirmation step",
    ),
    Row(
        "intake",
        "POST",
        "/keys/{key_id}/revoke",
        portal_page(303, 404),
        "a key of A",
        portal=True,
        note="303 back to the keys once revoked",
        success=(303,),
    ),
    Row("intake", "GET", "/colleagues", portal_page(200), "the company's own people", portal=True),
    Row(
        "intake",
        "POST",
        "/colleagues",
        portal_page(422),
        "an empty e-mail",
        portal=True,
        note="each company's admins invite to their own company; nothing stored",
    ),
    Row(
        "intake",
        "POST",
        "/colleagues/{person_id}/role",
        portal_page(303, 404),
        "a colleague of A",
        portal=True,
        success=(303,),
    ),
    Row(
        "intake",
        "GET",
        "/colleagues/{person_id}/{change}",
        portal_page(200, 404),
        "a colleague of A, disable",
        portal=True,
        note="the confirmation step",
    ),
    Row(
        "intake",
        "POST",
        "/colleagues/{person_id}/{change}",
        portal_page(303, 404),
        "a colleague of A, disable",
        portal=True,
        success=(303,),
    ),
    # Webhooks and e-mails (docs/portal.md): notify's API with the session forwarded.
    Row("intake", "GET", "/webhooks", portal_page(200), "the company's own endpoints", portal=True),
    Row(
        "intake",
        "POST",
        "/webhooks",
        portal_page(422),
        "an empty form",
        portal=True,
        note="notify's 422 next to the fields; nothing stored",
    ),
    Row(
        "intake",
        "GET",
        "/webhooks/{endpoint_id}",
        portal_page(200, 404),
        "A's endpoint",
        portal=True,
        note="and its delivery log",
    ),
    Row(
        "intake",
        "POST",
        "/webhooks/{endpoint_id}/rotate-secret",
        portal_page(200, 404),
        "A's endpoint",
        portal=True,
        note="the new secret shown once on the answer",
    ),
    *(
        Row(
            "intake",
            "POST",
            f"/webhooks/{{endpoint_id}}{action}",
            portal_page(303, 404),
            acts_on,
            portal=True,
            success=(303,),
        )
        for action, acts_on in (
            ("/test", "A's endpoint"),
            ("/enable", "A's endpoint"),
            ("/delete", "an endpoint of A"),
            ("/deliveries/{delivery_id}/redeliver", "a delivery to A's endpoint"),
        )
    ),
    Row(
        "intake",
        "POST",
        "/webhooks/{endpoint_id}/recover",
        portal_page(422, 404),
        "A's endpoint, no time given",
        portal=True,
        note="nothing is sent again",
    ),
    Row(
        "intake",
        "GET",
        "/me/emails",
        portal_page(200),
        "the signed-in person's own e-mails",
        portal=True,
    ),
    Row(
        "intake",
        "POST",
        "/me/emails",
        portal_page(303),
        "the signed-in person's own e-mails",
        portal=True,
        note="only ever one's own choice",
        success=(303,),
    ),
    Row("intake", "GET", "/static/{path}", everyone(), "the portal's stylesheet", portal=True),
    # --- review (web console; cookie session, CSRF token on every form) ------------------
    Row("review", "GET", "/sign-in", everyone(), "-", console=True),
    Row(
        "review",
        "POST",
        "/sign-in",
        _statuses(403, unauthenticated=403, **dict.fromkeys(OFFICIALS, 303)),
        "an official's e-mail, password and code; anyone else's credential as the password",
        console=True,
        note="only a person who is an official opens a session (303 to the queue); a token "
        "no longer signs in; the form needs its page's nonce",
        success=(303,),
    ),
    Row(
        "review",
        "POST",
        "/sign-out",
        everyone(303),
        "an official's own session",
        console=True,
        note="ends the server session (a copied cookie stops working) and clears the cookie; "
        "without a session there is nothing to end",
        success=(303,),
    ),
    Row(
        "review",
        "GET",
        "/invitation",
        everyone(),
        "an open invitation's link",
        console=True,
        note="the link is the credential: password, QR code of a new TOTP factor",
    ),
    Row(
        "review",
        "POST",
        "/invitation",
        everyone(422),
        "an open invitation's link",
        console=True,
        note="a weak password is refused next to its field; nothing is created",
    ),
    Row("review", "GET", "/forgot-password", everyone(), "-", console=True),
    Row(
        "review",
        "POST",
        "/forgot-password",
        everyone(),
        "an e-mail address",
        console=True,
        note="the same answer whether or not the address is anyone's",
    ),
    Row("review", "GET", "/reset", everyone(), "a reset link", console=True),
    Row(
        "review",
        "POST",
        "/reset",
        everyone(422),
        "a reset link",
        console=True,
        note="a weak password is refused next to its field; nothing changes",
    ),
    Row(
        "review",
        "POST",
        "/language",
        console_page(303),
        "the official's own language",
        console=True,
        note="stored with the official (their id); 303 back to the page",
        success=(303,),
    ),
    Row(
        "review",
        "GET",
        "/preferences",
        console_page(200),
        "the official's own preferences",
        console=True,
        note="language and daily digest; the official's own e-mail address",
    ),
    Row(
        "review",
        "POST",
        "/preferences",
        console_page(303),
        "the official's own preferences",
        console=True,
        note="stored with the official (their id); an unknown language is 422 next to its field",
        success=(303,),
    ),
    Row("review", "GET", "/", console_page(200), "the side's queue", console=True),
    Row(
        "review", "GET", "/cases/{case_id}", console_page(200), "a case sent to China", console=True
    ),
    Row(
        "review",
        "GET",
        "/cases/{case_id}",
        console_page(200, **NOT_SENT_TO_CN),
        "a case in EU screening",
        variant="not sent to China",
        console=True,
    ),
    Row(
        "review",
        "GET",
        "/cases/{case_id}/documents/{document_id}",
        console_page(200),
        "a shareable document of a case sent to China",
        console=True,
        note="the API's download under the console session",
    ),
    Row(
        "review",
        "GET",
        "/cases/{case_id}/documents/{document_id}",
        console_page(200, **NOT_SHAREABLE),
        "a document not marked shareable, of a case sent to China",
        variant="not shareable",
        console=True,
    ),
    Row(
        "review",
        "POST",
        "/cases/{case_id}/actions",
        console_page(303, **NOT_SENT_TO_CN),
        "`admit` on a case in EU screening",
        console=True,
        note="success is a 303 back to the case page",
        success=(303,),
    ),
    Row(
        "review",
        "POST",
        "/cases/{case_id}/proposals/{proposal_id}/{verb}",
        console_page(403, eu_supervisor=303, **NOT_SENT_TO_CN),
        "`countersign` of a decline the EU officer proposed on a case in EU screening",
        console=True,
        note="the verb is countersign, reject or withdraw; success is a 303 to the case page",
        success=(303,),
    ),
    Row(
        "review",
        "POST",
        "/cases/{case_id}/notes",
        console_page(303),
        "a case sent to China",
        console=True,
        success=(303,),
    ),
    Row(
        "review",
        "POST",
        "/cases/{case_id}/assign",
        console_page(303),
        "a case sent to China",
        console=True,
        success=(303,),
    ),
    Row("review", "GET", "/priority-lists", console_page(200), "-", console=True),
    Row(
        "review",
        "GET",
        "/priority-lists/{number}",
        console_page(200),
        "an issued list",
        console=True,
    ),
    Row(
        "review",
        "GET",
        "/priority-lists/{number}.csv",
        console_page(200),
        "an issued list",
        console=True,
    ),
    Row(
        "review",
        "POST",
        "/priority-lists",
        console_page(403, eu_supervisor=303),
        "a queued case",
        console=True,
        success=(303,),
    ),
    Row("review", "GET", "/priority-rules", console_page(200, **EU_ONLY), "-", console=True),
    Row(
        "review",
        "POST",
        "/priority-rules",
        console_page(403, eu_supervisor=200),
        "`simulate` of the rule set in force",
        console=True,
        success=(),
    ),
    Row("review", "GET", "/dashboard", console_page(200), "-", console=True),
    Row("review", "GET", "/dashboard.csv", console_page(200), "-", console=True),
    Row("review", "GET", "/dashboard/commission.csv", console_page(200), "-", console=True),
    Row("review", "GET", "/reports/monthly", console_page(200), "-", console=True),
    Row("review", "GET", "/reports/monthly.csv", console_page(200), "-", console=True),
    Row("review", "GET", "/static/{path}", everyone(), "the stylesheet", console=True),
    # --- notify -----------------------------------------------------------------------------
    Row("notify", "POST", "/v1/webhook-endpoints", applicants(201), "a new endpoint"),
    Row("notify", "GET", "/v1/webhook-endpoints", applicants(200), "the caller's own endpoints"),
    Row("notify", "GET", "/v1/webhook-endpoints/{endpoint_id}", owner(200), "A's endpoint"),
    Row("notify", "DELETE", "/v1/webhook-endpoints/{endpoint_id}", owner(204), "A's endpoint"),
    Row(
        "notify",
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
        owner(200),
        "A's endpoint",
    ),
    Row("notify", "POST", "/v1/webhook-endpoints/{endpoint_id}/enable", owner(200), "A's endpoint"),
    Row("notify", "POST", "/v1/webhook-endpoints/{endpoint_id}/test", owner(202), "A's endpoint"),
    Row(
        "notify",
        "GET",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries",
        owner(200),
        "A's endpoint",
    ),
    Row(
        "notify",
        "POST",
        "/v1/webhook-endpoints/{endpoint_id}/recover",
        owner(202),
        "A's endpoint",
    ),
    Row("notify", "GET", "/v1/deliveries/{delivery_id}", owner(200), "A's delivery"),
    Row("notify", "POST", "/v1/deliveries/{delivery_id}/redeliver", owner(202), "A's delivery"),
    Row("notify", "GET", "/v1/event-types", applicants(200), "what may be subscribed to"),
    Row("notify", "GET", "/v1/people/{person_id}/notifications", owner(200), "a person of A"),
    Row("notify", "PUT", "/v1/people/{person_id}/notifications", owner(200), "a person of A"),
    Row(
        "notify",
        "GET",
        "/v1/people/{person_id}/notifications/deliveries",
        owner(200),
        "a person of A",
    ),
)


def rows_of(service: str, method: str, path: str) -> list[Row]:
    return [r for r in ROWS if (r.service, r.method, r.path) == (service, method, path)]


def render() -> str:
    """The table as Markdown, for docs/authorization.md."""
    lines = [
        "# Who may call what",
        "",
        "Generated from `tests/security/matrix.py` by `python -m tests.security.matrix`; "
        "`tests/security/test_authorization.py` calls every route below as every kind of "
        "caller over real HTTP and fails on any difference, and fails when a service serves a "
        "route that has no row here (and when this file is not up to date).",
        "",
        "Callers: *no credential*; a *revoked* credential (an applicant key on intake and "
        "notify, on review an EU supervisor's token and, for the console, their session ended "
        "by revoking them); *applicant A* and *applicant B* (two "
        "companies' API keys; the objects used belong to A, so B shows what another company "
        "gets); the four officials; an *operator* token (`reechannel operator create`). "
        "Operators administer through the `reechannel` command, which works on the database "
        "directly: no HTTP route serves them, so they get 403 on applicants' and officials' "
        "routes.",
        "",
        "Statuses: 401 no valid credential; 403 valid credential, wrong kind, side or role; "
        "404 the object is not the caller's (another company's application, a case not sent "
        "to China) — it is not there for them, not forbidden. Console pages answer 303 to "
        "`/sign-in` when the caller has no official's session, and a success is a 303 back to "
        "the page. Portal pages (intake's `/`, docs/portal.md) do the same for company "
        "staff: there, *applicant A* and *applicant B* are an admin of each company "
        "signed in to the portal. A member's answers on the admin pages (403 on keys and "
        "colleagues) are `tests/security/test_portal_admin_authorization.py`'s table; the "
        "webhooks pages' are notify's (`tests/integration/test_portal_hooks.py`).",
        "",
    ]
    for service in ("intake", "review", "notify"):
        lines += [f"## {service}", ""]
        head = ["route", *(HEADINGS[k] for k in KINDS), "acts on"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in (r for r in ROWS if r.service == service):
            route = f"`{row.method} {row.path}`"
            if row.variant:
                route += f" ({row.variant})"
            if row.console:
                route += " console"
            if row.portal:
                route += " portal"
            acts_on = row.acts_on + (f"; {row.note}" if row.note else "")
            cells = [route, *(str(row.expect[k]) for k in KINDS), acts_on]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    DOC.write_text(render())
    sys.stdout.write(f"wrote {DOC}\n")
