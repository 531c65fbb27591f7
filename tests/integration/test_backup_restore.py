"""`reechannel backup` and `reechannel restore` (reechannel/backup.py): restored into an
empty database and an empty Redis, the system carries on with nothing lost."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import redis as redis_lib

from shared.documents import FileDocumentStore
from tests.integration.conftest import application, new_company
from tests.support import (
    ROOT,
    Infra,
    ServiceProcess,
    create_officials,
    start_redis_server,
    wait_until,
)

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def reechannel(infra: Infra, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reechannel.cli", *args],
        env=infra.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def cases_of(review: ServiceProcess, token: str, reference: str) -> list[dict[str, Any]]:
    with review.client(token) as c:
        items = c.get("/v1/cases", params={"limit": 200}).json()["items"]
    return [i for i in items if i["reference"] == reference]


def test_a_restored_system_carries_on_with_nothing_lost(infra: Infra, tmp_path: Path) -> None:
    before = infra.isolated(tmp_path / "before")
    company = new_company(before)
    officials = create_officials(before)
    eu = officials["eu_officer"]["token"]
    services = [ServiceProcess(n, before.env()).start() for n in ("intake", "review")]
    intake, review = services
    (tmp_path / "redis").mkdir()
    redis_proc, port = start_redis_server(tmp_path / "redis", aof=False)
    after = infra.isolated(tmp_path / "after", redis_url=f"redis://127.0.0.1:{port}/0")
    folder = tmp_path / "backup"
    try:
        with intake.client(company["api_key"]) as c:
            app = c.post("/v1/applications", json=application()).json()
            doc = c.post(
                f"/v1/applications/{app['id']}/documents",
                files={"file": ("statement.pdf", PDF)},
                data={"kind": "end_user_statement", "shareable": "false"},
            ).json()
        case = wait_until(lambda: cases_of(review, eu, app["reference"]), what="case opened")[0]

        done = reechannel(before, "backup", str(folder))
        assert done.returncode == 0, done.stderr
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["database"]["components"]["intake"]["tables"]["applications"] >= 1
        assert manifest["documents"] == 1
        for service in services:
            service.stop()

        # An empty Redis and a database without these schemas: a new deployment.
        assert redis_lib.Redis(port=port).dbsize() == 0
        done = reechannel(after, "restore", str(folder))
        assert done.returncode == 0, done.stderr
        again = reechannel(after, "restore", str(folder))
        assert again.returncode == 2 and "not empty" in again.stderr, "no silent overwrite"

        services = [ServiceProcess(n, after.env()).start() for n in ("intake", "review")]
        intake, review = services
        with intake.client(company["api_key"]) as c:
            view = c.get(f"/v1/applications/{app['id']}")
            assert view.status_code == 200, "the company's key was restored with the directory"
            assert view.json()["reference"] == app["reference"]
            got = c.get(f"/v1/applications/{app['id']}/documents/{doc['id']}")
            assert got.status_code == 200 and got.content == PDF

        # The outbox publishes its recent events again into the empty Redis ...
        client = redis_lib.Redis.from_url(after.redis_url, decode_responses=True)
        wait_until(
            lambda: any(
                f["subject"] == app["id"] and f["type"] == "application.submitted"
                for _i, f in client.xrange(after.stream("intake.events"))
            ),
            what="the outbox's replay",
        )
        wait_until(
            lambda: (
                not client.xpending(after.stream("intake.events"), after.prefix + "review")[
                    "pending"
                ]
                and client.xinfo_groups(after.stream("intake.events"))[0]["lag"] == 0
            ),
            what="review has read the replay",
        )
        # ... which review had applied before the backup: still one case, the same one.
        assert [c["id"] for c in cases_of(review, eu, app["reference"])] == [case["id"]]

        # And the application can be acted on: the withdrawal travels the new Redis.
        with intake.client(company["api_key"]) as c:
            assert c.post(f"/v1/applications/{app['id']}/withdraw").status_code == 200

        def withdrawn() -> bool:
            with review.client(eu) as c:
                return bool(c.get(f"/v1/cases/{case['id']}").json()["state"] == "withdrawn")

        wait_until(withdrawn, timeout=30, what="case withdrawn in review after the restore")
    finally:
        for service in services:
            service.stop()
        redis_proc.terminate()
        redis_proc.wait(timeout=10)
        before.drop_schemas()
        after.drop_schemas()


def test_a_damaged_backup_is_refused_and_nothing_restored(infra: Infra, tmp_path: Path) -> None:
    source = infra.isolated(tmp_path / "source")
    new_company(source)  # the directory's schema, with one company
    folder = tmp_path / "backup"
    target = infra.isolated(tmp_path / "target")
    try:
        assert reechannel(source, "backup", str(folder)).returncode == 0
        damaged = tmp_path / "damaged"
        shutil.copytree(folder, damaged)
        table = next(p for p in (damaged / "database").rglob("*") if p.is_file())
        table.write_bytes(table.read_bytes() + b"\0")
        done = reechannel(target, "restore", str(damaged))
        assert done.returncode == 2 and "checksum" in done.stderr
        assert not (tmp_path / "target" / "directory.db").exists()
        if target.database_url:
            from sqlalchemy import inspect

            from shared.config import CommonSettings
            from shared.db import make_engine

            engine = make_engine(CommonSettings(DATABASE_URL=target.database_url), "x")
            names = inspect(engine).get_schema_names()
            engine.dispose()
            assert not [n for n in names if n.startswith(target.prefix)], "no schema made"
        assert reechannel(target, "restore", str(folder)).returncode == 0
    finally:
        source.drop_schemas()
        target.drop_schemas()


def _reechannel_with_store(
    infra: Infra, store: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reechannel.cli", *args],
        env=infra.env(REE_DOCUMENT_DIR=str(store)),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


def test_the_documents_are_backed_up_from_and_restored_to_the_document_store_folder(
    infra: Infra, tmp_path: Path
) -> None:
    sha256 = hashlib.sha256(PDF).hexdigest()
    before = infra.isolated(tmp_path / "before")
    after = infra.isolated(tmp_path / "after")
    new_company(before)
    FileDocumentStore(tmp_path / "store-before").put(sha256, io.BytesIO(PDF))
    folder = tmp_path / "backup"
    try:
        done = _reechannel_with_store(before, tmp_path / "store-before", "backup", str(folder))
        assert done.returncode == 0, done.stderr
        assert json.loads((folder / "manifest.json").read_text())["documents"] == 1
        assert (folder / "documents" / sha256[:2] / sha256).read_bytes() == PDF
        done = _reechannel_with_store(after, tmp_path / "store-after", "restore", str(folder))
        assert done.returncode == 0, done.stderr
        assert FileDocumentStore(tmp_path / "store-after").get(sha256) == PDF
        assert not (after.data_dir / "documents").exists()
        again = _reechannel_with_store(after, tmp_path / "store-after", "restore", str(folder))
        assert again.returncode == 2 and "documents" in again.stderr, "the store is not empty"
    finally:
        before.drop_schemas()
        after.drop_schemas()
