"""Kill each service in the middle of a batch: every case once, every webhook delivered."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.cluster import SHORT_JOURNEY, Cluster, run_workload, verdict
from tests.integration.notify_support import Receiver, running_receiver
from tests.support import Infra, ServiceProcess


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def cluster(infra: Infra, tmp_path: Path, receiver: Receiver) -> Iterator[Cluster]:
    c = Cluster.start(infra, tmp_path, receiver)
    yield c
    c.stop()


@pytest.mark.parametrize("victim", ["intake", "review", "notify"])
def test_kill_9_mid_batch_loses_and_duplicates_nothing(cluster: Cluster, victim: str) -> None:
    def inject(i: int) -> None:
        if i == 8:
            threading.Thread(target=cluster.kill_and_restart, args=(victim,)).start()

    ids = run_workload(cluster, 24, SHORT_JOURNEY, during=inject, batch=12)
    result = verdict(cluster, ids, SHORT_JOURNEY)
    assert result.cases == 24, result.report()
    assert result.missing == [], result.report()
    assert result.duplicate_ids == 0, result.report()


def test_two_review_replicas_share_the_work_and_survive_losing_one(cluster: Cluster) -> None:
    second = ServiceProcess("review", cluster.env("review")).start()
    try:
        ids = run_workload(cluster, 10, SHORT_JOURNEY[:1])
        second.kill()
        ids += run_workload(cluster, 10, SHORT_JOURNEY[:1])
        result = verdict(cluster, ids, SHORT_JOURNEY[:1])
    finally:
        second.kill()
    assert result.cases == 20, result.report()
    assert result.missing == [] and result.duplicate_ids == 0, result.report()
