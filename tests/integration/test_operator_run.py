"""`reechannel run` and `reechannel simulate` do what the README's settings say.

A setting the command refuses is named in a clean message, and its value never echoed.

The supervisor runs as the operator runs it (`python -m reechannel.cli run`), on the test's
Redis and database in a deployment of its own (own schemas, streams and REE_DATA_DIR).
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import ROOT, Infra, free_port, wait_until

pytestmark = pytest.mark.slow


class Supervisor:
    """`reechannel run` as a real process in a session of its own, its output in a file."""

    def __init__(self, env: dict[str, str], args: list[str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reechannel.cli", "run", *args],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its children too, so a failed test can end them all
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, check: Callable[[], bool], what: str, timeout: float) -> None:
        try:
            wait_until(check, timeout=timeout, what=what)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- reechannel run:\n{self.output()[-3000:]}") from None

    def interrupt(self, timeout: float) -> tuple[int, float]:
        """Ctrl-C: the exit code, and how long the supervisor took to stop everything."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def end(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def deployment(infra: Infra, tmp_path: Path) -> Iterator[Infra]:
    own = infra.isolated(tmp_path / "data")
    yield own
    own.drop_schemas()


def answers_healthz(url: str) -> bool:
    return httpx.get(url + "/healthz", timeout=2).status_code == 200


def distinct_free_ports(count: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


def test_run_serves_each_service_on_the_ports_of_the_settings_and_simulate_finds_them(
    deployment: Infra, tmp_path: Path
) -> None:
    intake_port, review_port, notify_port = distinct_free_ports(3)
    ports = {"intake": intake_port, "review": review_port, "notify": notify_port}
    env = deployment.env(
        INTAKE_PORT=str(intake_port), REVIEW_PORT=str(review_port), NOTIFY_PORT=str(notify_port)
    )
    supervisor = Supervisor(env, [], tmp_path / "run.log")
    try:
        for name, port in ports.items():
            url = f"http://127.0.0.1:{port}"
            supervisor.wait_for(
                functools.partial(answers_healthz, url),
                what=f"{name} on port {port}",
                timeout=90,
            )
            assert f"{name}: {url}/docs" in supervisor.output()

        # REE_DATA_DIR: the demo credentials are written there, and intake knows them.
        demo = json.loads((deployment.data_dir / "demo-credentials.json").read_text())
        answer = httpx.get(
            f"http://127.0.0.1:{intake_port}/v1/applications",
            headers={"Authorization": f"Bearer {demo['applicant']['api_key']}"},
        )
        assert answer.status_code == 200

        # No --intake-url / --review-url: simulate reads them from the same settings.
        small = ["--count", "4", "--history", "0.5", "--companies", "2", "--seed", "3"]
        simulated = subprocess.run(
            [sys.executable, "-m", "reechannel.cli", "simulate", *small],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert simulated.returncode == 0, simulated.stdout + simulated.stderr
        assert f"open the console at http://127.0.0.1:{review_port}/" in simulated.stdout
        # The live application went through intake on its port to review on its port.
        officials = json.loads((deployment.data_dir / "simulate-credentials.json").read_text())
        officer = next(o for o in officials["officials"] if o["side"] == "EU")
        cases = httpx.get(
            f"http://127.0.0.1:{review_port}/v1/cases",
            params={"limit": 200},
            headers={"Authorization": f"Bearer {officer['token']}"},
        ).json()
        assert [c for c in cases["items"] if not c["reference"].startswith("HIS-")]

        code, _ = supervisor.interrupt(timeout=60)
        assert code == 0
    finally:
        supervisor.end()


def test_ctrl_c_stops_the_supervisor_at_once_while_a_child_waits_out_its_backoff(
    deployment: Infra, tmp_path: Path
) -> None:
    # A setting only the service reads, and refuses: intake exits as soon as it starts.
    env = deployment.env(INTAKE_PORT=str(free_port()), REE_MAX_BODY_BYTES="not-a-number")
    supervisor = Supervisor(env, ["--no-demo", "--services", "intake"], tmp_path / "run.log")
    try:
        supervisor.wait_for(
            lambda: "restarting in 8s" in supervisor.output(),
            what="the fourth restart's back-off",
            timeout=120,
        )
        backoffs = re.findall(r"intake exited with \d+; restarting in (\d+)s", supervisor.output())
        assert backoffs == ["1", "2", "4", "8"]

        code, took = supervisor.interrupt(timeout=20)

        assert code == 0
        # The old supervisor slept its 8 s back-off out, then restarted the child, then stopped.
        assert took < 4, f"stopping took {took:.1f}s during an 8 s back-off"
        assert "intake exited" not in supervisor.output().split("stopping")[-1]
    finally:
        supervisor.end()


@pytest.mark.parametrize("command", [["run", "--no-demo"], ["operator", "create", "--name", "ops"]])
def test_a_refused_setting_is_named_and_the_signing_secret_never_printed(
    deployment: Infra, command: list[str]
) -> None:
    secret = "too-short-" + os.urandom(4).hex()
    refused = subprocess.run(
        [sys.executable, "-m", "reechannel.cli", *command],
        env=deployment.env(REE_ENV="production", REE_TOKEN_SECRET=secret),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "REE_TOKEN_SECRET must be at least 32 characters in production" in refused.stderr
    assert secret not in refused.stdout + refused.stderr
    assert "Traceback" not in refused.stderr
