"""Screening at the door (issue 21), over real HTTP with intake as a real process: a company
registers a MOFCOM number once while its application holds it, the database refuses the
second of two racing submissions, and goods need a control in force on the day."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from shared.events import CaseDecided, CaseStateChanged, new_event
from tests.integration.conftest import application, new_company
from tests.support import Infra, ServiceProcess, running, wait_until

INTAKE = "intake.events"
REVIEW = "review.events"


@pytest.fixture(scope="module")
def infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """A deployment of this module's own: the review events intake sees are the test's."""
    own = infra.isolated(tmp_path_factory.mktemp("screening"))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("intake", infra)


def _submitted(infra: Infra, mofcom_number: str) -> list[dict[str, Any]]:
    entries = infra.redis().xrange(infra.stream(INTAKE))
    return [
        f
        for _id, f in entries
        if f["type"] == "application.submitted" and mofcom_number in f["data"]
    ]


def _submit(intake: ServiceProcess, key: str, body: dict[str, Any], **headers: str) -> Any:
    with intake.client(key) as c:
        return c.post("/v1/applications", json=body, headers=headers)


def _refused_as_registered(r: httpx.Response, reference: str) -> None:
    assert r.status_code == 409, r.text
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["type"].endswith("/mofcom-number-registered")
    assert problem["existing_reference"] == reference
    assert reference in problem["detail"]


def _publish(infra: Infra, event_type: str, app: dict[str, Any], data: BaseModel) -> None:
    event = new_event("reechannel/review", event_type, app["id"], data)
    infra.redis().xadd(infra.stream(REVIEW), event.to_fields())


def _status(intake: ServiceProcess, key: str, app: dict[str, Any], status: str) -> None:
    with intake.client(key) as c:
        wait_until(
            lambda: c.get(f"/v1/applications/{app['id']}").json()["status"] == status,
            what=f"application {status}",
        )


def test_the_same_mofcom_number_twice_from_one_company_is_409_naming_the_first(
    intake: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    first = application()
    number = first["mofcom_application_number"]
    made = _submit(intake, company["api_key"], first)
    assert made.status_code == 201, made.text
    again = _submit(intake, company["api_key"], {**first, "licence_type": "annual"})
    _refused_as_registered(again, made.json()["reference"])
    with intake.client(company["api_key"]) as c:
        assert len(c.get("/v1/applications").json()["items"]) == 1
    assert len(_submitted(infra, number)) == 1
    # The replay of the first request is still a replay, not a refusal.
    key = str(uuid.uuid4())
    other = application()
    assert _submit(intake, company["api_key"], other, **{"Idempotency-Key": key}).status_code == 201
    replay = _submit(intake, company["api_key"], other, **{"Idempotency-Key": key})
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"


def test_another_company_may_register_the_same_number(intake: ServiceProcess, infra: Infra) -> None:
    body = application()
    for company in (new_company(infra), new_company(infra)):
        assert _submit(intake, company["api_key"], body).status_code == 201


def test_a_withdrawn_applications_number_may_be_registered_again_and_is_then_held(
    intake: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    body = application()
    first = _submit(intake, company["api_key"], body).json()
    with intake.client(company["api_key"]) as c:
        withdrawn = c.post(f"/v1/applications/{first['id']}/withdraw", json={})
        assert withdrawn.status_code == 200, withdrawn.text
    second = _submit(intake, company["api_key"], body)
    assert second.status_code == 201, second.text
    _refused_as_registered(_submit(intake, company["api_key"], body), second.json()["reference"])


def _refs(app: dict[str, Any], company: dict[str, Any]) -> dict[str, str]:
    return {
        "case_id": str(uuid.uuid4()),
        "application_id": app["id"],
        "reference": app["reference"],
        "company_id": company["id"],
    }


def test_a_case_not_admitted_releases_the_number_and_a_refused_one_keeps_it(
    intake: ServiceProcess, infra: Infra
) -> None:
    company = new_company(infra)
    key = company["api_key"]
    not_admitted_body, refused_body = application(), application()
    not_admitted = _submit(intake, key, not_admitted_body).json()
    refused = _submit(intake, key, refused_body).json()
    _publish(
        infra,
        "case.state_changed",
        not_admitted,
        CaseStateChanged(
            **_refs(not_admitted, company),
            action="decline",
            from_state="eu_screening",
            to_state="not_admitted",
        ),
    )
    _publish(
        infra, "case.decided", refused, CaseDecided(**_refs(refused, company), decision="refused")
    )
    _status(intake, key, not_admitted, "not_admitted")
    _status(intake, key, refused, "refused")
    assert _submit(intake, key, not_admitted_body).status_code == 201
    _refused_as_registered(_submit(intake, key, refused_body), refused["reference"])


def _race(
    intake: ServiceProcess, key: str, bodies: list[tuple[dict[str, Any], dict[str, str]]]
) -> list[httpx.Response]:
    barrier = threading.Barrier(len(bodies))
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def run(i: int) -> None:
        body, headers = bodies[i]
        with intake.client(key) as c:
            barrier.wait()
            answers[i] = c.post("/v1/applications", json=body, headers=headers)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def _race_one_number(
    intake: ServiceProcess, infra: Infra, headers: dict[str, str]
) -> tuple[dict[str, Any], list[httpx.Response]]:
    """Eight submissions of one body at once (with these headers): the body and the answers."""
    if not infra.database_url:
        pytest.skip("the race is the unique indexes' on PostgreSQL")
    body = application()
    return body, _race(intake, new_company(infra)["api_key"], [(body, headers)] * 8)


def test_racing_submissions_of_one_number_register_it_once(
    intake: ServiceProcess, infra: Infra
) -> None:
    body, answers = _race_one_number(intake, infra, {})
    made = [a for a in answers if a.status_code == 201]
    assert len(made) == 1, [a.text for a in answers]
    for refused in (a for a in answers if a.status_code != 201):
        _refused_as_registered(refused, made[0].json()["reference"])
    assert len(_submitted(infra, body["mofcom_application_number"])) == 1


def test_racing_retries_with_one_idempotency_key_all_get_the_one_application(
    intake: ServiceProcess, infra: Infra
) -> None:
    body, answers = _race_one_number(intake, infra, {"Idempotency-Key": str(uuid.uuid4())})
    assert {a.status_code for a in answers} == {201}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(_submitted(infra, body["mofcom_application_number"])) == 1


# --- the controlled-goods list, from REE_CONTROLLED_GOODS_FILE --------------------------------

SUSPENDED_DY = """
controls:
  - announcement: Test list
    published: 2025-04-04
    in_force: 2025-04-04
    elements: [Sm, Gd, Tb, Lu, Sc, Y, Ho, Er, Tm, Eu, Yb]
    forms: [metal, alloy, oxide, compound, magnet]
  - announcement: Test list, Dy suspended
    published: 2025-04-04
    in_force: 2025-04-04
    elements: [Dy]
    forms: [metal, alloy, oxide, compound, magnet]
    suspensions:
      - {by: Test suspension, from: 2025-04-05, until: 2099-12-31}
  - announcement: Test list, magnets
    published: 2025-04-04
    in_force: 2025-04-04
    elements: [Nd, Pr]
    forms: [magnet]
"""


@pytest.fixture(scope="module")
def listed(
    infra: Infra, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, Infra]]:
    """An intake of another deployment reading the test's list, in which Dy is suspended."""
    own = infra.isolated(tmp_path_factory.mktemp("controlled-goods"))
    path = Path(own.data_dir) / "controlled-goods.yaml"
    path.write_text(SUSPENDED_DY, encoding="utf-8")
    service = ServiceProcess("intake", own.env(REE_CONTROLLED_GOODS_FILE=str(path))).start()
    yield service, own
    service.stop()
    own.drop_schemas()


def test_goods_not_controlled_on_the_day_are_422_and_nothing_is_stored_or_sent(
    listed: tuple[ServiceProcess, Infra],
) -> None:
    intake, own = listed
    company = new_company(own)
    dy = application()  # the sample's one line is Dy metal
    r = _submit(intake, company["api_key"], dy)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == "goods.0.element"
    assert "suspended until 2099-12-31" in error["message"]
    assert "Test suspension" in error["message"]
    with intake.client(company["api_key"]) as c:
        assert c.get("/v1/applications").json()["items"] == []
    assert _submitted(own, dy["mofcom_application_number"]) == []
    tb = application(
        goods=[{"element": "Tb", "form": "metal", "hs_code": "280530", "quantity_kg": 5}]
    )
    assert _submit(intake, company["api_key"], tb).status_code == 201


def test_a_broken_list_stops_intake_at_start(infra: Infra, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(SUSPENDED_DY.replace("[Nd, Pr]", "[Nd, Pr, Xx]"), encoding="utf-8")
    service = ServiceProcess(
        "intake", infra.isolated(tmp_path).env(REE_CONTROLLED_GOODS_FILE=str(path))
    ).start(wait_ready=False)
    assert service.proc is not None
    assert service.proc.wait(timeout=60) != 0
    assert "controls.2.elements.2" in service.log_path.read_text()
