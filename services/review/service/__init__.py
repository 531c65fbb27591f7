"""Review's service layer: every change to a case goes through `Casework`.

`Casework` is the one entry point the routes, the event handlers, the ticker and the
simulator call; each concern is a module of this package, and every change of state goes
through `CaseworkCore._apply` (core.py). It raises the domain's errors
(services/review/domain/errors.py), never HTTP ones, and reads the time from its clock.
"""

from __future__ import annotations

from services.review.service.cases import CaseActions
from services.review.service.clock import SYSTEM_CLOCK, Clock, SystemClock
from services.review.service.core import SOURCE, submitted_on, taken
from services.review.service.documents import CaseDocuments
from services.review.service.lists import queue_key
from services.review.service.notes import NotesAndAssignment
from services.review.service.rescoring import (
    PriorityRescoring,
    adopt_and_rescore,
    rescore_open_cases,
)
from services.review.service.ticker import DeadlineTicker
from services.review.service.who import SYSTEM_WHO, Who, applicant_who

__all__ = [
    "SOURCE",
    "SYSTEM_CLOCK",
    "SYSTEM_WHO",
    "Casework",
    "Clock",
    "SystemClock",
    "Who",
    "adopt_and_rescore",
    "applicant_who",
    "queue_key",
    "rescore_open_cases",
    "submitted_on",
    "taken",
]


class Casework(CaseActions, NotesAndAssignment, CaseDocuments, DeadlineTicker, PriorityRescoring):
    """The operations on cases; stateless apart from its collaborators (directory, protocol,
    priority rules, clock, audit key)."""
