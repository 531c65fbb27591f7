"""The delivery worker's transport: kept-alive connections, the URL pinned to a checked
address, and the request of one attempt.

Connection pinning: the URL is checked again before every attempt (a name may resolve to a
private address today: DNS rebinding) and the request goes to the checked address itself,
with the URL's host in the Host header and as the TLS server name, so the certificate is
still verified for that host. Each receiver host has its own kept-alive connections
(`Clients`), so a connection opened (and its certificate verified) for one host is never
reused for another that shares its address; redirects are not followed and no proxy is
used, since either would send the request somewhere unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpcore
import httpx

from services.notify.domain import signing, ssrf
from services.notify.store.claims import Job

log = logging.getLogger(__name__)

USER_AGENT = "REE-Channel-Webhooks/1.0"
MAX_ERROR_LENGTH = 1000
# HTTP clients kept for this many receiver hosts at most (least recently used go first).
MAX_CLIENTS = 256
KEEPALIVE_SECONDS = 5.0
# A receiver's answer body is read up to this size (and ignored) to keep the connection.
MAX_DRAINED_BYTES = 64 * 1024


Pool = httpcore.AsyncConnectionPool
# What can go wrong on the wire besides a timeout or a refused connection.
HTTP_ERRORS = (
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ConnectionNotAvailable,
)


@dataclass(frozen=True)
class Response:
    """What one attempt got: the receiver's status and Retry-After, or why there was none."""

    status_code: int | None
    retry_after: str | None
    error: str | None


class Transport:
    """Sends attempts under a URL policy, within a timeout, verifying TLS with one context."""

    def __init__(
        self,
        url_policy: ssrf.WebhookURLPolicy,
        timeout_seconds: float,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.url_policy = url_policy
        self.timeout_seconds = timeout_seconds
        # One TLS context for every connection pool, as httpx builds it (certifi's CA bundle,
        # hostname checked, the environment ignored): not the CA bundle loaded per pool.
        self.tls = tls or httpx.create_ssl_context(trust_env=False)

    def new_pool(self) -> Pool:
        """A pool of one connection (see `Clients`), verifying TLS with the shared context."""
        return httpcore.AsyncConnectionPool(
            ssl_context=self.tls,
            max_connections=1,
            max_keepalive_connections=1,
            keepalive_expiry=KEEPALIVE_SECONDS,
        )

    async def send(self, clients: Clients, job: Job) -> Response:
        """One attempt of a claimed delivery: the URL checked again, then the request to a
        checked address. Never raises for the receiver's failings: they are the answer."""
        try:
            target = await asyncio.to_thread(ssrf.check_url, job.url, self.url_policy)
        except ssrf.UnsafeWebhookURL as exc:
            log.warning("delivery %s refused: %s (%s)", job.delivery_id, exc.reason, exc.address)
            return Response(None, None, "Refused by the URL policy: " + exc.reason)
        timestamp = int(time.time())
        signed = signing.headers(job.webhook_id, timestamp, job.body, job.secrets)
        headers = [
            (b"host", host_header(target).encode()),
            (b"user-agent", USER_AGENT.encode()),
            *((name.encode(), value.encode()) for name, value in signed.items()),
        ]
        seconds = self.timeout_seconds
        extensions = {
            "sni_hostname": target.host,
            "timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds},
        }
        origin = f"{target.scheme}://{host_header(target)}"
        error = "no address to connect to"
        for address in target.addresses:
            try:
                async with (
                    asyncio.timeout(seconds),
                    clients.borrow(origin) as pool,
                    pool.stream(
                        "POST",
                        pinned_url(target, address),
                        headers=headers,
                        content=job.body,
                        extensions=extensions,
                    ) as answer,
                ):
                    await drain(answer)
                    return Response(answer.status, retry_after(answer.headers), None)
            except (TimeoutError, httpcore.TimeoutException):
                return Response(None, None, f"Timed out after {seconds:g} s")
            except httpcore.ConnectError as exc:
                # Another checked address of the same host may answer.
                error = f"Could not connect: {exc}" if str(exc) else "Could not connect"
            except HTTP_ERRORS as exc:
                return Response(None, None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
        return Response(None, None, error[:MAX_ERROR_LENGTH])


class Clients:
    """Kept-alive HTTP connections per receiver host (scheme://host:port), in pools of one.

    An attempt borrows an idle pool of its host, or a new one, and gives it back when it is
    done, so a kept-alive connection only ever carries requests for the host it was opened
    for, even when two hosts share an address. Each pool holds a single connection because
    httpcore checks every connection of a pool (a socket poll each) on every request: one
    pool of 32 connections cost a third of the worker's CPU in a burst, 32 pools of one do
    not. At most `limit` idle pools are kept; the least recently used are closed first.

    The worker speaks to httpcore directly, below httpx's client (which it would only use
    for building the request): that halves the CPU of an attempt. httpcore never follows
    redirects nor uses proxies, which is what the URL pinning needs.
    """

    def __init__(self, make: Callable[[], Pool], limit: int = MAX_CLIENTS) -> None:
        self.make = make
        self.limit = limit
        self.idle: OrderedDict[str, list[Pool]] = OrderedDict()
        self.idle_count = 0

    @contextlib.asynccontextmanager
    async def borrow(self, origin: str) -> AsyncIterator[Pool]:
        pool = self.idle.get(origin)
        if pool:
            client = pool.pop()
            self.idle_count -= 1
        else:
            client = self.make()
        try:
            yield client
        except BaseException:
            await client.aclose()  # mid-request: its connection's state is unknown
            raise
        self.idle.setdefault(origin, []).append(client)
        self.idle.move_to_end(origin)
        self.idle_count += 1
        while self.idle_count > self.limit:
            oldest = next(iter(self.idle))
            extra = self.idle[oldest].pop(0)
            if not self.idle[oldest]:
                del self.idle[oldest]
            self.idle_count -= 1
            await extra.aclose()

    async def aclose(self) -> None:
        for pool in self.idle.values():
            for client in pool:
                await client.aclose()
        self.idle.clear()
        self.idle_count = 0


async def drain(answer: httpcore.Response) -> None:
    """Read the (ignored) body of an answer, so its kept-alive connection can carry the next
    request: a response closed unread closes its connection. A body larger than
    MAX_DRAINED_BYTES is left unread and its connection dropped."""
    read = 0
    async for chunk in answer.aiter_stream():
        read += len(chunk)
        if read > MAX_DRAINED_BYTES:
            return


def retry_after(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"retry-after":
            return value.decode("latin-1")
    return None


def host_header(target: ssrf.ResolvedTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    if target.port != ssrf.DEFAULT_PORTS[target.scheme]:
        host = f"{host}:{target.port}"
    return host


def pinned_url(target: ssrf.ResolvedTarget, address: str) -> str:
    """The URL with its host replaced by one checked address, so no second DNS lookup happens."""
    parts = urlsplit(target.url)
    host = f"[{address}]" if ":" in address else address
    return urlunsplit((target.scheme, f"{host}:{target.port}", parts.path or "/", parts.query, ""))
