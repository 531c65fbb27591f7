"""The priority rules in force, a draft rule set simulated over the open backlog, and a
draft adopted (versioned; the open cases are scored again under it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlmodel import Session

from services.review.api.bodies import AdoptRulesBody
from services.review.api.common import (
    Official,
    casework_of,
    committed,
    engine_of,
    require,
    respond,
    router,
    shape,
)
from services.review.domain.priority import RuleSet
from services.review.service import Who, adopt_and_rescore


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
        return respond(casework.simulate_rules(session, rules))


class AdoptionResult(BaseModel):
    rules_version: str
    cases_scored: int


@router.get("/priority/rules", tags=["priority"], summary="The rule set in force (EU)")
def get_rules(request: Request, official: Official) -> dict[str, Any]:
    require(request, official, "read_priority_rules", "The priority rules are the EU side's.")
    casework = casework_of(request)
    with Session(engine_of(request)) as session:
        return casework.load_rules(session).as_dict()


@router.post(
    "/priority/rules",
    tags=["priority"],
    status_code=201,
    summary="Adopt a draft rule set (EU supervisor); the open cases are scored again under it",
    responses=shape(AdoptionResult, 201),
)
def adopt_rules(body: AdoptRulesBody, request: Request, official: Official) -> JSONResponse:
    refusal = "Only an EU supervisor may adopt priority rules."
    require(request, official, "adopt_priority_rules", refusal)
    casework = casework_of(request)
    rules = RuleSet.from_dict(body.rules)
    # In force from now: every open case is scored again at once, each tier change audited.
    scored = adopt_and_rescore(
        engine_of(request), casework, rules, Who.official(official), body.reason
    )
    committed(request)
    return respond({"rules_version": rules.version, "cases_scored": scored}, status=201)
