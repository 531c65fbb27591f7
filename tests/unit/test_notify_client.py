"""Intake's client of notify: how notify's answers become what the portal's pages show
(httpx's MockTransport stands in for notify: the mapping is pure logic)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from services.intake.notify_client import NotifyClient, NotifyRefused, NotifyUnavailable
from shared.forwarded import HEADER


def client_answering(
    status: int, body: Any = None, seen: list[httpx.Request] | None = None
) -> NotifyClient:
    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        content = b"" if body is None else json.dumps(body).encode()
        return httpx.Response(status, content=content)

    return NotifyClient("http://notify.test", 1.0, transport=httpx.MockTransport(answer))


def test_the_session_goes_in_the_header_and_never_as_a_cookie() -> None:
    seen: list[httpx.Request] = []
    notify = client_answering(200, {"items": []}, seen)
    assert asyncio.run(notify.endpoints("ree_ss_secret")) == {"items": []}
    [request] = seen
    assert request.headers[HEADER] == "ree_ss_secret"
    assert "cookie" not in request.headers and "authorization" not in request.headers


def test_a_validation_problem_becomes_errors_by_field() -> None:
    problem = {
        "detail": "The endpoint cannot be registered; see `errors`.",
        "errors": [
            {"field": "url", "message": "not HTTPS"},
            {"field": "body.event_types", "message": "unknown"},
            {"field": "url", "message": "a second message for the same field"},
        ],
    }
    notify = client_answering(422, problem)
    with pytest.raises(NotifyRefused) as refused:
        asyncio.run(notify.create_endpoint("ree_ss_x", "http://x", ["nope"], None))
    assert refused.value.status == 422
    assert refused.value.errors == {"url": "not HTTPS", "event_types": "unknown"}


@pytest.mark.parametrize("status", [403, 404, 409])
def test_other_refusals_keep_their_status_and_detail(status: int) -> None:
    notify = client_answering(status, {"detail": "no"})
    with pytest.raises(NotifyRefused) as refused:
        asyncio.run(notify.endpoint_action("ree_ss_x", "e1", "test"))
    assert (refused.value.status, refused.value.detail, refused.value.errors) == (status, "no", {})


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_unavailable(status: int) -> None:
    with pytest.raises(NotifyUnavailable):
        asyncio.run(client_answering(status, {"detail": "starting"}).endpoints("ree_ss_x"))


def test_no_answer_is_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    notify = NotifyClient("http://notify.test", 1.0, transport=httpx.MockTransport(refuse))
    with pytest.raises(NotifyUnavailable):
        asyncio.run(notify.email_choice("ree_ss_x", "p1"))


def test_a_refusal_without_a_problem_body_is_still_a_refusal() -> None:
    with pytest.raises(NotifyRefused) as refused:
        asyncio.run(client_answering(404).endpoint("ree_ss_x", "e1"))
    assert refused.value.detail == "" and refused.value.errors == {}
