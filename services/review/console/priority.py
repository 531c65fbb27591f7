"""The priority rules page: the rule set in force, and for an EU supervisor a draft simulated
over the open backlog and adopted (POST /v1/priority/simulate and /v1/priority/rules)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlmodel import Session, col, select

from services.review.api.bodies import AdoptRulesBody
from services.review.api.common import casework_of, committed, engine_of, permitted, require
from services.review.console.pages import invalid_fields, problem_text, redirect, render, router
from services.review.console.session import posted_form, signed_in
from services.review.domain import errors as domain_errors
from services.review.domain.priority import RuleSet
from services.review.service import Who, adopt_and_rescore
from services.review.store import PriorityRuleSet
from shared.directory import Principal

READ_REFUSAL = "The priority rules are the EU side's."
# Rule sets adopted before, newest first, that the page lists.
HISTORY = 20


def _page(
    request: Request,
    principal: Principal,
    status: int = 200,
    draft: str | None = None,
    reason: str = "",
    error: tuple[str, list[str]] | None = None,
    simulation: dict[str, Any] | None = None,
    adopted: str | None = None,
) -> HTMLResponse:
    casework = casework_of(request)
    with Session(engine_of(request)) as session:
        rules = casework.load_rules(session)
        history = session.exec(
            select(PriorityRuleSet).order_by(col(PriorityRuleSet.adopted_at).desc()).limit(HISTORY)
        ).all()
    in_force = yaml.safe_dump(rules.as_dict(), sort_keys=False, allow_unicode=True)
    return render(
        request,
        "priority.html",
        principal,
        status=status,
        rules_version=rules.version,
        in_force=in_force,
        draft=in_force if draft is None else draft,
        reason=reason,
        history=history,
        may_adopt=permitted(request, principal, "adopt_priority_rules"),
        error=error,
        simulation=simulation,
        adopted=adopted,
    )


@router.get("/priority-rules", response_class=HTMLResponse)
def rules_page(request: Request) -> HTMLResponse:
    principal = signed_in(request)
    require(request, principal, "read_priority_rules", READ_REFUSAL)
    return _page(request, principal, adopted=request.query_params.get("adopted"))


@router.post("/priority-rules", response_class=HTMLResponse)
async def simulate_or_adopt(request: Request) -> Response:
    """`do=simulate` shows what the draft would change; `do=adopt` puts it in force."""
    principal = signed_in(request)
    form = await posted_form(request)
    adopting = form.get("do") == "adopt"
    permission = "adopt_priority_rules" if adopting else "simulate_priority_rules"
    require(request, principal, permission, "Only an EU supervisor may change priority rules.")
    draft, reason = form.get("draft", ""), form.get("reason", "")
    casework = casework_of(request)
    try:
        rules = RuleSet.from_yaml(draft)
        if not adopting:
            with Session(engine_of(request)) as session:
                simulation = casework.simulate_rules(session, rules)
            return _page(request, principal, draft=draft, reason=reason, simulation=simulation)
        body = AdoptRulesBody.model_validate({"rules": rules.as_dict(), "reason": reason})
        adopt_and_rescore(engine_of(request), casework, rules, Who.official(principal), body.reason)
    except ValidationError as exc:
        message = ("Some fields need attention.", invalid_fields(exc))
        return _page(request, principal, 422, draft, reason, message)
    except domain_errors.ReviewDomainError as exc:
        status, text, fields = problem_text(exc)
        return _page(request, principal, status, draft, reason, (text, fields))
    committed(request)
    return redirect("/priority-rules?" + urlencode({"adopted": rules.version}))
