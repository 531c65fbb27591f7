"""Each service's own Redis user may add only to its own stream (issue 17, F4), and the
system works end to end with those users alone.

The users are made on the shared Redis of the tests under names of this run's own, and
deleted afterwards; the deployment here has its own schemas, streams and files.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
import redis

from shared import ratelimit
from shared.consumer import dlq_stream
from shared.events import (
    INTAKE_STREAM,
    REVIEW_STREAM,
    STREAM_SOURCES,
    LicenceIssued,
    LicenceLine,
    LicenceRef,
    new_event,
)
from shared.pruning import oldest_dead_letter
from shared.ratelimit import SharedWindows
from shared.redis import connect
from shared.redis_acl import RedisUser, apply, delete, url_for, users
from shared.retention import trim_stream
from tests.integration.conftest import application
from tests.integration.notify_support import (
    FAST,
    LOOPBACK,
    new_company,
    register,
    running_receiver,
)
from tests.support import ROOT, Infra, ServiceProcess, create_officials, wait_until

pytestmark = pytest.mark.slow

ROLES = ("intake", "review", "notify", "operator")


@pytest.fixture(scope="module")
def own(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    deployment = infra.isolated(tmp_path_factory.mktemp("redis-acl"))
    yield deployment
    deployment.drop_schemas()


@pytest.fixture(scope="module")
def urls(own: Infra) -> Iterator[dict[str, str]]:
    """Each role's Redis URL: its own user (named after this run), its own password."""
    defined: dict[str, RedisUser] = users(own.prefix, own.prefix, name_prefix=own.prefix)
    admin = own.redis()
    made = {}
    try:
        for role, user in defined.items():
            password = secrets.token_urlsafe(24)
            apply(admin, user, password)
            made[role] = url_for(own.redis_url, user.name, password)
        yield made
    finally:
        delete(admin, *(user.name for user in defined.values()))


def as_role(urls: dict[str, str], role: str) -> redis.Redis:
    return redis.Redis.from_url(urls[role], decode_responses=True)


def forged_licence(source: str, application_id: str = "a-1") -> dict[str, str]:
    """The red team's event: a licence of 100,000 kg that review never issued."""
    data = LicenceIssued(
        case_id="c-1",
        application_id=application_id,
        reference="REE-2026-000001",
        company_id="x",
        licence=LicenceRef(
            number="FORGED-1",
            type="three_month",
            valid_from=date(2026, 12, 1),
            valid_until=date(2027, 3, 1),
            status="active",
            lines=[LicenceLine(line=1, element="Dy", form="oxide", approved_quantity_kg=100_000)],
        ),
    )
    return new_event(source, "licence.issued", "c-1", data).to_fields()


@pytest.mark.parametrize(
    ("role", "may_add_to"),
    [
        ("intake", {INTAKE_STREAM}),
        ("review", {REVIEW_STREAM}),
        ("notify", set()),
    ],
)
def test_a_services_redis_user_may_add_only_to_its_own_stream(
    urls: dict[str, str], own: Infra, role: str, may_add_to: set[str]
) -> None:
    client = as_role(urls, role)
    for stream in (INTAKE_STREAM, REVIEW_STREAM):
        fields = forged_licence(STREAM_SOURCES[stream])
        if stream in may_add_to:
            assert client.xadd(own.stream(stream), fields)
            continue
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.xadd(own.stream(stream), fields)
        # Nor through a script, nor by removing what is there.
        with pytest.raises(redis.exceptions.ResponseError):
            client.eval(
                "return redis.call('XADD', KEYS[1], '*', 'type', 'licence.issued')",
                1,
                own.stream(stream),
            )
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.delete(own.stream(stream))
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.xtrim(own.stream(stream), maxlen=0)


@pytest.mark.parametrize(
    ("role", "stream", "readers"),
    [
        ("intake", INTAKE_STREAM, ("review", "notify")),
        ("review", REVIEW_STREAM, ("intake", "notify")),
    ],
)
async def test_a_producer_may_trim_what_every_group_of_its_stream_acknowledged(
    urls: dict[str, str], own: Infra, role: str, stream: str, readers: tuple[str, ...]
) -> None:
    name = own.stream(stream)
    producer = as_role(urls, role)
    producer.xadd(name, forged_licence(STREAM_SOURCES[stream]))
    admin = own.redis()
    groups = [own.prefix + reader for reader in readers]
    for group in groups:
        admin.xgroup_create(name, group, id="0", mkstream=True)
        for _s, entries in admin.xreadgroup(group, "c", {name: ">"}) or []:
            admin.xack(name, group, *[entry_id for entry_id, _f in entries])
    client = connect(urls[role])
    try:
        assert await trim_stream(client, name, groups, retention_seconds=0) >= 1
    finally:
        await client.aclose()
        for group in groups:
            admin.xgroup_destroy(name, group)


@pytest.mark.parametrize(
    ("role", "streams"),
    [
        ("intake", (REVIEW_STREAM,)),
        ("review", (INTAKE_STREAM,)),
        ("notify", (INTAKE_STREAM, REVIEW_STREAM)),
    ],
)
async def test_a_consumer_may_read_the_dead_letters_of_what_it_consumes(
    urls: dict[str, str], own: Infra, role: str, streams: tuple[str, ...]
) -> None:
    names = [own.stream(stream) for stream in streams]
    admin = own.redis()
    for name in names:
        admin.xadd(f"{name}.dlq", {"time": "2026-01-02T03:04:05+00:00", "dlq_error": "x"})
    client = connect(urls[role])
    try:
        oldest = await oldest_dead_letter(client, names)
    finally:
        await client.aclose()
        admin.delete(*[f"{name}.dlq" for name in names])
    assert oldest is not None and oldest.year == 2026


@pytest.mark.parametrize("role", ROLES)
def test_no_redis_user_of_the_channel_reaches_keys_outside_its_own(
    urls: dict[str, str], own: Infra, role: str
) -> None:
    client = as_role(urls, role)
    # Only keys of this run are written, so a regression cannot touch another run's data
    # on the shared server (drop_schemas removes them).
    for key in (f"{own.prefix}unrelated", f"{own.prefix}{INTAKE_STREAM}.other"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.set(key, "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get(key)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.keys(f"{own.prefix}*")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.config_get("maxmemory")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.acl_list()
    assert client.ping()


def test_a_services_user_cannot_touch_another_services_errors_or_outbox_lock(
    urls: dict[str, str], own: Infra
) -> None:
    notify = as_role(urls, "notify")
    intakes_errors = f"{own.stream(REVIEW_STREAM)}.errors:{own.prefix}intake"
    reviews_lock = f"reechannel:outbox-lock:{own.prefix}review:db"
    with pytest.raises(redis.exceptions.NoPermissionError):
        notify.hset(intakes_errors, "1-0", "x")
    with pytest.raises(redis.exceptions.NoPermissionError):
        notify.set(reviews_lock, "stolen")


@pytest.mark.parametrize("role", ["intake", "review", "notify"])
def test_a_services_user_counts_its_own_rate_limit_windows_and_no_others(
    urls: dict[str, str], own: Infra, role: str
) -> None:
    client = as_role(urls, role)
    windows = SharedWindows(client, own.prefix + role, 1)
    assert windows.hit("credential-1") is None
    assert windows.hit("credential-1") is not None  # counted in Redis: a NOPERM would not
    assert own.redis().keys(f"{ratelimit.KEY_PREFIX}{own.prefix}{role}:credential-1:*")
    other = next(r for r in ("intake", "review", "notify") if r != role)
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.incrby(f"{ratelimit.KEY_PREFIX}{own.prefix}{other}:credential-1:1", 1)


def test_the_services_work_end_to_end_with_their_own_redis_users(
    urls: dict[str, str], own: Infra
) -> None:
    """An application goes intake → review → intake and notify, every hop over Redis with
    the restricted users; a licence forged as intake's on review's stream is dead-lettered
    by both its consumers and reaches neither the applicant's view nor a webhook."""
    company = new_company(own, "ACL Motors GmbH")
    officials = create_officials(own)
    env = {name: own.env(REDIS_URL=urls[name]) for name in ("intake", "review", "notify")}
    env["notify"].update({**LOOPBACK, **FAST})
    services = {name: ServiceProcess(name, e).start(wait_ready=False) for name, e in env.items()}
    try:
        for service in services.values():
            service.wait_ready()
        with running_receiver() as receiver:
            box = receiver.mailbox()
            with services["notify"].client(company["api_key"]) as c:
                register(c, box, ["application.received", "application.status_changed"])
            with services["intake"].client(company["api_key"]) as c:
                created = c.post("/v1/applications", json=application())
                assert created.status_code == 201, created.text
                app = created.json()

                def status() -> str:
                    return str(c.get(f"/v1/applications/{app['id']}").json()["status"])

                wait_until(lambda: status() == "eu_screening", timeout=60, what="case opened")
            eu = officials["eu_officer"]["token"]
            with services["review"].client(eu) as c:
                [case] = [
                    item
                    for item in c.get("/v1/cases", params={"limit": 200}).json()["items"]
                    if item["reference"] == app["reference"]
                ]
                version = c.get(f"/v1/cases/{case['id']}").json()["version"]
                admitted = c.post(
                    f"/v1/cases/{case['id']}/actions",
                    json={"action": "admit"},
                    headers={"If-Match": str(version)},
                )
                assert admitted.status_code == 200, admitted.text
            types = wait_until(
                lambda: (
                    (
                        {r.json["type"] for r in box.successes()}
                        >= {"application.received", "application.status_changed"}
                    )
                    and [r.json["type"] for r in box.successes()]
                ),
                timeout=60,
                what="both webhooks",
            )
            assert all(r.verified for r in box.successes())

            admin = own.redis()
            forged = forged_licence(STREAM_SOURCES[INTAKE_STREAM], app["id"])
            admin.xadd(own.stream(REVIEW_STREAM), forged)
            dlq = dlq_stream(own.stream(REVIEW_STREAM))

            def refused_by() -> set[str]:
                entries: Any = admin.xrange(dlq)
                return {f["dlq_group"] for _i, f in entries if f["id"] == forged["id"]}

            groups = wait_until(
                lambda: (g := refused_by()) >= {f"{own.prefix}intake", f"{own.prefix}notify"} and g,
                timeout=60,
                what="the forged licence dead-lettered by intake and notify",
            )
            assert len(groups) == 2
            [letter] = [f for _i, f in admin.xrange(dlq) if f["dlq_group"] == f"{own.prefix}intake"]
            assert "is not 'reechannel/review'" in letter["dlq_error"]
            with services["intake"].client(company["api_key"]) as c:
                view = c.get(f"/v1/applications/{app['id']}").json()
            assert view["licence"] is None
            assert "FORGED-1" not in json.dumps(view)
            assert "licence.issued" not in [r.json["type"] for r in box.all()]
            assert sorted(types).count("application.received") == 1
    finally:
        for service in services.values():
            service.stop()


@pytest.mark.parametrize("service", ("intake", "review", "notify"))
def test_a_service_refuses_to_start_in_production_without_redis_authentication(
    own: Infra, service: str
) -> None:
    env = own.env(REE_ENV="production", REE_TOKEN_SECRET=secrets.token_hex(32))
    env.pop("REE_REDIS_PASSWORD", None)
    run = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0
    assert "Redis authentication is required in production" in run.stderr
