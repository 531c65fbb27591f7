"""The live part: the running intake and review services driven over HTTP, as people would."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from reechannel.simulate.progress import Progress, say
from reechannel.simulate.world import (
    DECLINE_REASONS,
    REFUSE_REASONS,
    DemoCompany,
    World,
    approves,
)


class Api:
    """A small HTTP client that waits out rate limits (429 Retry-After) instead of failing."""

    def __init__(self, base: str, credential: str) -> None:
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {credential}"}, timeout=30
        )

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        for _ in range(20):
            response = self.client.request(method, path, **kwargs)
            if response.status_code != 429:
                return response
            time.sleep(float(response.headers.get("Retry-After", "2")))
        return response

    def close(self) -> None:
        self.client.close()


@dataclass
class LiveCase:
    company: DemoCompany
    application: dict[str, Any]
    app_id: str = ""
    reference: str = ""
    case_id: str = ""
    version: int = 0
    tier: str = ""


class Live:
    """Drives the running intake and review services over HTTP, as people would."""

    def __init__(self, world: World, intake_url: str, review_url: str, rng: random.Random) -> None:
        self.world, self.rng = world, rng
        self.intake = {c.id: Api(intake_url, c.api_key) for c in world.companies}
        self.review = {o.id: Api(review_url, o.token) for o in world.officials}
        self.errors = 0

    def official(self, side: str, role: str) -> Api:
        return self.review[self.rng.choice(self.world.of(side, role)).id]

    def close(self) -> None:
        for api in [*self.intake.values(), *self.review.values()]:
            api.close()

    def _parallel(self, label: str, items: list[Any], work: Callable[[Any], None]) -> None:
        progress = Progress(label, len(items))

        def run(item: Any) -> None:
            try:
                work(item)
            except Exception as exc:
                self.errors += 1
                if self.errors <= 3:
                    say(f"{label}: {exc}")
            progress.step()

        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(run, items))
        progress.close()

    def submit(self, cases: list[LiveCase]) -> None:
        def one(case: LiveCase) -> None:
            r = self.intake[case.company.id].call(
                "POST",
                "/v1/applications",
                json=case.application,
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            r.raise_for_status()
            case.app_id, case.reference = r.json()["id"], r.json()["reference"]

        self._parallel("live: submit at intake", cases, one)

    def wait_opened(self, cases: list[LiveCase], timeout: float = 180) -> None:
        wanted = {c.reference: c for c in cases if c.reference}
        progress = Progress("live: cases opened", len(wanted))
        api = self.official("EU", "officer")
        deadline = time.monotonic() + timeout
        found: set[str] = set()
        while time.monotonic() < deadline and len(found) < len(wanted):
            offset = 0
            while True:
                page = api.call("GET", "/v1/cases", params={"limit": 200, "offset": offset}).json()
                for item in page["items"]:
                    case = wanted.get(item["reference"])
                    if case is not None and item["reference"] not in found:
                        case.case_id, case.version = item["id"], item["version"]
                        case.tier = item["priority"]["tier"]
                        found.add(item["reference"])
                offset += 200
                if offset >= page["total"]:
                    break
            progress.done = len(found)
            progress.draw(force=True)
            if len(found) < len(wanted):
                time.sleep(1)
        progress.close()

    def act(self, case: LiveCase, side: str, role: str, action: str, **params: Any) -> bool:
        api = self.official(side, role)
        for _ in range(2):
            r = api.call(
                "POST",
                f"/v1/cases/{case.case_id}/actions",
                json={"action": action, **params},
                headers={"If-Match": str(case.version)},
            )
            if r.status_code == 200:
                case.version = r.json()["version"]
                return self._countersign(case, side, r.json())
            if r.status_code == 409:
                case.version = api.call("GET", f"/v1/cases/{case.case_id}").json()["version"]
                continue
            break
        return False

    def _countersign(self, case: LiveCase, side: str, view: dict[str, Any]) -> bool:
        """Four eyes: a proposal (a decline, a refusal) is countersigned by a supervisor of
        the side who did not propose it; an action that took effect is left as it is."""
        for proposal in view.get("proposals", []):
            proposer = proposal["proposed_by"]["id"]
            others = [o for o in self.world.of(side, "supervisor") if o.id != proposer]
            api = self.review[self.rng.choice(others).id]
            r = api.call(
                "POST",
                f"/v1/cases/{case.case_id}/proposals/{proposal['id']}/countersign",
                headers={"If-Match": str(case.version)},
            )
            if r.status_code != 200:
                return False
            case.version = r.json()["version"]
        return True

    def handle(self, cases: list[LiveCase]) -> None:
        opened = [c for c in cases if c.case_id]
        asked: list[LiveCase] = []

        def screen(case: LiveCase) -> None:
            r = self.rng.random()
            if r < 0.15:
                return  # still being screened
            if r < 0.23:
                if self.act(
                    case,
                    "EU",
                    "officer",
                    "request_information",
                    question="Please upload the end-user statement.",
                ):
                    asked.append(case)
                return
            if r < 0.28:
                self.act(case, "EU", "officer", "decline", reason=self.rng.choice(DECLINE_REASONS))
                return
            self.act(case, "EU", "officer", "admit")

        self._parallel("live: EU screening", opened, screen)
        self._parallel("live: applicants answer", asked[: len(asked) // 2], self._answer)
        supervisor = self.official("EU", "supervisor")
        r = supervisor.call("POST", "/v1/priority-lists", json={})
        listed = (
            {c["case_id"] for c in r.json().get("cases", [])} if r.status_code == 201 else set()
        )
        say(
            f"priority list issued with {len(listed)} queued cases"
            if listed
            else "no queued case to list"
        )
        on_list = [c for c in opened if c.case_id in listed]
        for case in on_list:
            case.version = (
                self.official("CN", "officer")
                .call("GET", f"/v1/cases/{case.case_id}")
                .json()["version"]
            )

        def review(case: LiveCase) -> None:
            if self.rng.random() < 0.25:
                return  # not yet acknowledged by MOFCOM
            if not self.act(
                case, "CN", "officer", "acknowledge", accepted_on=date.today().isoformat()
            ):
                return
            r = self.rng.random()
            if r < 0.4:
                return  # under review
            if r < 0.45:
                self.act(case, "CN", "supervisor", "escalate", reason="Needs the joint meeting.")
            elif approves(self.rng, case.application):
                self.act(
                    case,
                    "CN",
                    "officer",
                    "approve",
                    licence={
                        "type": case.application["licence_type"],
                        "number": f"MOFCOM-LIC-{case.reference}",
                        "valid_from": date.today().isoformat(),
                    },
                )
            else:
                self.act(case, "CN", "officer", "refuse", reason=self.rng.choice(REFUSE_REASONS))

        self._parallel("live: CN review", on_list, review)
        leaving = [c for c in opened if self.rng.random() < 0.02]
        self._parallel("live: withdrawals", leaving, self._withdraw)

    def _answer(self, case: LiveCase) -> None:
        api = self.intake[case.company.id]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            view = api.call("GET", f"/v1/applications/{case.app_id}").json()
            open_requests = [
                r for r in view.get("information_requests", []) if r["status"] == "open"
            ]
            if open_requests:
                api.call(
                    "POST",
                    f"/v1/applications/{case.app_id}/information-requests/{open_requests[0]['id']}/answer",
                    json={"answer": "The end-user statement is attached to our file."},
                ).raise_for_status()
                return
            time.sleep(0.5)

    def _withdraw(self, case: LiveCase) -> None:
        self.intake[case.company.id].call(
            "POST", f"/v1/applications/{case.app_id}/withdraw", json={}
        )
