"""The queue page: the side's cases, filtered, searched, sorted, a page at a time."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from services.review.api.common import casework_of, engine_of, side_of
from services.review.console.pages import render, router
from services.review.console.session import signed_in
from services.review.domain.search import InvalidSearchTerm, search_term
from services.review.queue import (
    COUNT_CAP,
    SORTS,
    TIERS,
    QueueFilter,
    queue_order,
    queue_page,
    queue_total,
)

PAGE_SIZE = 50


@router.get("/", response_class=HTMLResponse)
def queue(request: Request) -> HTMLResponse:
    principal = signed_in(request)
    side = side_of(principal)
    casework = casework_of(request)
    q = request.query_params
    state = q.get("state") or None
    tier = q.get("tier") or None
    typed = (q.get("q") or "").strip()
    # The API's rule for a search term; a term it refuses is named next to the box, unsearched.
    try:
        text, search_error = (search_term(typed), None) if typed else ("", None)
    except InvalidSearchTerm as exc:
        text, search_error = "", f"Search: {exc}."
    mine = q.get("assigned") == "me"
    show = q.get("show", "open")
    sort = str(q.get("sort")) if q.get("sort") in SORTS else "priority"
    descending = q.get("dir") == "desc"
    offset = max(
        0, min(int(q.get("offset", "0") or 0) if q.get("offset", "").isdigit() else 0, 10**7)
    )
    states = casework.protocol.states
    open_states = [s for s in states if not casework.protocol.is_terminal(s)]
    # An unknown state or tier in the address is no filter; "open" is every non-final state.
    wanted = QueueFilter(
        side=side,
        states=state if state in states else open_states if show == "open" else None,
        tier=tier if tier in TIERS else None,
        contact_id=principal.subject_id if mine else None,
        text=text,
    )
    with Session(engine_of(request)) as session:
        total = queue_total(session, wanted, cap=COUNT_CAP)
        items = queue_page(
            session, wanted, queue_order(sort, descending), offset, PAGE_SIZE, casework.today()
        )
    params = {
        k: v
        for k, v in {
            "state": state or "",
            "tier": tier or "",
            "q": typed if text else "",
            "assigned": "me" if mine else "",
            "show": show,
        }.items()
        if v
    }

    def sort_link(name: str) -> str:
        flip = "asc" if sort == name and descending else "desc" if sort == name else "asc"
        return "/?" + urlencode({**params, "sort": name, "dir": flip})

    def page_link(to: int) -> str:
        return "/?" + urlencode(
            {**params, "sort": sort, "dir": "desc" if descending else "asc", "offset": to}
        )

    return render(
        request,
        "queue.html",
        principal,
        status=422 if search_error else 200,
        search_error=search_error,
        items=items,
        total=int(total),
        more=total > COUNT_CAP,
        cap=COUNT_CAP,
        offset=offset,
        page_size=PAGE_SIZE,
        states=[s for s in casework.protocol.states if s != casework.protocol.initial_state()],
        filters={"state": state, "tier": tier, "q": typed, "assigned": mine, "show": show},
        sort=sort,
        descending=descending,
        sort_link=sort_link,
        prev_link=page_link(max(0, offset - PAGE_SIZE)) if offset else None,
        next_link=page_link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    )
