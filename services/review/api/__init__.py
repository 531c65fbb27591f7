"""Review's HTTP API under /v1, one router per concern, joined here in the order documented.

`router` is what app.py includes; `install_domain_errors` maps the domain's errors to problem
details. The routers: `cases` (the protocol, the queue, a case, its actions), `notes` (notes
and points of contact), `audit`, `lists` (priority lists), `rules` (priority rules and their
simulation) and `licences`; `common` holds what they share, `views` a side's view of a case,
`bodies` the request models (the console validates its forms with them too).
"""

from __future__ import annotations

from fastapi import APIRouter

from services.review.api import audit, cases, licences, lists, notes, rules
from services.review.api.errors import install_domain_errors
from shared.problems import documented_errors

__all__ = ["install_domain_errors", "router"]

router = APIRouter(prefix="/v1", responses=documented_errors())
for concern in (cases, notes, audit, lists, rules, licences):
    router.include_router(concern.router)
