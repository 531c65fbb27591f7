"""What the shared rate limit's Redis round trip costs intake: the same closed loop against
intake counting in Redis (`REE_RATE_LIMIT_SCOPE=shared`, the default) and in its process."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bench.system import Deployment, Servers, run_loadgen

if TYPE_CHECKING:
    from bench.scenarios import Plan, Results

SCOPES = ("shared", "process")
CONCURRENCY = 16


def rate_limit_round_trip(servers: Servers, plan: Plan, results: Results) -> None:
    """Runs alternate between the two, so a change of the host's speed touches both alike."""
    from bench.scenarios import _figures, create_companies

    dep = Deployment(servers)
    try:
        keys = create_companies(dep, 4)
        for run in range(1, plan.half_runs + 1):
            for scope in SCOPES:
                intake = dep.service("intake", REE_RATE_LIMIT_SCOPE=scope).wait_ready()
                spec = {
                    "mode": "closed",
                    "url": intake.url,
                    "path": "/v1/applications",
                    "credentials": keys,
                }
                run_loadgen({**spec, "concurrency": 4, "duration": 2, "warmup": 0}, timeout=120)
                r = run_loadgen(
                    {**spec, "concurrency": CONCURRENCY, "duration": plan.seconds}, timeout=600
                )
                results.add("rate_limit", scope=scope, run=run, **_figures(r))
                intake.stop()
    finally:
        dep.close()
