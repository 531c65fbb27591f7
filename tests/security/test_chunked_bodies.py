"""A body streamed in chunks (no Content-Length) is held to the same limit as a declared one.

The body limit counts the bytes as they arrive; beyond the limit every service answers 413
problem details (not FastAPI's 400 for a body it could not read) and nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.config import ServiceSettings
from tests.security.conftest import World

pytestmark = pytest.mark.slow

LIMIT = ServiceSettings().max_body_bytes


def _chunked(size: int) -> Iterator[bytes]:
    # A generator makes httpx send Transfer-Encoding: chunked, with no Content-Length.
    yield b'{"text": "'
    sent = 0
    while sent < size:
        chunk = min(64 * 1024, size - sent)
        yield b"x" * chunk
        sent += chunk
    yield b'", "visibility": "side"}'


@pytest.mark.parametrize(
    ("service", "kind", "path"),
    [
        ("review", "eu_officer", "/v1/cases/{case_main}/notes"),
        ("notify", "applicant_a", "/v1/webhook-endpoints"),
        ("intake", "applicant_a", "/v1/applications"),
    ],
)
def test_an_oversized_chunked_body_is_refused_with_413(
    world: World, service: str, kind: str, path: str
) -> None:
    url = path.format(case_main=world.ids["case_main"])
    with world.client(service, kind) as c:
        r = c.post(url, content=_chunked(LIMIT + 1), headers={"Content-Type": "application/json"})
        assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 413


def test_a_chunked_body_within_the_limit_is_served_and_an_oversized_one_stores_nothing(
    world: World,
) -> None:
    notes = f"/v1/cases/{world.ids['case_main']}"
    with world.client("review", "eu_officer") as c:
        before = len(c.get(notes).json()["notes"])
        small = c.post(
            f"{notes}/notes",
            content=_chunked(1000),
            headers={"Content-Type": "application/json"},
        )
        big = c.post(
            f"{notes}/notes",
            content=_chunked(LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
        after = len(c.get(notes).json()["notes"])
    assert small.status_code == 201, small.text[:300]
    assert big.status_code == 413
    assert after == before + 1, "only the note within the limit is stored"
