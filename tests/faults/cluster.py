"""The whole system on one machine for fault runs: three services, a webhook receiver, a workload.

Used by the fault tests and by the soak run (`python -m tests.faults.soak`). Everything is
real: service processes, their own Redis server, the configured database, HTTP, webhooks
verified with the `standardwebhooks` package.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx

from tests.integration.conftest import application
from tests.integration.notify_support import FAST, LOOPBACK, Mailbox, Receiver, register
from tests.support import (
    Infra,
    ServiceProcess,
    create_officials,
    operator,
    start_redis_server,
    wait_until,
)

SERVICES = ("intake", "review", "notify")
# What one application's full journey sends to its applicant, one webhook each.
FULL_JOURNEY = (
    ("application.received", None),
    ("application.status_changed", "queued"),
    ("application.status_changed", "cn_review"),
    ("application.status_changed", "approved"),
    ("application.approved", None),
    ("licence.issued", None),
)
SHORT_JOURNEY = FULL_JOURNEY[:2]


@dataclass
class Cluster:
    infra: Infra
    redis_port: int
    redis_dir: Any
    receiver: Receiver
    redis_proc: Any = None
    services: dict[str, ServiceProcess] = field(default_factory=dict)
    company: dict[str, Any] = field(default_factory=dict)
    officials: dict[str, dict[str, Any]] = field(default_factory=dict)
    mailbox: Mailbox | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(cls, infra: Infra, folder: Any, receiver: Receiver) -> Cluster:
        redis_dir = folder / "redis"
        redis_dir.mkdir(parents=True, exist_ok=True)
        proc, port = start_redis_server(redis_dir, aof=True)
        own = infra.isolated(folder / "data", redis_url=f"redis://127.0.0.1:{port}/0")
        cluster = cls(own, port, redis_dir, receiver, proc)
        cluster.company = operator(
            own,
            "company",
            "create",
            "--name",
            "Soak GmbH",
            "--eori",
            "DE" + uuid.uuid4().hex[:12].upper(),
        )
        cluster.officials = create_officials(own)
        for name in SERVICES:
            cluster.launch(name)
        cluster.mailbox = receiver.mailbox()
        with cluster.client("notify", cluster.company["api_key"]) as c:
            register(c, cluster.mailbox)
        return cluster

    def env(self, name: str) -> dict[str, str]:
        extra = {**LOOPBACK, **FAST} if name == "notify" else {}
        return self.infra.env(REE_CLAIM_IDLE_MS="2000", REE_DEADLINE_CHECK_SECONDS="3600", **extra)

    def launch(self, name: str, port: int | None = None) -> ServiceProcess:
        service = ServiceProcess(name, self.env(name))
        if port is not None:
            service.port = port
            service.env[f"{name.upper()}_PORT"] = str(port)
        service.start()
        with self.lock:
            self.services[name] = service
        return service

    def kill_and_restart(self, name: str) -> None:
        with self.lock:
            victim = self.services[name]
        victim.kill()
        self.launch(name, port=victim.port)

    def stop(self) -> None:
        for service in self.services.values():
            service.kill()
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            self.redis_proc.terminate()
            self.redis_proc.wait(timeout=10)
        self.infra.drop_schemas()

    def client(self, name: str, credential: str) -> httpx.Client:
        with self.lock:
            service = self.services[name]
        return service.client(credential)

    def call(
        self,
        name: str,
        credential: str,
        fn: Callable[[httpx.Client], httpx.Response],
        ok: tuple[int, ...] = (200, 201),
        attempts: int = 300,
    ) -> httpx.Response:
        """Retry across restarts: a service being killed refuses or drops the connection."""
        last: Any = None
        for _ in range(attempts):
            try:
                with self.client(name, credential) as c:
                    last = fn(c)
                if last.status_code in ok:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.1)
        raise AssertionError(f"{name} never answered {ok}: {last!r}")

    # --- the workload ----------------------------------------------------------------------

    def submit(self, key: str) -> str:
        body = application()  # the same body on every retry of the key
        r = self.call(
            "intake",
            self.company["api_key"],
            lambda c: c.post("/v1/applications", json=body, headers={"Idempotency-Key": key}),
        )
        return str(r.json()["id"])

    def case_id(self, application_id: str) -> str:
        token = self.officials["eu_officer"]["token"]

        def find() -> str | None:
            r = self.call(
                "intake",
                self.company["api_key"],
                lambda c: c.get(f"/v1/applications/{application_id}"),
            )
            reference = r.json()["reference"]
            with self.client("review", token) as c:
                page = c.get("/v1/cases", params={"limit": 200, "state": "eu_screening"}).json()
            hit = [i["id"] for i in page.get("items", []) if i["reference"] == reference]
            return hit[0] if hit else None

        return str(wait_until(find, timeout=120, interval=0.3, what="case opened"))

    def act(self, who: str, case_id: str, action: str, **params: Any) -> None:
        token = self.officials[who]["token"]

        def attempt(c: httpx.Client) -> httpx.Response:
            current = c.get(f"/v1/cases/{case_id}")
            if current.status_code != 200:
                return current
            return c.post(
                f"/v1/cases/{case_id}/actions",
                json={"action": action, **params},
                headers={"If-Match": str(current.json()["version"])},
            )

        self.call("review", token, attempt, ok=(200,))

    def issue_list(self, case_ids: list[str]) -> None:
        token = self.officials["eu_supervisor"]["token"]
        self.call(
            "review",
            token,
            lambda c: c.post("/v1/priority-lists", json={"case_ids": case_ids}),
            ok=(201,),
        )

    def approve(self, case_id: str, number: str) -> None:
        today = date.today().isoformat()
        self.act("cn_officer", case_id, "acknowledge", accepted_on=today)
        self.act(
            "cn_officer",
            case_id,
            "approve",
            licence={"type": "three_month", "number": number, "valid_from": today},
        )

    # --- what arrived ----------------------------------------------------------------------

    def webhooks(self) -> dict[tuple[str, str, str | None], Counter[str]]:
        """Per (application, type, status): how often each webhook-id succeeded."""
        assert self.mailbox is not None
        seen: dict[tuple[str, str, str | None], Counter[str]] = {}
        for request in self.mailbox.successes():
            body = request.json
            data = body["data"]
            status = data.get("status") if body["type"] == "application.status_changed" else None
            seen.setdefault((data["application_id"], body["type"], status), Counter())[
                request.webhook_id
            ] += 1
        return seen


@dataclass
class Verdict:
    applications: int
    cases: int
    expected_webhooks: int
    delivered: int
    missing: list[tuple[str, str, str | None]]
    duplicate_ids: int
    redelivered_same_id: int

    @property
    def clean(self) -> bool:
        return self.cases == self.applications and not self.missing and self.duplicate_ids == 0

    def report(self) -> str:
        return (
            f"applications accepted: {self.applications}\n"
            f"cases in review:       {self.cases}\n"
            f"webhooks expected:     {self.expected_webhooks}\n"
            f"webhooks delivered:    {self.delivered}\n"
            f"missing:               {len(self.missing)}\n"
            f"duplicate messages:    {self.duplicate_ids} (a second webhook-id for one event)\n"
            f"same-id redeliveries:  {self.redelivered_same_id} (after a kill mid-request; "
            "receivers dedupe by webhook-id)"
        )


def verdict(
    cluster: Cluster,
    application_ids: list[str],
    journey: tuple[tuple[str, str | None], ...],
    timeout: float = 180,
) -> Verdict:
    expected = {(a, t, s) for a in application_ids for t, s in journey}

    def arrived() -> dict[tuple[str, str, str | None], Counter[str]] | None:
        seen = cluster.webhooks()
        return seen if expected <= set(seen) else None

    try:
        seen = wait_until(arrived, timeout=timeout, interval=0.5, what="all webhooks")
    except AssertionError:
        seen = cluster.webhooks()
    token = cluster.officials["eu_officer"]["token"]

    def cases() -> int:
        r = cluster.call("review", token, lambda c: c.get("/v1/cases", params={"limit": 1}))
        return int(r.json()["total"])

    try:
        total = wait_until(
            lambda: (n := cases()) >= len(application_ids) and n,
            timeout=timeout,
            interval=0.5,
            what="every case opened",
        )
    except AssertionError:
        total = cases()
    ours = {k: v for k, v in seen.items() if k in expected}
    return Verdict(
        applications=len(application_ids),
        cases=int(total),
        expected_webhooks=len(expected),
        delivered=len(ours),
        missing=sorted(expected - set(ours), key=str),
        duplicate_ids=sum(len(ids) - 1 for ids in ours.values()),
        redelivered_same_id=sum(n - 1 for ids in ours.values() for n in ids.values()),
    )


def run_workload(
    cluster: Cluster,
    count: int,
    journey: tuple[tuple[str, str | None], ...],
    during: Callable[[int], None] | None = None,
    batch: int = 50,
) -> list[str]:
    """Take `count` applications through `journey`; `during(i)` may inject a fault."""
    application_ids: list[str] = []
    for start in range(0, count, batch):
        chunk = []
        for i in range(start, min(start + batch, count)):
            if during is not None:
                during(i)
            chunk.append(cluster.submit(str(uuid.uuid4())))
        application_ids += chunk
        if len(journey) == 1:
            continue
        case_ids = [cluster.case_id(a) for a in chunk]
        for case_id in case_ids:
            cluster.act("eu_officer", case_id, "admit")
        if len(journey) <= 2:
            continue
        cluster.issue_list(case_ids)
        for case_id in case_ids:
            cluster.approve(case_id, f"LIC-{uuid.uuid4().hex[:10]}")
    return application_ids


def random_kills(cluster: Cluster, every: int, seed: int) -> Callable[[int], None]:
    rng = random.Random(seed)

    def maybe_kill(i: int) -> None:
        if i and i % every == 0:
            victim = rng.choice(SERVICES)
            threading.Thread(target=cluster.kill_and_restart, args=(victim,), daemon=True).start()

    return maybe_kill
