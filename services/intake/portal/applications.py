"""The company's applications: the list at `/`, paginated as the API's list is (by number,
newest first), through the service layer's `applications` and `summary`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from services.intake import service
from services.intake.portal.pages import nav, render, router
from services.intake.portal.session import signed_in
from shared.i18n import N_

nav("/", N_("Applications"), within=("/applications/",))


@router.get("/", response_class=HTMLResponse)
def applications_page(
    request: Request,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> HTMLResponse:
    member = signed_in(request)
    settings = request.app.state.settings
    size = settings.default_page_size
    rows = service.applications(
        request.app.state.runtime.engine, member.company_id, None, after, size + 1
    )
    more = len(rows) > size
    rows = rows[:size]
    return render(
        request,
        "applications.html",
        member,
        # Each with its point of contact (the API's list has it on the application's view).
        applications=[(service.summary(r), r.point_of_contact) for r in rows],
        next_after=rows[-1].number if more and rows else None,
    )
