"""Intake keeps the applicant's view current from review's events (published here by the test)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from pydantic import BaseModel

from shared.consumer import dlq_stream
from shared.events import (
    CaseDecided,
    CaseInformationRequested,
    CaseOpened,
    CaseStateChanged,
    Contact,
    InformationRequestRef,
    LicenceIssued,
    LicenceLine,
    LicenceRef,
    new_event,
)
from tests.integration.conftest import application, new_company
from tests.support import Infra, ServiceProcess, running, wait_until

REVIEW = "review.events"


@pytest.fixture(scope="module")
def infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """A deployment of this module's own (schemas, streams, files) in which no review runs:
    the review events intake sees are only those these tests publish, whatever services
    earlier modules left running in the shared one."""
    own = infra.isolated(tmp_path_factory.mktemp("projection"))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("intake", infra)


@pytest.fixture(scope="module")
def company_a(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Alpha Motors AG")


def publish(infra: Infra, event_type: str, subject: str, data: BaseModel) -> str:
    event = new_event("reechannel/review", event_type, subject, data)
    infra.redis().xadd(infra.stream(REVIEW), event.to_fields())
    return event.id


def refs(app: dict[str, Any], company: dict[str, Any], case_id: str) -> dict[str, str]:
    return {
        "case_id": case_id,
        "application_id": app["id"],
        "reference": app["reference"],
        "company_id": company["id"],
    }


def test_review_events_drive_the_applicants_view_through_to_the_licence(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    case_id = str(uuid.uuid4())
    with intake.client(company_a["api_key"]) as c:
        app = c.post("/v1/applications", json=application()).json()
        ids = refs(app, company_a, case_id)
        contact = Contact(id="o-1", name="Eva Europa", side="EU")
        publish(
            infra,
            "case.opened",
            case_id,
            CaseOpened(
                **ids,
                state="eu_screening",
                priority_tier="P1",
                expected_decision_date=date(2027, 1, 20),
                point_of_contact=contact,
            ),
        )
        view = wait_until(
            lambda: (
                (v := c.get(f"/v1/applications/{app['id']}").json())["status"] == "eu_screening"
                and v
            ),
            what="case opened in projection",
        )
        assert view["priority_tier"] == "P1"
        assert view["expected_decision_date"] == "2027-01-20"
        assert view["point_of_contact"]["name"] == "Eva Europa"

        request_id = str(uuid.uuid4())
        publish(
            infra,
            "case.information_requested",
            case_id,
            CaseInformationRequested(
                **ids,
                request=InformationRequestRef(
                    id=request_id, question="End-user statement?", due=date(2026, 12, 10)
                ),
            ),
        )
        publish(
            infra,
            "case.state_changed",
            case_id,
            CaseStateChanged(
                **ids,
                action="request_information",
                from_state="eu_screening",
                to_state="awaiting_applicant",
                priority_tier="P1",
            ),
        )
        view = wait_until(
            lambda: (
                (v := c.get(f"/v1/applications/{app['id']}").json())["status"]
                == "awaiting_applicant"
                and v["information_requests"]
                and v
            ),
            what="request in projection",
        )
        assert view["information_requests"][0] == {
            **view["information_requests"][0],
            "id": request_id,
            "status": "open",
            "question": "End-user statement?",
            "due": "2026-12-10",
        }

        answered = c.post(
            f"/v1/applications/{app['id']}/information-requests/{request_id}/answer",
            json={"answer": "Attached."},
        )
        assert answered.status_code == 200, answered.text
        assert answered.json()["information_requests"][0]["status"] == "answered"
        twice = c.post(
            f"/v1/applications/{app['id']}/information-requests/{request_id}/answer",
            json={"answer": "Again."},
        )
        assert twice.status_code == 409
        unknown_doc = c.post(
            f"/v1/applications/{app['id']}/information-requests/{request_id}/answer",
            json={"answer": "x", "document_ids": ["nope"]},
        )
        assert unknown_doc.status_code in (409, 422)

        publish(
            infra,
            "case.state_changed",
            case_id,
            CaseStateChanged(
                **ids,
                action="approve",
                from_state="cn_review",
                to_state="approved",
                priority_tier="P1",
            ),
        )
        publish(infra, "case.decided", case_id, CaseDecided(**ids, decision="approved"))
        publish(
            infra,
            "licence.issued",
            case_id,
            LicenceIssued(
                **ids,
                licence=LicenceRef(
                    number="LIC-2026-0001",
                    type="three_month",
                    valid_from=date(2026, 12, 1),
                    valid_until=date(2027, 3, 1),
                    status="active",
                    lines=[
                        LicenceLine(line=1, element="Dy", form="metal", approved_quantity_kg=100.0)
                    ],
                ),
            ),
        )
        view = wait_until(
            lambda: (v := c.get(f"/v1/applications/{app['id']}").json())["licence"] and v,
            what="licence in projection",
        )
    assert view["status"] == "approved"
    assert view["licence"]["number"] == "LIC-2026-0001"
    assert view["decision"]["decision"] == "approved"
    types = [t["type"] for t in view["timeline"]]
    assert types[0] == "application.received"
    assert "application.information_requested" in types and "licence.issued" in types

    answers = [
        json.loads(f["data"])
        for _i, f in infra.redis().xrange(infra.stream("intake.events"))
        if f["type"] == "application.information_answered" and f["subject"] == app["id"]
    ]
    assert [a["request_id"] for a in answers] == [request_id]


def test_a_redelivered_event_has_its_effect_once(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    case_id = str(uuid.uuid4())
    with intake.client(company_a["api_key"]) as c:
        app = c.post("/v1/applications", json=application()).json()
        event = new_event(
            "reechannel/review",
            "case.opened",
            case_id,
            CaseOpened(**refs(app, company_a, case_id), state="eu_screening", priority_tier="P2"),
        )
        for _ in range(3):
            infra.redis().xadd(infra.stream(REVIEW), event.to_fields())
        wait_until(
            lambda: c.get(f"/v1/applications/{app['id']}").json()["status"] == "eu_screening"
        )
        # A later marker event proves the duplicates before it were consumed too.
        publish(
            infra,
            "case.state_changed",
            case_id,
            CaseStateChanged(
                **refs(app, company_a, case_id),
                action="admit",
                from_state="eu_screening",
                to_state="queued",
            ),
        )
        view = wait_until(
            lambda: (v := c.get(f"/v1/applications/{app['id']}").json())["status"] == "queued" and v
        )
    assert [t["type"] for t in view["timeline"]].count("case.opened") == 1


def test_one_read_of_many_applications_events_moves_each_in_stream_order(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    """Opened and moved on in the same read (one transaction, its applications read in one
    query): each application ends queued, with one timeline entry per event, in order; a
    duplicate in the read and an application this intake never registered change nothing."""
    with intake.client(company_a["api_key"]) as c:
        apps = [c.post("/v1/applications", json=application()).json() for _ in range(6)]
        stranger = {"id": str(uuid.uuid4()), "reference": "REE-2026-999999"}
        events = []
        for app in [*apps, stranger]:
            case_id = str(uuid.uuid4())
            ids = refs(app, company_a, case_id)
            opened = new_event(
                "reechannel/review",
                "case.opened",
                case_id,
                CaseOpened(**ids, state="eu_screening", priority_tier="P2"),
            )
            moved = new_event(
                "reechannel/review",
                "case.state_changed",
                case_id,
                CaseStateChanged(
                    **ids, action="admit", from_state="eu_screening", to_state="queued"
                ),
            )
            events += [opened, opened, moved]
        with infra.redis().pipeline(transaction=True) as pipe:
            for event in events:
                pipe.xadd(infra.stream(REVIEW), event.to_fields())
            pipe.execute()

        def all_queued() -> list[dict[str, Any]] | None:
            views = [c.get(f"/v1/applications/{app['id']}").json() for app in apps]
            return views if all(v["status"] == "queued" for v in views) else None

        views = wait_until(all_queued, what="every application queued")
        assert c.get(f"/v1/applications/{stranger['id']}").status_code == 404
    for view in views:
        assert [t["type"] for t in view["timeline"]][-2:] == [
            "case.opened",
            "application.status_changed",
        ]
        assert [t["type"] for t in view["timeline"]].count("case.opened") == 1
        assert view["priority_tier"] == "P2"


def test_a_poison_event_goes_to_the_dead_letter_stream_and_the_rest_flows(
    intake: ServiceProcess, company_a: dict[str, Any], infra: Infra
) -> None:
    r = infra.redis()
    poison_id = str(uuid.uuid4())
    r.xadd(
        infra.stream(REVIEW),
        {
            "specversion": "1.0",
            "id": poison_id,
            "source": "reechannel/review",
            "type": "case.opened",
            "subject": "x",
            "time": "2026-11-25T10:00:00+00:00",
            "datacontenttype": "application/json",
            "schemaversion": "1",
            "data": json.dumps({"application_id": "missing-everything-else"}),
        },
    )
    case_id = str(uuid.uuid4())
    with intake.client(company_a["api_key"]) as c:
        app = c.post("/v1/applications", json=application()).json()
        publish(
            infra,
            "case.opened",
            case_id,
            CaseOpened(**refs(app, company_a, case_id), state="eu_screening", priority_tier="P3"),
        )
        wait_until(
            lambda: c.get(f"/v1/applications/{app['id']}").json()["status"] == "eu_screening",
            what="later event applied while the poison one is pending",
        )
    dead = wait_until(
        lambda: [f for _i, f in r.xrange(dlq_stream(infra.stream(REVIEW))) if f["id"] == poison_id],
        timeout=30,
        what="poison event dead-lettered",
    )
    assert "validation error" in dead[0]["dlq_error"].lower()
    assert int(dead[0]["dlq_deliveries"]) > 5
    pending = r.xpending(infra.stream(REVIEW), infra.prefix + "intake")
    assert pending["pending"] == 0
