"""Review's HTTP API under /v1: one module per concern, each adding its routes to one router.

`router` (api/common.py) is what app.py includes (services/review/problems.py maps the domain's
errors to problem details). The concerns: `cases` (the protocol, the queue, a case, its
actions), `proposals` (four eyes: countersigning), `documents` (a case's document,
downloaded), `notes` (notes and points of contact), `audit`, `lists` (priority lists),
`rules` (priority rules and their simulation) and `licences`; `common` holds what they
share, `views` a side's view of a case, `bodies` the request models (the console's forms too).
"""

from __future__ import annotations

# Each module adds its routes to the one router: the order of this import is theirs.
# isort: off
from services.review.api import cases, proposals, documents, notes, audit, lists, rules
from services.review.api import licences

# isort: on
from services.review.api.common import router

__all__ = ["router"]

CONCERNS = (cases, proposals, documents, notes, audit, lists, rules, licences)
