"""Every domain error maps to one problem, in services/review/problems.py (pure mapping)."""

from __future__ import annotations

import pytest

from services.review.domain import errors
from services.review.problems import problem_for

FIELD = errors.FieldError("official_id", "no such official of your side")
IN_STATE = "action-not-allowed-in-state"


@pytest.mark.parametrize(
    ("error", "status", "type_"),
    [
        (errors.CaseNotFound(), 404, "not-found"),
        (errors.ActionForbidden("admit", "CN officer"), 403, "action-forbidden"),
        (errors.NotPermitted("revoke_licence", "CN supervisors only."), 403, "forbidden"),
        (errors.ActionNotAllowedInState("admit", "queued"), 409, IN_STATE),
        (errors.ActionNotAllowedForTier("fast_track", "queued", "P3", ["P1"]), 409, IN_STATE),
        (errors.StaleCase(), 409, "stale-version"),
        (errors.CaseConflict("No queued cases to put on a list."), 409, "conflict"),
        (errors.LicenceNotActive("L-1", "revoked", "since today"), 409, "licence-limit"),
        (errors.InvalidAssignee("Not of your side.", [FIELD]), 422, "validation-failed"),
        (errors.InvalidLicence([FIELD]), 422, "validation-failed"),
        (errors.UnknownAction("screen"), 422, "validation-failed"),
        (errors.UnknownState("screening"), 500, "internal-error"),
    ],
)  # fmt: skip
def test_each_domain_error_has_its_status_and_type(
    error: errors.ReviewDomainError, status: int, type_: str
) -> None:
    problem = problem_for(error)
    assert (problem.status, problem.type) == (status, type_)


def test_the_bodies_are_the_ones_the_api_sent() -> None:
    stale = problem_for(errors.StaleCase())
    assert stale.detail == "The case has changed since you read it; reload and try again."
    missing = problem_for(errors.CaseNotFound())
    assert (missing.title, missing.detail) == ("Not found", "No such case.")
    assignee = problem_for(errors.InvalidAssignee("The official must exist.", [FIELD]))
    assert assignee.extra == {"errors": [FIELD.as_dict()]}
    unknown = problem_for(errors.UnknownAction("screen"))
    assert unknown.extra == {"errors": [{"field": "action", "message": "unknown action 'screen'"}]}
    assert problem_for(errors.StaleCase()).extra == {}
