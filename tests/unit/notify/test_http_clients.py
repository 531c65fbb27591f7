"""The delivery worker's kept-alive connections: per host, pools of one, bounded."""

from __future__ import annotations

from typing import Any

import pytest

from services.notify.transport import Clients

A, B = "https://a.example:443", "https://b.example:443"


class Pool:
    """Stands for a connection pool: only whether it was closed matters here."""

    def __init__(self) -> None:
        self.is_closed = False

    async def aclose(self) -> None:
        self.is_closed = True


class Made:
    """The pools `Clients` made, so a test can tell which were closed."""

    def __init__(self) -> None:
        self.clients: list[Pool] = []

    def __call__(self) -> Any:
        client = Pool()
        self.clients.append(client)
        return client


async def test_a_host_gets_back_its_own_idle_client_and_never_another_hosts() -> None:
    made = Made()
    clients = Clients(made)
    async with clients.borrow(A) as first:
        pass
    async with clients.borrow(B) as other:
        assert other is not first  # B never gets A's connection
    async with clients.borrow(A) as again:
        assert again is first
    await clients.aclose()
    assert all(c.is_closed for c in made.clients)


async def test_concurrent_attempts_to_one_host_each_get_their_own_client() -> None:
    made = Made()
    clients = Clients(made)
    async with clients.borrow(A) as one, clients.borrow(A) as two:
        assert one is not two
    async with clients.borrow(A) as later:
        assert later in (one, two)
    assert len(made.clients) == 2
    await clients.aclose()


async def test_past_the_limit_the_least_recently_used_idle_clients_are_closed() -> None:
    made = Made()
    clients = Clients(made, limit=2)
    for origin in (A, B, "https://c.example:443"):
        async with clients.borrow(origin):
            pass
    first = made.clients[0]
    assert first.is_closed and not any(c.is_closed for c in made.clients[1:])
    assert A not in clients.idle and clients.idle_count == 2
    await clients.aclose()


async def test_a_client_whose_attempt_failed_is_closed_not_given_back() -> None:
    made = Made()
    clients = Clients(made)
    with pytest.raises(RuntimeError):
        async with clients.borrow(A):
            raise RuntimeError("cancelled mid-request")
    assert made.clients[0].is_closed and clients.idle_count == 0
    async with clients.borrow(A) as fresh:
        assert fresh is not made.clients[0]
    await clients.aclose()
