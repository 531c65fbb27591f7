"""Withdrawals and answers that race, with intake and review as real processes (red-team
findings F10 and F11): one write wins, the others are 409, one event is sent, and intake and
review end in the same state."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest

from tests.integration.conftest import application, new_company
from tests.support import Infra, ServiceProcess, create_officials, wait_until

INTAKE = "intake.events"
REVIEW = "review.events"


@pytest.fixture(scope="module")
def infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """A deployment of this module's own: the late-withdrawal test holds back review events,
    which must not disturb services other modules left running in the shared one."""
    own = infra.isolated(tmp_path_factory.mktemp("races"))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    service = ServiceProcess("intake", infra.env()).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def review(infra: Infra, intake: ServiceProcess) -> Iterator[ServiceProcess]:
    service = ServiceProcess("review", infra.env()).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def officials(infra: Infra) -> dict[str, dict[str, Any]]:
    return create_officials(infra)


@pytest.fixture(scope="module")
def company(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Racing Magnets GmbH")


def _events(infra: Infra, stream: str, subject: str, type_: str) -> list[dict[str, Any]]:
    entries = infra.redis().xrange(infra.stream(stream))
    return [f for _id, f in entries if f["subject"] == subject and f["type"] == type_]


def _all_at_once(count: int, call: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """`count` requests released together by a barrier, each on its own connection."""
    barrier = threading.Barrier(count)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        barrier.wait()
        answer = call(index)
        with lock:
            answers.append(answer)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def _view(intake: ServiceProcess, company: dict[str, Any], app_id: str) -> dict[str, Any]:
    with intake.client(company["api_key"]) as c:
        return dict(c.get(f"/v1/applications/{app_id}").json())


def _case(review: ServiceProcess, officials: dict[str, Any], reference: str) -> dict[str, Any]:
    def find() -> dict[str, Any] | None:
        with review.client(officials["eu_officer"]["token"]) as c:
            items = c.get("/v1/cases", params={"q": reference, "limit": 200}).json()["items"]
            hit = [i for i in items if i["reference"] == reference]
            return c.get(f"/v1/cases/{hit[0]['id']}").json() if hit else None

    return wait_until(find, timeout=30, what=f"case {reference} in review")


def _act(
    review: ServiceProcess, credential: str, case_id: str, action: str, **params: Any
) -> dict[str, Any]:
    with review.client(credential) as c:
        current = c.get(f"/v1/cases/{case_id}").json()
        r = c.post(
            f"/v1/cases/{case_id}/actions",
            json={"action": action, **params},
            headers={"If-Match": str(current["version"])},
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


def _submitted(intake: ServiceProcess, company: dict[str, Any]) -> dict[str, Any]:
    with intake.client(company["api_key"]) as c:
        r = c.post("/v1/applications", json=application())
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_of_six_concurrent_withdrawals_one_wins_and_one_event_is_sent(
    intake: ServiceProcess, company: dict[str, Any], infra: Infra
) -> None:
    app = _submitted(intake, company)

    def withdraw(index: int) -> httpx.Response:
        with intake.client(company["api_key"]) as c:
            return c.post(f"/v1/applications/{app['id']}/withdraw", json={"reason": f"r{index}"})

    answers = _all_at_once(6, withdraw)
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409, 409]
    assert all(
        a.headers["content-type"] == "application/problem+json"
        for a in answers
        if a.status_code == 409
    )
    # Events are published in commit order: once an application submitted after all the
    # withdrawals answered is on the stream, every withdrawal's event would be there too.
    later = _submitted(intake, company)
    wait_until(lambda: _events(infra, INTAKE, later["id"], "application.submitted"), timeout=30)
    assert len(_events(infra, INTAKE, app["id"], "application.withdrawn")) == 1
    timeline = [t["type"] for t in _view(intake, company, app["id"])["timeline"]]
    assert timeline.count("application.withdrawn") == 1


def test_of_five_concurrent_answers_one_is_stored_and_review_holds_the_same(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company: dict[str, Any],
    infra: Infra,
) -> None:
    app = _submitted(intake, company)
    case = _case(review, officials, app["reference"])
    _act(
        review,
        officials["eu_officer"]["token"],
        case["id"],
        "request_information",
        question="Which motor platform?",
    )
    view = wait_until(
        lambda: (v := _view(intake, company, app["id"]))["information_requests"] and v,
        timeout=30,
        what="the request reaches intake",
    )
    request_id = view["information_requests"][0]["id"]

    def answer(index: int) -> httpx.Response:
        with intake.client(company["api_key"]) as c:
            return c.post(
                f"/v1/applications/{app['id']}/information-requests/{request_id}/answer",
                json={"answer": f"answer number {index}"},
                headers={"X-Answer": str(index)},
            )

    answers = _all_at_once(5, answer)
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409, 409]
    winner = next(a for a in answers if a.status_code == 200)
    text = json.loads(winner.request.content)["answer"]
    events = wait_until(
        lambda: _events(infra, INTAKE, app["id"], "application.information_answered"),
        timeout=30,
    )

    def answered_in_review() -> dict[str, Any] | None:
        with review.client(officials["eu_officer"]["token"]) as c:
            requests = c.get(f"/v1/cases/{case['id']}").json()["information_requests"]
        return requests[0] if requests[0]["status"] == "answered" else None

    held = wait_until(answered_in_review, timeout=30, what="review records the answer")
    assert held["answer"] == text
    assert [json.loads(e["data"])["answer"] for e in events] == [text]


def _to_cn_review(
    intake: ServiceProcess, review: ServiceProcess, officials: dict[str, Any], app: dict[str, Any]
) -> dict[str, Any]:
    case = _case(review, officials, app["reference"])
    _act(review, officials["eu_officer"]["token"], case["id"], "admit")
    with review.client(officials["eu_supervisor"]["token"]) as c:
        r = c.post("/v1/priority-lists", json={"case_ids": [case["id"]]})
    assert r.status_code == 201, r.text
    _act(
        review,
        officials["cn_officer"]["token"],
        case["id"],
        "acknowledge",
        accepted_on=date.today().isoformat(),
    )
    return case


def _approve(review: ServiceProcess, officials: dict[str, Any], case: dict[str, Any]) -> None:
    _act(
        review,
        officials["cn_officer"]["token"],
        case["id"],
        "approve",
        licence={
            "type": "three_month",
            "number": f"LIC-{case['id'][:8]}",
            "valid_from": date.today().isoformat(),
            "lines": [{"line": 1, "approved_quantity_kg": 100}],
        },
    )


def test_a_withdrawal_that_reaches_review_after_its_decision_leaves_the_decision_standing(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company: dict[str, Any],
    infra: Infra,
) -> None:
    """The race of F10, made certain: review approves while intake has not yet projected the
    approval (its review events are held back), the applicant withdraws meanwhile, and the
    withdrawal reaches review after the decision, in that order."""
    app = _submitted(intake, company)
    case = _to_cn_review(intake, review, officials, app)
    wait_until(
        lambda: _view(intake, company, app["id"])["status"] == "cn_review",
        timeout=30,
        what="intake sees cn_review",
    )
    intake.stop()
    _approve(review, officials, case)
    held = wait_until(
        lambda: [
            (entry_id, fields)
            for entry_id, fields in infra.redis().xrange(infra.stream(REVIEW))
            if fields["subject"] == case["id"]
            and fields["type"] in ("case.state_changed", "case.decided", "licence.issued")
            and json.loads(fields["data"]).get("to_state", "approved") == "approved"
        ],
        timeout=30,
        what="review publishes the approval",
    )
    assert sorted(f["type"] for _, f in held) == [
        "case.decided",
        "case.state_changed",
        "licence.issued",
    ]
    # Intake has not read them (it is stopped): they are held back until it has taken the
    # withdrawal, and review is stopped so that it reads the withdrawal only after that.
    infra.redis().xdel(infra.stream(REVIEW), *[entry_id for entry_id, _ in held])
    review.stop()
    intake.start()
    with intake.client(company["api_key"]) as c:
        withdrawn = c.post(f"/v1/applications/{app['id']}/withdraw", json={"reason": "too slow"})
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    for _entry_id, fields in held:
        infra.redis().xadd(infra.stream(REVIEW), fields)
    wait_until(
        lambda: _view(intake, company, app["id"])["licence"],
        timeout=30,
        what="intake projects the approval",
    )
    review.start()

    def settled() -> dict[str, Any] | None:
        view = _view(intake, company, app["id"])
        types = [t["type"] for t in view["timeline"]]
        # The status too: the view reads the application and its timeline in two queries, so
        # one read may see the late-withdrawal entry and the status from just before it.
        done = view["licence"] and "application.withdrawal_too_late" in types
        return view if done and view["status"] != "withdrawn" else None

    view = wait_until(settled, timeout=60, what="intake projects the late withdrawal")
    with review.client(officials["eu_officer"]["token"]) as c:
        state = c.get(f"/v1/cases/{case['id']}").json()["state"]
    assert state == view["status"] == "approved"
    assert view["decision"]["decision"] == "approved"
    assert view["licence"]["status"] == "active"
    types = [t["type"] for t in view["timeline"]]
    assert types.index("application.withdrawn") < types.index("application.withdrawal_too_late")
    assert types[-1] == "application.withdrawal_too_late"
    # And once decided in intake's view, a withdrawal is refused there.
    with intake.client(company["api_key"]) as c:
        again = c.post(f"/v1/applications/{app['id']}/withdraw")
    assert again.status_code == 409
