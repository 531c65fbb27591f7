"""`reechannel simulate`: a realistic demo past for the console and the metrics.

Two parts, both through the real engine (docs/metrics.md explains the choice):

* **History** (demo only, refused when REE_ENV=production): most applications are played
  out over the past months through the review service's own `Casework`, in this process,
  under a travelling clock (time-machine), one transaction per step, into the review
  database. Their audit entries carry the simulated times, so processing times are real
  working-day figures from the audit trail. Their events go through review's outbox, which
  the running review service relays. Their references start with `HIS-`: they exist on the
  review side only (intake never saw them and ignores their events).
* **Live**: the rest are submitted now to the running intake service over HTTP with demo
  companies' API keys, and handled now by officials over review's HTTP API (screening,
  requests for information answered at intake, a priority list, acknowledgements,
  decisions, withdrawals): everything flows through the real services' events.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import httpx

from shared.config import CommonSettings
from shared.directory import Directory

HISTORY_PREFIX = "HIS"
CALENDAR: Literal["EU"] = "EU"

# Fictitious companies across the critical value chains (DOMAIN.md).
COMPANY_STEMS: tuple[tuple[str, str, str], ...] = (
    ("Rheinmotor", "automotive", "DE"),
    ("Autovia Componentes", "automotive", "ES"),
    ("Torino Trazione", "automotive", "IT"),
    ("Baltic E-Drive", "automotive", "PL"),
    ("Lyon Moteurs Électriques", "automotive", "FR"),
    ("Nordwind Turbines", "wind_energy", "DK"),
    ("Atlantic Offshore Power", "wind_energy", "PT"),
    ("Windkraft Sachsen", "wind_energy", "DE"),
    ("Zeeland Generators", "wind_energy", "NL"),
    ("Eindhoven Photonics", "semiconductors", "NL"),
    ("Dresden Wafer Works", "semiconductors", "DE"),
    ("Grenoble Microsystèmes", "semiconductors", "FR"),
    ("Leuven Sputter Targets", "semiconductors", "BE"),
    ("Aero Toulouse Actuators", "aerospace", "FR"),
    ("Bavaria Avionics", "aerospace", "DE"),
    ("Milano Aerostrutture", "aerospace", "IT"),
    ("Helsinki Medical Imaging", "medical", "FI"),
    ("Uppsala MedTech", "medical", "SE"),
    ("Graz Imaging Systems", "medical", "AT"),
    ("Robotica Emilia", "robotics", "IT"),
    ("Brno Servo Drives", "robotics", "CZ"),
    ("Stuttgart Automation", "robotics", "DE"),
    ("Dublin Compute Hardware", "data_centres", "IE"),
    ("Frankfurt Server Cooling", "data_centres", "DE"),
    ("Ardennes Defence Systems", "defence", "BE"),
    ("Nordic Naval Electronics", "defence", "SE"),
    ("Ljubljana Magnetics", "other", "SI"),
    ("Vienna Precision Tools", "other", "AT"),
    ("Tallinn Battery Materials", "automotive", "EE"),
    ("Gdansk Wind Components", "wind_energy", "PL"),
    ("Porto Medical Devices", "medical", "PT"),
    ("Athens Motion Control", "robotics", "GR"),
    ("Bratislava Drives", "automotive", "SK"),
    ("Luxembourg Data Systems", "data_centres", "LU"),
    ("Riga Sensors", "semiconductors", "LV"),
    ("Zagreb Turbine Service", "wind_energy", "HR"),
)
SUFFIX = {"DE": "GmbH", "AT": "GmbH", "FR": "SAS", "IT": "S.p.A.", "ES": "S.L.", "NL": "B.V."}
EXPORTERS: tuple[str, ...] = (
    "Baotou Rare Earth Magnet Co.",
    "Ganzhou Heavy Rare Earth Metals Co.",
    "Ningbo NdFeB Materials Co.",
    "Inner Mongolia Oxide Refining Co.",
    "Xiamen Tungsten and Rare Earth Co.",
    "Sichuan Lutetium Materials Co.",
    "Jiangxi Dysprosium Alloys Co.",
    "Shandong Samarium Cobalt Co.",
)
# Forms, what they contain, their HS codes, and how readily China approves them: the seeds
# name oxides, metals and magnet alloys as the product categories with bottlenecks.
FORMS: dict[str, dict[str, Any]] = {
    "magnet": {"weight": 38, "hs": "8505.11", "approve": 0.64, "cn_days": 14},
    "oxide": {"weight": 20, "hs": "2846.90", "approve": 0.47, "cn_days": 24},
    "metal": {"weight": 17, "hs": "2805.30", "approve": 0.50, "cn_days": 21},
    "alloy": {"weight": 15, "hs": "3824.99", "approve": 0.53, "cn_days": 19},
    "compound": {"weight": 10, "hs": "2846.90", "approve": 0.60, "cn_days": 12},
}
ELEMENTS = ("Dy", "Tb", "Sm", "Gd", "Y", "Lu", "Sc")
ELEMENT_WEIGHTS = (30, 22, 16, 12, 10, 4, 6)
REFUSE_REASONS = (
    "end_use_not_credible",
    "quantity_not_justified",
    "diversion_risk",
    "incomplete_file",
)
DECLINE_REASONS = ("goods_not_controlled", "incomplete_file", "duplicate_application")


# --- output -----------------------------------------------------------------------------


class Progress:
    """A one-line progress bar on stderr (\\r), quiet when stderr is not a terminal-ish stream."""

    def __init__(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, max(total, 1), 0
        self.started = time.monotonic()
        self._last = 0.0
        self.draw(force=True)

    def step(self, n: int = 1) -> None:
        self.done += n
        self.draw()

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < 0.2 and self.done < self.total:
            return
        self._last = now
        share = min(self.done / self.total, 1.0)
        bar = "█" * int(share * 30) + "░" * (30 - int(share * 30))
        elapsed = now - self.started
        sys.stderr.write(
            f"\r{self.label:<26} {bar} {share * 100:5.1f}%  "
            f"{self.done}/{self.total}  {elapsed:5.0f}s"
        )
        sys.stderr.flush()

    def close(self) -> None:
        self.done = self.total
        self.draw(force=True)
        sys.stderr.write("\n")


def say(message: str) -> None:
    print(f"[simulate] {message}", flush=True)


# --- the demo world -----------------------------------------------------------------------


@dataclass
class DemoCompany:
    id: str
    name: str
    eori: str
    country: str
    value_chain: str
    api_key: str


@dataclass
class DemoOfficial:
    id: str
    name: str
    side: str
    role: str
    token: str


@dataclass
class World:
    companies: list[DemoCompany]
    officials: list[DemoOfficial]

    def of(self, side: str, role: str) -> list[DemoOfficial]:
        return [o for o in self.officials if o.side == side and o.role == role]


def create_world(directory: Directory, companies: int, rng: random.Random) -> World:
    """Demo companies and officials, created through the directory like `reechannel` does."""
    run = uuid.uuid4().hex[:6].upper()
    made = []
    for i in range(companies):
        stem, chain, country = COMPANY_STEMS[i % len(COMPANY_STEMS)]
        name = f"{stem} {SUFFIX.get(country, 'SA')}" + (
            f" ({i // len(COMPANY_STEMS) + 1})" if i >= len(COMPANY_STEMS) else ""
        )
        eori = f"{country}{run}{i:06d}"
        company, key = directory.create_company(name, eori)
        made.append(DemoCompany(company.id, name, eori, country, chain, key))
    people = [
        ("EU", "officer", "Eva Martens"),
        ("EU", "officer", "Jonas Keller"),
        ("EU", "officer", "Sofia Romano"),
        ("EU", "officer", "Pieter de Vries"),
        ("EU", "supervisor", "Claire Dubois"),
        ("EU", "supervisor", "Henrik Larsen"),
        ("CN", "officer", "Chen Wei"),
        ("CN", "officer", "Wang Fang"),
        ("CN", "officer", "Zhang Lei"),
        ("CN", "officer", "Liu Yang"),
        ("CN", "supervisor", "Li Na"),
        ("CN", "supervisor", "Zhao Min"),
    ]
    officials = []
    for side, role, name in people:
        official, token = directory.create_official(name, side, role)
        officials.append(DemoOfficial(official.id, name, side, role, token))
    return World(made, officials)


def uscc(rng: random.Random) -> str:
    return "9111" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(14))


def make_application(rng: random.Random, company: DemoCompany, today: date) -> dict[str, Any]:
    """One plausible application, valid for intake's rules (Nd/Pr only in Dy/Tb magnets)."""
    form = rng.choices(list(FORMS), [f["weight"] for f in FORMS.values()])[0]
    element = rng.choices(ELEMENTS, ELEMENT_WEIGHTS)[0]
    goods = []
    if form == "magnet":
        heavy = rng.choice(("Dy", "Tb"))
        goods.append(_line(rng, heavy, form))
        if rng.random() < 0.5:
            goods.append(_line(rng, rng.choice(("Nd", "Pr")), form))
    else:
        goods.append(_line(rng, element, form))
        if rng.random() < 0.15:
            other = rng.choice([e for e in ELEMENTS if e != element])
            goods.append(_line(rng, other, rng.choice(["metal", "oxide", "alloy"])))
    stock = rng.choice([5, 9, 12, 20, 28, 45, 60, 90])
    buyer = {"name": company.name, "country": company.country}
    chain_words = company.value_chain.replace("_", " ")
    return {
        "mofcom_application_number": f"MOFCOM-{today.year}-{rng.randrange(10**6):06d}",
        "licence_type": rng.choices(["three_month", "annual", "general"], [70, 22, 8])[0],
        "exporter": {"name": rng.choice(EXPORTERS), "uscc": uscc(rng)},
        "consignee": buyer,
        "end_user": buyer,
        "end_use": {
            "category": company.value_chain,
            "description": f"{chain_words} production in {company.country}",
        },
        "goods": goods,
        "urgency": {
            "stock_days": stock,
            "production_stop_date": (
                today + timedelta(days=stock + rng.randrange(5, 40))
            ).isoformat(),
            "jobs_at_risk": rng.choice([0, 40, 120, 300, 650, 1200, 3000]),
        },
        "sme": rng.random() < 0.3,
    }


def _line(rng: random.Random, element: str, form: str) -> dict[str, Any]:
    kg = round(rng.lognormvariate(4.5, 1.0), 1) + 1
    return {
        "element": element,
        "form": form,
        "hs_code": FORMS[form]["hs"],
        "quantity_kg": kg,
        "value_eur": round(kg * rng.uniform(150, 900)),
    }


def approves(rng: random.Random, application: dict[str, Any]) -> bool:
    if application["end_use"]["category"] == "defence":
        return rng.random() < 0.05
    chance = min(FORMS[g["form"]]["approve"] for g in application["goods"])
    return rng.random() < chance


# --- history: back-dated through Casework (demo only) -------------------------------------


@dataclass(order=True)
class Step:
    at: datetime
    seq: int
    kind: str = field(compare=False)
    case_ref: str = field(compare=False, default="")
    data: dict[str, Any] = field(compare=False, default_factory=dict)


class History:
    """Plays cases out over past months through Casework, under a travelling clock."""

    def __init__(
        self,
        settings: CommonSettings,
        directory: Directory,
        world: World,
        rng: random.Random,
        now: datetime,
    ) -> None:
        import time_machine

        from services.review.app import MIGRATIONS
        from services.review.casework import Casework
        from shared.db import make_engine, migrate

        self._travel = time_machine.travel
        self.engine = make_engine(settings, "review", pool_size=2)
        migrate(self.engine, MIGRATIONS, settings.schema_for("review"))
        self.casework = Casework(directory)
        self.world, self.rng, self.now = world, rng, now
        self.queue: list[Step] = []
        self.counter = itertools.count()
        self.cases: dict[str, dict[str, Any]] = {}  # reference -> id, application, plan
        self.skipped = 0
        self.failures: list[str] = []
        self.lapse_planned = False

    # scheduling

    def at(self, moment: datetime, kind: str, ref: str = "", **data: Any) -> None:
        if moment < self.now:
            heapq.heappush(self.queue, Step(moment, next(self.counter), kind, ref, data))

    def later(self, moment: datetime, working_days: int, hour: int | None = None) -> datetime:
        from services.review.domain.calendar import add_working_days

        day = add_working_days(CALENDAR, moment.date(), max(working_days, 0))
        hour = hour if hour is not None else self.rng.randrange(8, 18)
        return datetime(day.year, day.month, day.day, hour, self.rng.randrange(60), tzinfo=UTC)

    def _numbers_used(self) -> dict[int, int]:
        """The highest HIS- number per year already in the database, so reruns never clash."""
        from sqlmodel import Session, col, select

        from services.review.store import Case

        used: dict[int, int] = {}
        with Session(self.engine) as session:
            for ref in session.exec(
                select(Case.reference).where(col(Case.reference).startswith(HISTORY_PREFIX + "-"))
            ):
                _, year, number = ref.split("-")
                used[int(year)] = max(used.get(int(year), 0), int(number))
        return used

    def plan(self, count: int, start: datetime, lists: int) -> None:
        span = (self.now - start).total_seconds()
        year_seq = self._numbers_used()
        for _ in range(count):
            submitted = start + timedelta(seconds=span * (self.rng.random() ** 0.8))
            submitted = self.later(submitted - timedelta(days=1), 1)
            if submitted >= self.now:
                continue
            year_seq[submitted.year] = year_seq.get(submitted.year, 0) + 1
            ref = f"{HISTORY_PREFIX}-{submitted.year}-{year_seq[submitted.year]:06d}"
            company = self.rng.choice(self.world.companies)
            application = make_application(self.rng, company, submitted.date())
            self.cases[ref] = {"company": company, "application": application}
            self.at(submitted, "open", ref)
        for k in range(1, lists + 1):
            moment = self.later(start + timedelta(seconds=span * k / (lists + 0.6)), 0, hour=10)
            self.at(moment, "list")
        day = start.date()
        while day < self.now.date():
            self.at(datetime(day.year, day.month, day.day, 23, 0, tzinfo=UTC), "tick")
            day += timedelta(days=1)
        # A last check today, so the service's own ticker finds the history up to date.
        self.at(self.now - timedelta(seconds=1), "tick")

    # running

    def run(self) -> None:
        progress = Progress("history (back-dated)", len(self.queue))
        while self.queue:
            step = heapq.heappop(self.queue)
            with self._travel(step.at, tick=False):
                try:
                    getattr(self, "_" + step.kind)(step)
                except Exception as exc:  # a step the protocol refuses now is skipped
                    self.skipped += 1
                    self.failures.append(f"{step.kind} on {step.case_ref}: {exc}")
            progress.total = max(progress.total, progress.done + len(self.queue) + 1)
            progress.step()
        progress.close()
        self.engine.dispose()
        if self.skipped:
            say(f"{self.skipped} planned steps no longer applied (the case had moved on)")
        for failure in self.failures[:5]:
            say(f"step failed: {failure}")

    def _session(self) -> Any:
        from shared.db import session_scope

        return session_scope(self.engine)

    def _who(self, side: str, role: str) -> Any:
        from services.review.casework import Who

        o = self.rng.choice(self.world.of(side, role))
        return Who(o.id, side, role, o.name)

    def _case(self, session: Any, ref: str) -> Any:
        from services.review.store import Case

        return session.get(Case, self.cases[ref]["id"])

    def _act(self, ref: str, side: str, role: str, action: str, **params: Any) -> str | None:
        """Take the action if the case is in a state that allows it; return the new state."""
        with self._session() as session:
            case = self._case(session, ref)
            who = self._who(side, role)
            if action not in self.casework.allowed_actions(case, who):
                self.skipped += 1
                return None
            self.casework.act(session, case, who, action, params, case.version)
            return str(case.state)

    def _open(self, step: Step) -> None:
        from shared.events import ApplicationSubmitted

        plan = self.cases[step.case_ref]
        company: DemoCompany = plan["company"]
        data = ApplicationSubmitted.model_validate(
            {
                "application_id": str(uuid.uuid4()),
                "reference": step.case_ref,
                "company_id": company.id,
                "submitted_at": step.at,
                "status": "submitted",
                "application": plan["application"],
            }
        )
        with self._session() as session:
            case = self.casework.open_case(session, data)
            assert case is not None
            plan["id"], plan["tier"] = case.id, case.tier
        r = self.rng.random()
        screening = self.later(step.at, self.rng.choice([0, 1, 1, 2, 2, 3, 4, 6]))
        if plan["tier"] == "P1":
            screening = self.later(step.at, self.rng.choice([0, 0, 1, 1, 2]))
        plan["withdrawn"] = r < 0.03
        if r < 0.03:
            self.at(self.later(step.at, self.rng.randrange(1, 15)), "withdraw", step.case_ref)
        if r < 0.14:
            self.at(self.later(step.at, 1), "ask", step.case_ref, side="EU")
        elif r < 0.22:
            reason = self.rng.choice(DECLINE_REASONS)
            if plan["application"]["end_use"]["category"] == "defence":
                reason = "military_end_use"
            self.at(screening, "decline", step.case_ref, reason=reason)
        else:
            self.at(screening, "admit", step.case_ref)

    def _ask(self, step: Step) -> None:
        side = step.data["side"]
        state = self._act(
            step.case_ref,
            side,
            "officer",
            "request_information",
            question="Please provide the end-user statement and the contract covering these goods.",
        )
        if state is None:
            return
        answered = self.rng.random() < 0.85
        if not self.lapse_planned and self._lapses_before_now(step):
            # Every history long enough shows a lapse, whatever today's date: the first
            # request with room for its lapse before now goes unanswered.
            answered = False
        if answered:
            answer = self.later(step.at, self.rng.randrange(2, 12))
            self.at(answer, "answer", step.case_ref, side=side)
        else:
            # Nobody answers and the deadline ticker lapses the case.
            self.lapse_planned = self.lapse_planned or self._lapses_before_now(step)

    def _lapses_before_now(self, step: Step) -> bool:
        """Whether an unanswered request asked at this step lapses before now."""
        from services.review.domain.calendar import add_working_days

        if self.cases[step.case_ref].get("withdrawn"):
            return False
        # The protocol's 20 working days, and some room for the ticker and holidays.
        return add_working_days(CALENDAR, step.at.date(), 25) < self.now.date()

    def _answer(self, step: Step) -> None:
        from services.review.store import open_request
        from shared.events import InformationAnswered

        plan = self.cases[step.case_ref]
        with self._session() as session:
            case = self._case(session, step.case_ref)
            request = open_request(session, case.id)
            if request is None:
                return
            self.casework.record_answer(
                session,
                InformationAnswered(
                    application_id=case.application_id,
                    reference=case.reference,
                    company_id=case.company_id,
                    request_id=request.id,
                    answer="Statement and contract uploaded.",
                    answered_at=step.at,
                ),
            )
        after = self.later(step.at, self.rng.choice([1, 1, 2, 3]))
        if step.data["side"] == "EU":
            self.at(after, "admit", step.case_ref)
        else:
            self._schedule_decision(step.case_ref, after, plan)

    def _decline(self, step: Step) -> None:
        self._act(step.case_ref, "EU", "officer", "decline", reason=step.data["reason"])

    def _withdraw(self, step: Step) -> None:
        from shared.events import ApplicationWithdrawn

        with self._session() as session:
            case = self._case(session, step.case_ref)
            if self.casework.protocol.is_terminal(case.state):
                return
            self.casework.record_withdrawal(
                session,
                ApplicationWithdrawn(
                    application_id=case.application_id,
                    reference=case.reference,
                    company_id=case.company_id,
                    withdrawn_at=step.at,
                    reason="Supply found elsewhere.",
                ),
            )

    def _admit(self, step: Step) -> None:
        if self._act(step.case_ref, "EU", "officer", "admit") is None:
            return
        plan = self.cases[step.case_ref]
        if plan["tier"] == "P1" and self.rng.random() < 0.75:
            self.at(self.later(step.at, self.rng.choice([0, 1, 1, 2])), "fast_track", step.case_ref)

    def _fast_track(self, step: Step) -> None:
        state = self._act(
            step.case_ref,
            "EU",
            "supervisor",
            "fast_track",
            reason="Critical value chain; production stops within weeks.",
        )
        if state == "cn_review":
            self._schedule_cn(step.case_ref, step.at)

    def _list(self, step: Step) -> None:
        from sqlmodel import select

        from services.review.store import Case

        with self._session() as session:
            queued = set(session.exec(select(Case.id).where(Case.state == "queued")).all())
            refs = [ref for ref, plan in self.cases.items() if plan.get("id") in queued]
            if not refs:
                return
            ids = [self.cases[ref]["id"] for ref in refs]
            self.casework.issue_priority_list(session, self._who("EU", "supervisor"), ids, None)
        for ref in refs:
            self._schedule_cn(ref, step.at)

    def _schedule_cn(self, ref: str, sent: datetime) -> None:
        self.at(self.later(sent, self.rng.choice([1, 2, 2, 3, 4, 6, 8])), "acknowledge", ref)

    def _acknowledge(self, step: Step) -> None:
        state = self._act(
            step.case_ref, "CN", "officer", "acknowledge", accepted_on=step.at.date().isoformat()
        )
        if state is None:
            return
        plan = self.cases[step.case_ref]
        if self.rng.random() < 0.06:
            self.at(self.later(step.at, self.rng.randrange(2, 8)), "ask", step.case_ref, side="CN")
            return
        if self.rng.random() < 0.04:
            self.at(self.later(step.at, self.rng.randrange(5, 12)), "escalate", step.case_ref)
        self._schedule_decision(step.case_ref, step.at, plan)

    def _schedule_decision(self, ref: str, start: datetime, plan: dict[str, Any]) -> None:
        application = plan["application"]
        mean = max(FORMS[g["form"]]["cn_days"] for g in application["goods"])
        if plan["tier"] == "P1":
            mean = int(mean * 0.6)
        days = max(2, int(self.rng.gauss(mean, mean * 0.35)))
        decision = "approve" if approves(self.rng, application) else "refuse"
        self.at(self.later(start, days), decision, ref)

    def _escalate(self, step: Step) -> None:
        self._act(
            step.case_ref,
            "EU",
            "supervisor",
            "escalate",
            reason="Production stop imminent; raised for the joint meeting.",
        )

    def _approve(self, step: Step) -> None:
        goods = self.cases[step.case_ref]["application"]["goods"]
        lines = [
            {
                "line": n,
                "approved_quantity_kg": g["quantity_kg"]
                if self.rng.random() < 0.8
                else round(g["quantity_kg"] * 0.6, 1),
            }
            for n, g in enumerate(goods, start=1)
        ]
        self._act(
            step.case_ref,
            "CN",
            "officer",
            "approve",
            licence={
                "type": self.cases[step.case_ref]["application"]["licence_type"],
                "number": f"MOFCOM-LIC-{step.case_ref}",
                "valid_from": step.at.date().isoformat(),
                "lines": lines,
            },
        )

    def _refuse(self, step: Step) -> None:
        application = self.cases[step.case_ref]["application"]
        reason = (
            "military_end_use"
            if application["end_use"]["category"] == "defence"
            else self.rng.choice(REFUSE_REASONS)
        )
        self._act(step.case_ref, "CN", "officer", "refuse", reason=reason)

    def _tick(self, step: Step) -> None:
        with self._session() as session:
            self.casework.check_deadlines(session, step.at.date())


# --- live: the running services over HTTP -------------------------------------------------


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
                return True
            if r.status_code == 409:
                case.version = api.call("GET", f"/v1/cases/{case.case_id}").json()["version"]
                continue
            break
        return False

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


# --- the command ----------------------------------------------------------------------------


@dataclass
class Options:
    count: int = 2000
    companies: int = 30
    intake_url: str = "http://127.0.0.1:8001"
    review_url: str = "http://127.0.0.1:8002"
    history_share: float = 0.85
    months: int = 8
    lists: int = 7
    seed: int | None = None


def _check_up(urls: Iterable[str]) -> None:
    for url in urls:
        try:
            ok = httpx.get(url.rstrip("/") + "/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            ok = False
        if not ok:
            raise SystemExit(f"{url} is not ready: start the services first (`make run`)")


def run(options: Options, settings: CommonSettings | None = None) -> int:
    from shared.cli import open_directory

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
        history.plan(history_count, now - timedelta(days=30 * options.months), options.lists)
        say(
            f"history: {len(history.cases)} applications over {options.months} months, "
            f"{options.lists} lists"
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
