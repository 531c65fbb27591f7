"""The priority rules in force, and a draft rule set simulated over the open backlog."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session, col, select

from services.review.api.common import (
    Official,
    casework_of,
    engine_of,
    require,
    respond,
    router,
    shape,
)
from services.review.domain.priority import RuleSet, SimulationCase, simulate
from services.review.store import Case


class SimulationResult(BaseModel):
    rules_version: str
    cases_scored: int
    changes: list[dict[str, Any]]


@router.post(
    "/priority/simulate",
    tags=["priority"],
    summary="Re-score the open backlog under a draft rule set (EU supervisor)",
    responses=shape(SimulationResult),
)
def simulate_priority(
    request: Request,
    official: Official,
    draft: Annotated[dict[str, Any], Body(description="A rule set, as priority_rules.yaml")],
) -> JSONResponse:
    require(
        request,
        official,
        "simulate_priority_rules",
        "Only an EU supervisor may simulate priority rules.",
    )
    casework = casework_of(request)
    rules = RuleSet.from_dict(draft)
    with Session(engine_of(request)) as session:
        open_cases = session.exec(
            select(Case).where(
                col(Case.state).not_in(
                    [s for s in casework.protocol.states if casework.protocol.is_terminal(s)]
                ),
                col(Case.tier_overridden).is_(False),
            )
        ).all()
        changes = simulate(
            [SimulationCase(c.id, c.application, c.tier, c.score) for c in open_cases],
            rules,
            casework.today(),
        )
        references = {c.id: c.reference for c in open_cases}
    return respond(
        {
            "rules_version": rules.version,
            "cases_scored": len(open_cases),
            "changes": [{**ch.as_dict(), "reference": references[ch.case_id]} for ch in changes],
        }
    )


@router.get("/priority/rules", tags=["priority"], summary="The rule set in force (EU)")
def get_rules(request: Request, official: Official) -> dict[str, Any]:
    require(request, official, "read_priority_rules", "The priority rules are the EU side's.")
    return casework_of(request).rules.as_dict()
