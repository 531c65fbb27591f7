"""What PROTOCOL.md hides from a side never reaches it: in any answer, page, export or webhook.

One application carries planted values (sentinels) in every field some side may not see: its
commercial urgency, a consignee, an end-use description, an EU-only note, a CN-only note, an
EU question and the applicant's answer, a document not marked shareable (its name, id and
bytes; the EU downloads it, so its download is in the audit trail), an EU priority override
reason, and the rules that fired with their explanations. Every shape each side can
read is then scanned twice: for the hidden keys at any depth, and for the planted values
anywhere in the text, so hidden data cannot leak under another key name either.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import date
from typing import Any

import httpx
import pytest

from tests.integration.conftest import application
from tests.security.conftest import CONSOLE_COOKIE, World, _cases, act, send_to_china
from tests.support import wait_until

pytestmark = pytest.mark.slow

HIDDEN_KEYS_CN = frozenset(
    {
        "urgency",
        "stock_days",
        "production_stop_date",
        "jobs_at_risk",
        "value_eur",
        "contract_value_eur",
        "score",
        "fired",
        "explanation",
        "rules_version",
        "consignee",
        "end_user",
        "eori",
        "sme",
        "applicant",
        "shareable",
    }
)
HIDDEN_KEYS_APPLICANT = frozenset({"score", "fired", "explanation", "rules_version", "notes"})


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        found = set(value)
        for item in value.values():
            found |= keys_in(item)
        return found
    if isinstance(value, list):
        return set().union(*(keys_in(v) for v in value)) if value else set()
    return set()


class Story:
    """The planted application, followed through both sides and back to the applicant."""

    def __init__(self, world: World) -> None:
        self.world = world
        tag = uuid.uuid4().hex[:10]
        self.tag = tag
        self.eu_note = f"EU-ONLY-NOTE-{tag}"
        self.cn_note = f"CN-ONLY-NOTE-{tag}"
        self.joint_note = f"JOINT-NOTE-{tag}"
        self.question = f"EU-QUESTION-{tag}"
        self.answer = f"APPLICANT-ANSWER-{tag}"
        self.reason = f"EU-OVERRIDE-REASON-{tag}"
        self.private_doc = f"private-{tag}.pdf"
        self.shared_doc = f"shared-{tag}.pdf"
        self.private_bytes = f"PRIVATE-BYTES-{tag}"
        self.commercial = [
            "8765431",  # jobs at risk
            "91827364",  # contract value
            "7351937",  # a goods line's value
            "2031-07-23",  # the date production stops
            f"Sentinel Consignee {tag}",
            f"Sentinel end use {tag}",
        ]
        self.body = application(
            consignee={"name": f"Sentinel Consignee {tag}", "country": "DE"},
            end_user={"name": f"Sentinel End User {tag}", "country": "DE"},
            end_use={"category": "automotive", "description": f"Sentinel end use {tag}"},
            goods=[
                {
                    "element": "Dy",
                    "form": "metal",
                    "hs_code": "2805.30",
                    "quantity_kg": 120.5,
                    "value_eur": 7351937,
                }
            ],
            urgency={
                "stock_days": 3,
                "production_stop_date": "2031-07-23",
                "jobs_at_risk": 8765431,
                "contract_value_eur": 91827364,
            },
            sme=True,
        )
        self.explanations: list[str] = []

    def client(self, service: str, kind: str) -> httpx.Client:
        return self.world.client(service, kind)

    def tell(self) -> None:
        w = self.world
        with self.client("intake", "applicant_a") as c:
            r = c.post("/v1/applications", json=self.body)
            assert r.status_code == 201, r.text
            self.app = r.json()
        self.case_id = _cases(w, [self.app])[0]
        with self.client("review", "eu_officer") as c:
            eu_view = c.get(f"/v1/cases/{self.case_id}").json()
            self.explanations = [f["explanation"] for f in eu_view["priority"]["fired"]]
            assert self.explanations, "the planted application fires rules"
            for text, visibility in ((self.eu_note, "side"), (self.joint_note, "joint")):
                r = c.post(
                    f"/v1/cases/{self.case_id}/notes", json={"text": text, "visibility": visibility}
                )
                assert r.status_code == 201, r.text
        act(w, "eu_officer", self.case_id, "request_information", question=self.question)
        app_id = self.app["id"]
        with self.client("intake", "applicant_a") as c:
            docs = []
            for name, shareable, mark in (
                (self.private_doc, "false", self.private_bytes),
                (self.shared_doc, "true", "shared"),
            ):
                content = f"%PDF-1.4\n% {mark}\n% {name}\n%%EOF\n".encode()
                r = c.post(
                    f"/v1/applications/{app_id}/documents",
                    files={"file": (name, content)},
                    data={"kind": "contract", "shareable": shareable},
                )
                assert r.status_code == 201, r.text
                docs.append(r.json()["id"])
            self.private_id, self.shared_id = docs

            def open_request() -> str | None:
                view = c.get(f"/v1/applications/{app_id}").json()
                return next(
                    (q["id"] for q in view["information_requests"] if q["status"] == "open"), None
                )

            request_id = wait_until(open_request, timeout=30, what="the question reached intake")
            r = c.post(
                f"/v1/applications/{app_id}/information-requests/{request_id}/answer",
                json={"answer": self.answer, "document_ids": docs},
            )
            assert r.status_code == 200, r.text

        def screening() -> bool:
            with self.client("review", "eu_officer") as c:
                return bool(c.get(f"/v1/cases/{self.case_id}").json()["state"] == "eu_screening")

        wait_until(screening, timeout=30, what="the answer reached review")
        with self.client("review", "eu_officer") as c:
            opened = [c.get(f"/v1/cases/{self.case_id}/documents/{d}") for d in docs]
        assert [o.status_code for o in opened] == [200, 200]
        self.eu_private_download = opened[0].text
        act(w, "eu_supervisor", self.case_id, "set_priority", tier="P1", reason=self.reason)
        act(w, "eu_officer", self.case_id, "admit")
        with self.client("review", "eu_supervisor") as c:
            r = c.post("/v1/priority-lists", json={"case_ids": [self.case_id]})
            assert r.status_code == 201, r.text
            self.list_number = r.json()["number"]
        with self.client("review", "cn_officer") as c:
            r = c.post(
                f"/v1/cases/{self.case_id}/notes", json={"text": self.cn_note, "visibility": "side"}
            )
            assert r.status_code == 201, r.text
        act(w, "cn_officer", self.case_id, "acknowledge", accepted_on=date.today().isoformat())

    def approve(self) -> None:
        self.licence = f"LIC-VIS-{self.tag}"
        act(
            self.world,
            "cn_officer",
            self.case_id,
            "approve",
            licence={
                "type": "three_month",
                "number": self.licence,
                "valid_from": date.today().isoformat(),
            },
        )
        # A shipment drawn against it: its event reaches intake's view and a webhook too.
        with self.client("review", "cn_officer") as c:
            shipped = c.post(
                f"/v1/licences/{self.licence}/shipments",
                json={
                    "shipped_on": date.today().isoformat(),
                    "lines": [{"line": 1, "quantity_kg": 1}],
                },
            )
            assert shipped.status_code == 201, shipped.text

    # --- what each side is shown ----------------------------------------------------------

    def hidden_from_cn(self) -> list[str]:
        return [
            self.eu_note,
            self.question,
            self.answer,
            self.reason,
            self.private_doc,
            self.private_id,
            self.private_bytes,
            *self.commercial,
            *self.explanations,
        ]

    def hidden_from_applicant(self) -> list[str]:
        return [self.eu_note, self.cn_note, self.joint_note, self.reason, *self.explanations]


@pytest.fixture(scope="module")
def story(world: World) -> Story:
    told = Story(world)
    told.tell()
    return told


def assert_hidden(
    texts: Iterable[tuple[str, str]], keys: frozenset[str], values: Iterable[str]
) -> None:
    values = list(values)
    leaks = []
    for where, text in texts:
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        leaks += [f"{where}: key {k!r}" for k in sorted(keys_in(parsed) & keys)]
        leaks += [f"{where}: value {v!r}" for v in values if v in text]
    assert not leaks, "\n".join(leaks)


def _get(client: httpx.Client, path: str, **params: Any) -> tuple[str, str]:
    answer = client.get(path, params=params)
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return f"GET {path} {params or ''}", answer.text


def _cn_api_answers(story: Story, kind: str) -> list[tuple[str, str]]:
    case = story.case_id
    with story.client("review", kind) as c:
        answers = [
            _get(c, f"/v1/cases/{case}"),
            _get(c, "/v1/cases", limit=200),
            _get(c, "/v1/cases", state="cn_review", limit=200),
            _get(c, "/v1/cases", tier="P1", limit=200),
            _get(c, f"/v1/cases/{case}/audit"),
            _get(c, f"/v1/cases/{case}/audit/verify"),
            _get(c, "/v1/priority-lists"),
            _get(c, f"/v1/priority-lists/{story.list_number}"),
            _get(c, f"/v1/priority-lists/{story.list_number}", format="csv"),
            _get(c, "/v1/cases", q=story.app["reference"]),
            _get(c, "/v1/cases", q=story.body["mofcom_application_number"]),
            *(_get(c, "/v1/cases", q=value[:100]) for value in story.hidden_from_cn()),
            _get(c, f"/v1/cases/{case}/documents/{story.shared_id}"),
            *(
                _get(c, "/v1/metrics/summary", group_by=g, format=f)
                for g in ("form", "element", "value_chain", "licence_type", "priority_list")
                for f in ("json", "csv")
            ),
        ]
        errors = [
            c.post(
                f"/v1/cases/{case}/actions",
                json={"action": "refuse"},
                headers={"If-Match": "999"},
            ),
            c.post(
                f"/v1/cases/{case}/actions",
                json={"action": "approve", "licence": {"type": "x"}},
                headers={"If-Match": str(c.get(f"/v1/cases/{case}").json()["version"])},
            ),
            c.post(f"/v1/cases/{case}/notes", json={"text": "", "visibility": "eu"}),
            c.post("/v1/priority/simulate", json={}),
            c.get("/v1/priority/rules"),
            c.get(f"/v1/cases/{case}/documents/{story.private_id}"),
        ]
    assert all(e.status_code >= 400 for e in errors)
    return answers + [(f"error {e.request.url.path}", e.text) for e in errors]


def _console_pages(story: Story, kind: str) -> list[tuple[str, str]]:
    session = story.world.sessions[kind]
    with httpx.Client(
        base_url=story.world.services["review"].url, cookies={CONSOLE_COOKIE: session}
    ) as c:
        pages = [
            _get(c, "/"),
            _get(c, "/", q=story.app["reference"]),
            _get(c, "/", show="all"),
            _get(c, f"/cases/{story.case_id}"),
            _get(c, "/priority-lists"),
            _get(c, f"/priority-lists/{story.list_number}"),
            _get(c, f"/priority-lists/{story.list_number}.csv"),
            _get(c, "/", q=story.body["mofcom_application_number"], show="all"),
            _get(c, "/dashboard"),
            _get(c, "/dashboard", group_by="value_chain"),
            _get(c, "/dashboard.csv", group_by="value_chain"),
            _get(c, f"/cases/{story.case_id}/documents/{story.shared_id}"),
        ]
        refused = c.post(
            f"/cases/{story.case_id}/actions",
            data={"action": "refuse", "version": "1", "csrf": story.world.csrf(session)},
        )
        document = story.private_id if kind.startswith("cn") else str(uuid.uuid4())
        hidden = c.get(f"/cases/{story.case_id}/documents/{document}")
    assert hidden.status_code == 404
    return [
        *pages,
        ("console refused action", refused.text),
        ("console hidden document", hidden.text),
    ]


def test_the_chinese_side_sees_nothing_the_protocol_hides_in_any_answer_or_page(
    story: Story,
) -> None:
    for kind in ("cn_officer", "cn_supervisor"):
        answers = _cn_api_answers(story, kind)
        assert_hidden(answers, HIDDEN_KEYS_CN, story.hidden_from_cn())
        assert_hidden(_console_pages(story, kind), frozenset(), story.hidden_from_cn())
    with story.client("review", "cn_officer") as c:
        view = c.get(f"/v1/cases/{story.case_id}").json()
    assert [d["filename"] for d in view["documents"]] == [story.shared_doc]
    with story.client("review", "cn_officer") as c:
        entries = c.get(f"/v1/cases/{story.case_id}/audit").json()["entries"]
    by_eu = [
        (e["payload"]["document_id"], e["payload"]["filename"])
        for e in entries
        if e["action"] == "document_downloaded" and e["actor"]["side"] == "EU"
    ]
    assert by_eu == [(story.shared_id, story.shared_doc)], (
        "China sees the EU's download of the shared document, not of the private one"
    )
    assert story.joint_note in [n["text"] for n in view["notes"]], "the scan saw real data"


def test_china_finds_no_case_by_a_value_hidden_from_it(story: Story) -> None:
    company = "Alpha Magnets AG"  # applicant A's name: China never sees who applied
    searched = [company, *(v for v in story.hidden_from_cn() if len(v.strip()) >= 2)]
    with story.client("review", "cn_officer") as c:
        q = story.body["mofcom_application_number"]
        mofcom = c.get("/v1/cases", params={"q": q, "limit": 200})
        assert story.case_id in [i["id"] for i in mofcom.json()["items"]], "China searches"
        for value in searched:
            r = c.get("/v1/cases", params={"q": value[:100], "limit": 200})
            assert r.status_code == 200, (value, r.text)
            assert story.case_id not in [i["id"] for i in r.json()["items"]], value
    with story.client("review", "eu_officer") as c:
        r = c.get("/v1/cases", params={"q": company, "limit": 200})
        assert r.json()["total"] >= 1, "the EU finds applicant A's cases by its name"


def test_the_eu_side_never_sees_the_chinese_sides_own_notes(story: Story) -> None:
    with story.client("review", "eu_officer") as c:
        answers = [
            _get(c, f"/v1/cases/{story.case_id}"),
            _get(c, f"/v1/cases/{story.case_id}/audit"),
            _get(c, "/v1/cases", limit=200),
        ]
    assert_hidden(answers + _console_pages(story, "eu_supervisor"), frozenset(), [story.cn_note])
    planted = [
        story.eu_note,
        story.question,
        story.answer,
        story.reason,
        story.private_doc,
        story.private_id,
    ]
    missing = [
        v for v in [*planted, *story.commercial, *story.explanations] if v not in answers[0][1]
    ]
    assert not missing, f"the EU sees every planted value, so the scans see real data: {missing}"
    assert story.private_bytes in story.eu_private_download


def test_licences_and_exports_show_neither_side_what_it_may_not_see(story: Story) -> None:
    story.approve()
    with story.client("review", "cn_supervisor") as c:
        answers = [
            _get(c, f"/v1/licences/{story.licence}"),
            _get(c, f"/v1/cases/{story.case_id}"),
            _get(c, f"/v1/cases/{story.case_id}/audit"),
            _get(c, "/v1/cases", state="approved", limit=200),
            _get(c, "/v1/metrics/summary", format="csv"),
        ]
    assert_hidden(answers, HIDDEN_KEYS_CN, story.hidden_from_cn())


def test_the_applicant_sees_no_score_rules_notes_or_override_in_views_or_webhooks(
    story: Story,
) -> None:
    world = story.world
    if not hasattr(story, "licence"):
        story.approve()
    app_id = story.app["id"]
    with story.client("intake", "applicant_a") as c:

        def decided() -> dict[str, Any] | None:
            view = c.get(f"/v1/applications/{app_id}").json()
            return view if view["licence"] and view["licence"].get("shipments") else None

        view = wait_until(decided, timeout=30, what="the licence and its shipment reached intake")
        answers = [
            (f"GET /v1/applications/{app_id}", json.dumps(view)),
            _get(c, "/v1/applications", limit=200),
        ]

    def webhooks() -> list[tuple[str, str]] | None:
        bodies = [
            (f"webhook {r.json['type']}", r.body.decode())
            for r in world.mailbox.all()
            if app_id in r.body.decode()
        ]
        types = {where for where, _ in bodies}
        wanted = {"webhook licence.issued", "webhook licence.shipment_recorded"}
        return bodies if wanted <= types else None

    bodies = wait_until(webhooks, timeout=60, what="the licence and shipment webhooks")
    cn_names = ["CN officer", "CN supervisor"]
    assert_hidden(
        answers + bodies, HIDDEN_KEYS_APPLICANT, [*story.hidden_from_applicant(), *cn_names]
    )
    assert story.question in json.dumps(view), "the applicant sees the question asked of it"


def test_a_pending_proposal_never_reaches_the_other_side_or_the_applicant(world: World) -> None:
    """A refusal China proposes (four eyes) is China's until countersigned: its planted
    detail and its id reach neither the EU (API, audit, queue, console) nor the applicant,
    and only China's queue marks the case as awaiting countersignature."""
    with world.client("intake", "applicant_a") as c:
        r = c.post("/v1/applications", json=application())
        assert r.status_code == 201, r.text
        app = r.json()
    (case_id,) = _cases(world, [app])
    send_to_china(world, [case_id])
    detail = f"CN-PROPOSED-REFUSAL-{uuid.uuid4().hex[:10]}"
    view = act(world, "cn_officer", case_id, "refuse", reason="other", detail=detail)
    (proposal,) = view["proposals"]
    with world.client("review", "cn_supervisor") as c:
        assert detail in c.get(f"/v1/cases/{case_id}/audit").text, "the scan sees real data"
    with world.client("review", "eu_officer") as c:
        answers = [
            _get(c, f"/v1/cases/{case_id}"),
            _get(c, f"/v1/cases/{case_id}/audit"),
            _get(c, f"/v1/cases/{case_id}/audit/verify"),
            _get(c, "/v1/cases", limit=200),
        ]
    session = world.sessions["eu_supervisor"]
    with httpx.Client(
        base_url=world.services["review"].url, cookies={CONSOLE_COOKIE: session}
    ) as c:
        answers.append(_get(c, f"/cases/{case_id}"))
        eu_queue = _get(c, "/", q=view["reference"])
    with world.client("review", "eu_officer") as c:
        (eu_row,) = c.get("/v1/cases", params={"q": view["reference"]}).json()["items"]
    with world.client("intake", "applicant_a") as c:
        answers.append(_get(c, f"/v1/applications/{app['id']}"))
    assert_hidden([*answers, eu_queue], frozenset(), [detail, proposal["id"]])
    assert "Awaiting countersignature" not in answers[4][1]
    assert view["reference"] in eu_queue[1], "the EU queue lists the case"
    assert "Awaiting countersignature" not in eu_queue[1], "the EU queue marks nothing"
    assert eu_row["awaiting_countersignature"] is False
    with world.client("review", "cn_supervisor") as c:
        (cn_row,) = c.get("/v1/cases", params={"q": view["reference"]}).json()["items"]
    assert cn_row["awaiting_countersignature"] is True, "China's own queue marks its proposal"
    cn_session = world.sessions["cn_supervisor"]
    with httpx.Client(
        base_url=world.services["review"].url, cookies={CONSOLE_COOKIE: cn_session}
    ) as c:
        cn_queue = c.get("/", params={"q": view["reference"]}).text
    assert "Awaiting countersignature" in cn_queue, "China's queue page shows the badge"
    with world.client("review", "cn_officer") as c:
        withdrawn = c.post(f"/v1/cases/{case_id}/proposals/{proposal['id']}/withdraw")
        assert withdrawn.status_code == 200, withdrawn.text
