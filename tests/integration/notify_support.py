"""Helpers of the notify tests: a real webhook receiver on 127.0.0.1, source events, the log."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import standardwebhooks
from pydantic import BaseModel

from shared.accounts.models import Person, PersonKind, StaffRole
from shared.applications import ApplicationBody
from shared.config import CommonSettings
from shared.db import session_scope, utcnow
from shared.directory import Directory, open_directory
from shared.events import (
    EVENT_STREAMS,
    STREAM_SOURCES,
    ApplicationSubmitted,
    CaseDecided,
    CaseInformationRequested,
    CaseStateChanged,
    Contact,
    InformationRequestRef,
    LicenceIssued,
    LicenceLine,
    LicenceRef,
    new_event,
)
from tests.integration.conftest import VALID_APPLICATION
from tests.support import Infra, wait_until

# Loopback is allowed explicitly, as the operator setting would for a demo; retries come
# after about a second instead of minutes.
LOOPBACK = {"REE_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128", "REE_WEBHOOK_ALLOW_HTTP": "true"}
FAST = {
    "REE_WEBHOOK_RETRY_SCHEDULE": "1,1,1",
    "REE_DELIVERY_POLL_SECONDS": "0.2",
    "REE_WEBHOOK_TIMEOUT_SECONDS": "5",
}


def notify_env(infra: Infra, **extra: str) -> dict[str, str]:
    return infra.env(**{**LOOPBACK, **FAST, **extra})


def _directory(infra: Infra) -> Directory:
    return open_directory(
        CommonSettings(
            DATABASE_URL=infra.database_url,
            REE_DATA_DIR=infra.data_dir,
            REE_SCHEMA_PREFIX=infra.prefix,
        )
    )


def new_company(infra: Infra, name: str = "Company") -> dict[str, Any]:
    """A company and its API key, issued in this process (the operator command is slower)."""
    directory = _directory(infra)
    try:
        company, key = directory.create_company(name, "DE" + uuid.uuid4().hex[:12].upper())
    finally:
        directory.engine.dispose()
    return {"id": company.id, "name": company.name, "api_key": key}


def staff_member(infra: Infra, company: dict[str, Any], name: str) -> dict[str, str]:
    """A person of the company's staff, written to the directory as an accepted invitation
    would leave them (the invitation itself is the accounts tests' concern)."""
    person = Person(
        kind=PersonKind.staff.value,
        email=f"{name.lower()}.{uuid.uuid4().hex[:8]}@company.example",
        name=name,
        company_id=company["id"],
        role=StaffRole.member.value,
        password_hash="not used: this person never signs in",
    )
    directory = _directory(infra)
    try:
        with session_scope(directory.engine) as session:
            session.add(person)
    finally:
        directory.engine.dispose()
    return {"id": person.id, "email": person.email, "name": name}


@dataclass(frozen=True)
class Reply:
    """A scripted answer, used once, for the first request whose body contains `only_if`."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    only_if: str | None = None


@dataclass
class Received:
    """One request as the receiver saw it, and what it answered."""

    headers: dict[str, str]
    body: bytes
    status: int
    verified: bool
    # The sender's port: one kept-alive connection carries several requests from one port.
    peer_port: int = 0

    @property
    def webhook_id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Mailbox:
    """One receiving URL: answers from a script (then 200), verifying with standardwebhooks."""

    url: str
    replies: list[Reply] = field(default_factory=list)
    secrets: list[str] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verifies(self, body: bytes, headers: dict[str, str]) -> bool:
        """Accepted when any known secret verifies it with the Standard Webhooks package."""
        for secret in self.secrets:
            try:
                standardwebhooks.Webhook(secret).verify(body, headers)
                return True
            except standardwebhooks.WebhookVerificationError:
                continue
        return False

    def take(self, headers: dict[str, str], body: bytes, peer_port: int = 0) -> Reply:
        verified = self.verifies(body, headers)
        with self.lock:
            reply = Reply()
            for i, scripted in enumerate(self.replies):
                if scripted.only_if is None or scripted.only_if.encode() in body:
                    reply = self.replies.pop(i)
                    break
            if not verified:
                reply = Reply(401)
            self.requests.append(Received(headers, body, reply.status, verified, peer_port))
        return reply

    def successes(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if 200 <= r.status < 300]

    def all(self) -> list[Received]:
        with self.lock:
            return list(self.requests)


class Receiver:
    """An HTTP server on 127.0.0.1 with one mailbox per path, in a background thread."""

    def __init__(self, port: int = 0) -> None:
        self.mailboxes: dict[str, Mailbox] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # HTTP/1.1: connections stay open between requests, as real receivers keep them.
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                mailbox = receiver.mailboxes.get(self.path)
                if mailbox is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = mailbox.take(headers, body, int(self.client_address[1]))
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def mailbox(self, *replies: Reply | int) -> Mailbox:
        path = f"/hooks/{uuid.uuid4().hex[:12]}"
        box = Mailbox(
            url=f"http://127.0.0.1:{self.port}{path}",
            replies=[r if isinstance(r, Reply) else Reply(r) for r in replies],
        )
        self.mailboxes[path] = box
        return box


@contextmanager
def running_receiver(ports: Iterable[int] = (0,)) -> Iterator[Receiver]:
    """A receiver on the first of `ports` that is free (0: any port the system picks)."""
    receiver = None
    for port in ports:
        try:
            receiver = Receiver(port)
            break
        except OSError:
            continue  # taken by another process on this machine
    assert receiver is not None, f"no free port among {ports}"
    receiver.thread.start()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()


ALL_TYPES = [
    "application.received",
    "application.status_changed",
    "application.information_requested",
    "application.information_reminder",
    "application.approved",
    "application.refused",
    "licence.issued",
    "licence.revoked",
    "licence.shipment_recorded",
]


def register(
    client: httpx.Client, mailbox: Mailbox, event_types: list[str] | None = None
) -> dict[str, Any]:
    """Register the mailbox's URL as an endpoint and teach the mailbox its secret."""
    answer = client.post(
        "/v1/webhook-endpoints", json={"url": mailbox.url, "event_types": event_types or ALL_TYPES}
    )
    assert answer.status_code == 201, answer.text
    endpoint: dict[str, Any] = answer.json()
    mailbox.secrets.append(endpoint["secret"])
    return endpoint


_numbers = itertools.count(1)
T = TypeVar("T")


class Application:
    """One application of one company, and the events that tell its story."""

    def __init__(self, infra: Infra, company: dict[str, Any]) -> None:
        self.infra = infra
        self.company_id = company["id"]
        self.id = str(uuid.uuid4())
        self.case_id = str(uuid.uuid4())
        self.reference = f"REC-2026-{next(_numbers):06d}"

    def _refs(self) -> dict[str, str]:
        return {
            "application_id": self.id,
            "reference": self.reference,
            "company_id": self.company_id,
        }

    def publish(self, event_type: str, data: BaseModel) -> str:
        # As its stream's producer would: notify refuses any other source (issue 17, F4).
        source = STREAM_SOURCES[EVENT_STREAMS[event_type]]
        event = new_event(source, event_type, self.id, data)
        stream = self.infra.stream(EVENT_STREAMS[event_type])
        fields: dict[Any, Any] = event.to_fields()
        if _together is not None:
            _together.append((stream, fields))
        else:
            self.infra.redis().xadd(stream, fields)
        return event.id

    def received(self) -> str:
        return self.publish(
            "application.submitted",
            ApplicationSubmitted(
                **self._refs(),
                submitted_at=utcnow(),
                status="submitted",
                application=ApplicationBody.model_validate(VALID_APPLICATION),
            ),
        )

    def status_changed(self, from_state: str, to_state: str) -> str:
        return self.publish(
            "case.state_changed",
            CaseStateChanged(
                **self._refs(),
                case_id=self.case_id,
                action="admit",
                from_state=from_state,
                to_state=to_state,
                priority_tier="P1",
                point_of_contact=Contact(id="o-1", name="Eva Europa", side="EU"),
            ),
        )

    def information_requested(self) -> str:
        return self.publish(
            "case.information_requested",
            CaseInformationRequested(
                **self._refs(),
                case_id=self.case_id,
                request=InformationRequestRef(
                    id=str(uuid.uuid4()), question="End-user statement?", due=date(2026, 12, 10)
                ),
            ),
        )

    def decided(self, decision: str) -> str:
        return self.publish(
            "case.decided",
            CaseDecided(
                **self._refs(),
                case_id=self.case_id,
                decision=decision,
                reason="criteria_met",
                detail="internal note for the case file",
            ),
        )

    def licence_issued(self) -> str:
        return self.publish(
            "licence.issued",
            LicenceIssued(
                **self._refs(),
                case_id=self.case_id,
                licence=LicenceRef(
                    number=f"LIC-{self.reference}",
                    type="three_month",
                    valid_from=date(2026, 12, 1),
                    valid_until=date(2027, 3, 1),
                    status="active",
                    lines=[
                        LicenceLine(
                            line=1,
                            element="Dy",
                            form="metal",
                            hs_code="2805.30",
                            approved_quantity_kg=100.0,
                        )
                    ],
                ),
            ),
        )


_together: list[tuple[str, dict[Any, Any]]] | None = None


@contextmanager
def published_together(infra: Infra) -> Iterator[None]:
    """Events published in the block are added in one MULTI/EXEC when it ends, so a waiting
    consumer gets them all in one read (one transaction of its handlers)."""
    global _together
    _together = collected = []
    try:
        yield
    finally:
        _together = None
    with infra.redis().pipeline(transaction=True) as pipe:
        for stream, fields in collected:
            pipe.xadd(stream, fields)
        pipe.execute()


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 30) -> T:
    """The first non-empty value `check` returns, polling until then."""
    found = wait_until(check, timeout=timeout, what=what)
    assert found is not None
    return found


def deliveries(client: httpx.Client, endpoint_id: str) -> list[dict[str, Any]]:
    """The endpoint's whole delivery log, oldest first."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return list(reversed(items))


def wait_for_log(
    client: httpx.Client, endpoint_id: str, count: int, status: str = "succeeded"
) -> list[dict[str, Any]]:
    """Wait until `count` deliveries of the endpoint have the status; the log, oldest first."""

    def done() -> list[dict[str, Any]] | None:
        log = deliveries(client, endpoint_id)
        return log if sum(d["status"] == status for d in log) >= count else None

    return wait_for(done, what=f"{count} {status} deliveries")
