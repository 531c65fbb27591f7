"""`reechannel simulate`: a realistic demo past for the console and the metrics.

Two parts, both through the real engine (docs/metrics.md explains the choice):

* **History** (demo only, refused when REE_ENV=production): most applications are played
  out on the public timeline from 4 April 2025 (timeline.py plans it) through the review
  service's own `Casework`, in this process, on the simulator's clock set to each step's
  moment, one transaction per step, into the review database. Their audit entries carry
  the simulated times, in order, so processing times are real working-day figures from
  the audit trail. Their events go through review's outbox, which
  the running review service relays. Their references start with `HIS-`: they exist on the
  review side only (intake never saw them and ignores their events).
* **Live**: the rest are submitted now to the running intake service over HTTP with demo
  companies' API keys, and handled now by officials over review's HTTP API (screening,
  requests for information answered at intake, a priority list, acknowledgements,
  decisions, withdrawals): everything flows through the real services' events.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import httpx

from reechannel.simulate.history import History
from reechannel.simulate.live import Live, LiveCase
from reechannel.simulate.progress import say
from reechannel.simulate.world import create_world, make_application
from shared.config import CommonSettings
from shared.directory import open_directory


@dataclass
class Options:
    """The command's options (their defaults are the command's, `reechannel simulate --help`)."""

    count: int
    companies: int
    intake_url: str
    review_url: str
    history_share: float
    seed: int | None


def _check_up(urls: Iterable[str]) -> None:
    for url in urls:
        try:
            ok = httpx.get(url.rstrip("/") + "/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        if not ok:
            raise SystemExit(f"{url} is not ready: start the services first (`make run`)")


def run(options: Options, settings: CommonSettings | None = None) -> int:
    settings = settings or CommonSettings()
    history_count = round(options.count * options.history_share)
    if history_count and settings.environment == "production":
        say("refused: back-dated demo history is never written when REE_ENV=production")
        return 2
    _check_up([options.intake_url, options.review_url])
    rng = random.Random(options.seed)
    directory = open_directory(settings)
    world = create_world(directory, options.companies, rng)
    path = (settings.data_dir / "simulate-credentials.json").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "companies": [c.__dict__ for c in world.companies],
                "officials": [o.__dict__ for o in world.officials],
            },
            indent=2,
        )
        + "\n"
    )
    path.chmod(0o600)
    say(
        f"{len(world.companies)} companies and {len(world.officials)} officials; "
        f"credentials in {path}"
    )
    started = time.monotonic()
    if history_count:
        now = datetime.now(UTC) - timedelta(minutes=5)
        history = History(settings, directory, world, rng, now)
        plan = history.plan(history_count)
        say(
            f"history: {len(plan.cases)} applications from {plan.start:%d %B %Y}, "
            f"{len(plan.lists)} priority lists"
        )
        history.run()
    live_count = options.count - history_count
    if live_count > 0:
        live = Live(world, options.intake_url, options.review_url, rng)
        today = date.today()
        cases = [
            LiveCase(company, make_application(rng, company, today))
            for company in (rng.choice(world.companies) for _ in range(live_count))
        ]
        try:
            live.submit(cases)
            live.wait_opened(cases)
            live.handle(cases)
        finally:
            live.close()
    say(f"done in {time.monotonic() - started:.0f}s; open the console at {options.review_url}/ ")
    say(f"sign in with an official's token from {path}")
    return 0
