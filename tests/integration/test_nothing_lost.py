"""The database is the source of truth: applications accepted while Redis is down are not lost."""

from __future__ import annotations

import json
from pathlib import Path

import redis as redis_lib

from tests.integration.conftest import application, new_company
from tests.support import Infra, ServiceProcess, start_redis_server, wait_until


def test_applications_accepted_while_redis_is_down_reach_the_stream_once_it_is_back(
    infra: Infra, tmp_path: Path
) -> None:
    (tmp_path / "redis").mkdir()
    proc, port = start_redis_server(tmp_path / "redis", aof=True)
    url = f"redis://127.0.0.1:{port}/0"
    own = infra.isolated(tmp_path / "data", redis_url=url)
    company_a = new_company(own)
    intake = ServiceProcess("intake", own.env()).start()
    client = redis_lib.Redis.from_url(url, decode_responses=True)

    def subjects() -> set[str]:
        entries = client.xrange(own.stream("intake.events"))
        return {f["subject"] for _i, f in entries if f["type"] == "application.submitted"}

    try:
        with intake.client(company_a["api_key"]) as c:
            before = c.post("/v1/applications", json=application()).json()["id"]
            # Published before Redis goes: stopping Redis while the relay's XADD is in flight
            # may lose the answer but not the entry, and the relay then sends it again
            # (at-least-once, which consumers de-duplicate), which is not what this counts.
            wait_until(lambda: before in subjects(), what="the first event published")
            proc.terminate()
            proc.wait(timeout=10)
            accepted = []
            for _ in range(10):
                r = c.post("/v1/applications", json=application())
                assert r.status_code == 201, r.text
                accepted.append(r.json()["id"])
            proc, _ = start_redis_server(tmp_path / "redis", port=port, aof=True)
            seen = wait_until(
                lambda: (s := subjects()) >= {before, *accepted} and s,
                timeout=40,
                what="events of applications accepted during the outage",
            )
            entries = client.xrange(own.stream("intake.events"))
            submitted = [
                json.loads(f["data"])["application_id"]
                for _i, f in entries
                if f["type"] == "application.submitted"
            ]
            assert len(submitted) == len(set(submitted)) == len(seen)
    finally:
        intake.stop()
        proc.terminate()
        proc.wait(timeout=10)
        own.drop_schemas()
