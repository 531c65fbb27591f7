"""Soak run: N applications through the whole flow with random service kills (not in the suite).

    python -m tests.faults.soak --count 5000 --kill-every 250

Prints what it sent, what arrived, and anything lost or duplicated; exits 1 if anything was.
Uses REDIS_URL-independent infrastructure of its own (a redis-server it starts) and the
database from DATABASE_URL (SQLite files when unset).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.faults.cluster import FULL_JOURNEY, Cluster, random_kills, verdict
from tests.integration.notify_support import running_receiver
from tests.support import Infra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000, help="applications (default 5000)")
    parser.add_argument("--kill-every", type=int, default=250, help="a random kill every N")
    parser.add_argument("--batch", type=int, default=50, help="applications per priority list")
    parser.add_argument("--workers", type=int, default=8, help="parallel clients")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="ree-soak-"))
    infra = Infra(
        redis_url="",
        database_url=os.environ.get("DATABASE_URL"),
        prefix=f"soak{uuid.uuid4().hex[:6]}_",
        data_dir=folder / "base",
    )
    started = time.monotonic()
    with running_receiver() as receiver:
        cluster = Cluster.start(infra, folder, receiver)
        kill = random_kills(cluster, args.kill_every, args.seed)
        kills = 0
        application_ids: list[str] = []
        try:
            with ThreadPoolExecutor(args.workers) as pool:
                for start in range(0, args.count, args.batch):
                    size = min(args.batch, args.count - start)
                    for i in range(start, start + size):
                        if i and i % args.kill_every == 0:
                            kills += 1
                        kill(i)
                    chunk = list(pool.map(cluster.submit, [str(uuid.uuid4()) for _ in range(size)]))
                    case_ids = list(pool.map(cluster.case_id, chunk))
                    list(pool.map(lambda c: cluster.act("eu_officer", c, "admit"), case_ids))
                    cluster.issue_list(case_ids)
                    list(
                        pool.map(
                            lambda c: cluster.approve(c, f"LIC-{uuid.uuid4().hex[:12]}"), case_ids
                        )
                    )
                    application_ids += chunk
                    done = len(application_ids)
                    rate = done / (time.monotonic() - started)
                    sys.stderr.write(
                        f"\r{done}/{args.count} applications, {kills} kills, {rate:.1f}/s"
                    )
                    sys.stderr.flush()
            sys.stderr.write("\n")
            result = verdict(cluster, application_ids, FULL_JOURNEY, timeout=600)
        finally:
            cluster.stop()
    elapsed = time.monotonic() - started
    print(
        f"soak: {args.count} applications, full journey, {kills} random kills "
        f"(seed {args.seed}), {elapsed:.0f} s, database "
        f"{'PostgreSQL' if infra.database_url else 'SQLite'}"
    )
    print(result.report())
    print("RESULT:", "0 lost, 0 duplicated" if result.clean else "LOSS OR DUPLICATION")
    return 0 if result.clean else 1


if __name__ == "__main__":
    sys.exit(main())
