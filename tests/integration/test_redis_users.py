"""The two ways the Redis users are set up, each on a Redis server of the test's own (both
lock the `default` user, which the shared test server must keep): the ACL file that
docker-compose.yml's Redis starts with, and `provision_embedded` for `reechannel run`."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from reechannel.supervisor import redis_executable
from shared.config import CommonSettings
from shared.consumer import dlq_stream
from shared.deadletters import list_dead_letters, replay
from shared.events import INTAKE_STREAM, REVIEW_STREAM
from shared.redis import connect_blocking, connect_with
from shared.redis_acl import acl_file, provision_embedded, url_for, users
from tests.support import ROOT, free_port, start_redis_server, wait_until

PASSWORDS = {
    role: f"{role}-password-0123456789" for role in ("intake", "review", "notify", "operator")
}
ADMIN_PASSWORD = "admin-password-0123456789"


def answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url).ping())
    except redis.AuthenticationError:
        return True  # up, and asking for a password
    except redis.ConnectionError:
        return False


@pytest.fixture
def acl_server(tmp_path: Path) -> Iterator[str]:
    """A redis-server started with the ACL file, as docker-compose.yml starts it."""
    path = tmp_path / "users.acl"
    defined = users()
    path.write_text(acl_file({u: PASSWORDS[role] for role, u in defined.items()}, ADMIN_PASSWORD))
    exe = redis_executable()
    assert exe is not None
    port = free_port()
    proc = subprocess.Popen(
        [
            *(exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)),
            *("--save", "", "--appendonly", "no", "--aclfile", str(path)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: answers(url), timeout=10, what="redis-server with the ACL file")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_acl_file_holds_each_services_rights_and_locks_the_default_user(
    acl_server: str, tmp_path: Path
) -> None:
    written = (tmp_path / "users.acl").read_text()
    assert not [p for p in [*PASSWORDS.values(), ADMIN_PASSWORD] if p in written], "hashes only"
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(acl_server).xadd(REVIEW_STREAM, {"type": "licence.issued"})
    intake = redis.Redis.from_url(url_for(acl_server, "intake", PASSWORDS["intake"]))
    assert intake.xadd(INTAKE_STREAM, {"type": "application.submitted"})
    with pytest.raises(redis.exceptions.NoPermissionError):
        intake.xadd(REVIEW_STREAM, {"type": "licence.issued"})
    admin = redis.Redis.from_url(url_for(acl_server, "default", ADMIN_PASSWORD))
    assert admin.acl_whoami() == "default"


def test_the_operator_user_lists_and_replays_dead_letters(acl_server: str) -> None:
    admin = redis.Redis.from_url(url_for(acl_server, "default", ADMIN_PASSWORD))
    admin.xadd(dlq_stream(INTAKE_STREAM), {"id": "e-1", "type": "x", "dlq_error": "boom"})
    operator = redis.Redis.from_url(
        url_for(acl_server, "operator", PASSWORDS["operator"]), decode_responses=True
    )
    assert [d.event_id for d in list_dead_letters(operator, "")] == ["e-1"]
    assert [d.event_id for d in replay(operator, "", None)] == ["e-1"]
    assert admin.xlen(dlq_stream(INTAKE_STREAM)) == 0
    assert admin.xrange(INTAKE_STREAM)[0][1] == {b"id": b"e-1", b"type": b"x"}


def test_provisioning_the_embedded_redis_sets_up_the_users_and_keeps_their_passwords(
    tmp_path: Path,
) -> None:
    proc, port = start_redis_server(tmp_path, aof=False)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        first = provision_embedded(url, tmp_path / "data")
        saved = tmp_path / "data" / "redis" / "users.json"
        assert stat.S_IMODE(saved.stat().st_mode) == 0o600
        assert json.loads(saved.read_text())["urls"] == first
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url).ping()
        review = redis.Redis.from_url(first["review"])
        assert review.xadd(REVIEW_STREAM, {"type": "case.opened"})
        with pytest.raises(redis.exceptions.NoPermissionError):
            review.xadd(INTAKE_STREAM, {"type": "application.submitted"})
        # Again on the running server (now behind the admin password): same users, same URLs.
        assert provision_embedded(url, tmp_path / "data") == first
        assert redis.Redis.from_url(first["notify"]).ping()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # And on a fresh server, as after a restart of `reechannel run`: the saved passwords.
    proc, port = start_redis_server(tmp_path, port=port, aof=False)
    try:
        assert provision_embedded(url, tmp_path / "data") == first
        assert redis.Redis.from_url(first["intake"]).xadd(INTAKE_STREAM, {"type": "x"})
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_operator_command_writes_the_acl_file_and_never_prints_a_refused_password(
    tmp_path: Path,
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(ROOT),
        **{f"REE_REDIS_{role.upper()}_PASSWORD": p for role, p in PASSWORDS.items()},
        "REE_REDIS_ADMIN_PASSWORD": ADMIN_PASSWORD,
    }
    path = tmp_path / "users.acl"
    command = [sys.executable, "-m", "reechannel.cli", "redis", "acl-file", str(path)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in path.read_text().splitlines()] == [
        "default",
        "intake",
        "review",
        "notify",
        "operator",
    ]
    refused = subprocess.run(
        command,
        env={**env, "REE_REDIS_NOTIFY_PASSWORD": "too-short-pw"},
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 2
    assert "REE_REDIS_NOTIFY_PASSWORD" in refused.stderr
    assert "too-short-pw" not in refused.stderr + refused.stdout


def _certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A CA of the test's own, and a certificate it signed for 127.0.0.1: (ca, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(text: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("test CA"))
        .issuer_name(name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (folder / "ca.pem", folder / "redis.pem", folder / "redis.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


async def test_a_rediss_url_speaks_tls_verified_against_the_ca_file(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    exe = redis_executable()
    assert exe is not None
    port = free_port()
    proc = subprocess.Popen(
        [
            *(exe, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1"),
            *("--tls-cert-file", str(cert), "--tls-key-file", str(key)),
            *("--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"),
            *("--dir", str(tmp_path), "--save", "", "--appendonly", "no"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"rediss://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _port_open(port), timeout=10, what="redis-server on TLS")
        settings = CommonSettings(REDIS_URL=url, REE_REDIS_CA_FILE=ca)
        assert connect_blocking(settings).ping()
        client = connect_with(settings)
        try:
            assert await client.ping()
        finally:
            await client.aclose()
        # Without the CA, the server's certificate is not trusted: no connection.
        with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
            connect_blocking(CommonSettings(REDIS_URL=url)).ping()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _port_open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_the_operator_command_sets_the_users_up_on_a_running_redis(tmp_path: Path) -> None:
    proc, port = start_redis_server(tmp_path, aof=False)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "REDIS_URL": url,
            **{f"REE_REDIS_{role.upper()}_PASSWORD": p for role, p in PASSWORDS.items()},
            "REE_REDIS_ADMIN_PASSWORD": ADMIN_PASSWORD,
        }
        done = subprocess.run(
            [sys.executable, "-m", "reechannel.cli", "redis", "apply"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert not [p for p in PASSWORDS.values() if p in done.stdout + done.stderr]
        notify = redis.Redis.from_url(url_for(url, "notify", PASSWORDS["notify"]))
        assert notify.ping()
        with pytest.raises(redis.exceptions.NoPermissionError):
            notify.xadd(INTAKE_STREAM, {"type": "application.submitted"})
    finally:
        proc.terminate()
        proc.wait(timeout=10)
