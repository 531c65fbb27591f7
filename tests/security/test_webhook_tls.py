"""Webhooks over TLS to a pinned address: the certificate is checked for the URL's host.

The worker connects to the address it checked (not to a second DNS answer) and still
verifies the receiver's certificate for the host in the URL, which it also sends as the TLS
server name and the Host header. A real TLS server on 127.0.0.1 with certificates made by
openssl for this test; only the worker's trust store is swapped for the test's CA.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.notify.domain.ssrf import WebhookURLPolicy
from services.notify.settings import NotifySettings
from services.notify.store.claims import Job
from services.notify.transport import Clients, Transport

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

HOST = "hooks.example.test"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certificates(folder: Path, server_name: str) -> tuple[Path, Path, Path]:
    """A CA, and a certificate for `server_name` that it signed: (ca, cert, key)."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=REE test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", f"/CN={server_name}",
        cwd=folder,
    )  # fmt: skip
    (folder / "ext.cnf").write_text(f"subjectAltName=DNS:{server_name}\n")
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "ext.cnf",
        cwd=folder,
    )  # fmt: skip
    return folder / "ca.pem", folder / "server.pem", folder / "server.key"


class TLSReceiver:
    """An HTTP/1.1 server over TLS that answers 204 and notes the Host and server name."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.server_names: list[str | None] = []
        self.hosts: list[str] = []
        self.context.sni_callback = self._sni

    def _sni(self, _sock: Any, name: str | None, _ctx: Any) -> None:
        self.server_names.append(name)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                fields = {k.lower(): v for k, v in fields.items()}
                await reader.readexactly(int(fields.get("content-length", "0")))
                self.hosts.append(fields.get("host", ""))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def receiver(tmp_path: Path) -> AsyncIterator[tuple[TLSReceiver, int, Path]]:
    ca, cert, key = make_certificates(tmp_path, HOST)
    tls = TLSReceiver(cert, key)
    server = await asyncio.start_server(tls.handle, "127.0.0.1", 0, ssl=tls.context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield tls, port, ca
    finally:
        server.close()
        await server.wait_closed()


def transport_trusting(ca: Path, resolves_to: str) -> Transport:
    """The worker's transport, with the test's CA as its only trust and a fixed DNS answer."""
    settings = NotifySettings(REE_WEBHOOK_ALLOWED_NETWORKS="127.0.0.0/8")
    policy = WebhookURLPolicy.from_settings(
        ["127.0.0.0/8"], resolver=lambda host, port: [resolves_to]
    )
    tls = ssl.create_default_context(cafile=str(ca))
    return Transport(policy, settings.webhook_timeout_seconds, tls=tls)


def job(url: str) -> Job:
    return Job(
        delivery_id="d-1",
        endpoint_id="e-1",
        application_id=None,
        webhook_id="msg_1",
        url=url,
        secrets=("whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3",),
        body=b"{}",
        attempt_number=1,
        round_attempt=1,
        event_time=datetime.now(UTC),
    )


async def test_the_pinned_address_is_reached_with_the_urls_host_verified(
    receiver: tuple[TLSReceiver, int, Path],
) -> None:
    tls, port, ca = receiver
    transport = transport_trusting(ca, "127.0.0.1")
    clients = Clients(transport.new_pool)
    try:
        first = await transport.send(clients, job(f"https://{HOST}:{port}/hooks"))
        second = await transport.send(clients, job(f"https://{HOST}:{port}/hooks"))
    finally:
        await clients.aclose()
    assert (first.status_code, first.error) == (204, None)
    assert second.status_code == 204
    assert tls.hosts == [f"{HOST}:{port}"] * 2
    # One handshake, with the URL's host as server name: the second request reused it.
    assert tls.server_names == [HOST]


async def refused_for_its_certificate(transport: Transport, url: str) -> bool:
    clients = Clients(transport.new_pool)
    try:
        answer = await transport.send(clients, job(url))
    finally:
        await clients.aclose()
    return answer.status_code is None and "certificate" in (answer.error or "").lower()


async def test_a_certificate_for_another_host_is_refused(
    receiver: tuple[TLSReceiver, int, Path],
) -> None:
    _tls, port, ca = receiver
    transport = transport_trusting(ca, "127.0.0.1")
    # The address is the same server, but its certificate does not name this host.
    assert await refused_for_its_certificate(transport, f"https://other.example.test:{port}/h")


async def test_a_receiver_whose_ca_is_not_trusted_is_refused(
    receiver: tuple[TLSReceiver, int, Path], tmp_path: Path
) -> None:
    _tls, port, _ca = receiver
    other = tmp_path / "other"
    other.mkdir()
    stranger_ca, _cert, _key = make_certificates(other, HOST)
    transport = transport_trusting(stranger_ca, "127.0.0.1")
    assert await refused_for_its_certificate(transport, f"https://{HOST}:{port}/hooks")
