"""The queue of cases a side may see: one query, one visibility rule, for the API and console.

The visibility rule is PROTOCOL.md's: the EU side sees every case, the CN side only the cases
sent to China (on a priority list or fast-tracked). `GET /v1/cases` and the console's queue
page both build their query, their count and their rows here, searches included: a term is
looked for in the side's own search column (domain/search.py), so a side finds a case only by
what it may see of it. The rows of a priority list are read here too, in the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from services.review.domain.priority import stops_before_decision
from services.review.domain.protocol import Protocol
from services.review.domain.visibility import view_for
from services.review.store import Case, CaseCount, Proposal

Side = Literal["EU", "CN"]
TIERS = ("P1", "P2", "P3")

_CASES: Any = Case.__table__  # type: ignore[attr-defined]
_PROPOSALS: Any = Proposal.__table__  # type: ignore[attr-defined]

# Tier (P1 < P2 < P3 sort as text), then deadline with none last, then age; the id only makes
# the order total, so that offset pages neither repeat nor skip a case. ix_cases_order and
# ix_cases_queue serve it, so a page does not sort the whole queue.
QUEUE_ORDER = (
    _CASES.c.tier,
    _CASES.c.due_on.asc().nulls_last(),
    _CASES.c.opened_at,
    _CASES.c.id,
)
# The same order backwards (the console's "descending"), served by the same indexes.
QUEUE_ORDER_REVERSED = (
    _CASES.c.tier.desc(),
    _CASES.c.due_on.desc().nulls_first(),
    _CASES.c.opened_at.desc(),
    _CASES.c.id.desc(),
)

# The other orders a queue may be read in (the console's column headers); the age breaks ties.
SORTS: Mapping[str, Any] = {
    "priority": None,  # QUEUE_ORDER, the protocol's
    "reference": _CASES.c.reference,
    "state": _CASES.c.state,
    "due": _CASES.c.due_on,
    "submitted": _CASES.c.submitted_at,
}


def queue_order(sort: str, descending: bool = False) -> list[Any]:
    """The ORDER BY of a queue read by one of SORTS, ascending or descending."""
    if sort == "priority":
        return list(QUEUE_ORDER_REVERSED if descending else QUEUE_ORDER)
    column = SORTS[sort]
    return [column.desc() if descending else column, _CASES.c.opened_at]


# A search (or "assigned to me") is counted, up to this many: past it, a total would cost a
# scan of every match (the answer says "more than").
COUNT_CAP = 10_000

# What a queue row shows, read as plain columns: no ORM object per case, and not the fired
# rules, flags or audit head of each case, which a page does not show.
_QUEUE_COLUMNS = tuple(
    _CASES.c[name]
    for name in (
        "id",
        "reference",
        "company_id",
        "company_name",
        "version",
        "state",
        "submitted_at",
        "updated_at",
        "application",
        "tier",
        "score",
        "list_number",
        "list_position",
        "due_on",
        "expected_decision_date",
        "production_stop_date",
        "pending_proposal_id",
    )
)


def visible_to(side: Side) -> ColumnElement[bool] | None:
    """The cases table's condition for what `side` may see; None when it sees every case."""
    return _CASES.c.sent_to_cn_at.is_not(None) if side == "CN" else None


@dataclass(frozen=True)
class QueueFilter:
    """What a queue shows, already checked: states and tier are the protocol's own."""

    side: Side
    # One state, several (the console's "open only" is every non-final state), or any.
    states: str | Sequence[str] | None = None
    tier: str | None = None
    # The official whose cases these are (their side's point of contact), or anyone's.
    contact_id: str | None = None
    # A search term (domain/search.search_term: trimmed, lower-cased) or an exact case id.
    text: str = ""

    @property
    def counted_running(self) -> bool:
        """Whether case_counts holds this queue's size (no per-official or text filter)."""
        return self.contact_id is None and not self.text


def queue_query(wanted: QueueFilter) -> Select[Any]:
    """The rows of the queue, unordered and unpaged."""
    c = _CASES.c
    query = sa_select(*_QUEUE_COLUMNS)
    seen = visible_to(wanted.side)
    if seen is not None:
        query = query.where(seen)
    if isinstance(wanted.states, str):
        query = query.where(c.state == wanted.states)
    elif wanted.states is not None:
        query = query.where(c.state.in_(list(wanted.states)))
    if wanted.tier:
        query = query.where(c.tier == wanted.tier)
    if wanted.contact_id is not None:
        contact = c.eu_contact_id if wanted.side == "EU" else c.cn_contact_id
        query = query.where(contact == wanted.contact_id)
    if wanted.text:
        query = query.where(or_(_matches(wanted.side, wanted.text), c.id == wanted.text))
    return query


def _matches(side: Side, term: str) -> ColumnElement[bool]:
    """The side's search column holds `term` (the column is lower-cased already: LIKE).

    The trigram index is asked only for the term's anchor; the whole term is checked on the
    rows it finds, through an expression the index does not serve. Every MOFCOM number
    shares the trigrams of "mofcom-2025-", so asking the index for them all would read the
    posting lists of every case (docs/review.md, "Search").
    """
    searched = _CASES.c.search_eu if side == "EU" else _CASES.c.search_cn
    anchor = search_anchor(term)
    found = searched.like(_pattern(anchor), escape="\\")
    if anchor == term:
        return found
    return found & (searched + "").like(_pattern(term), escape="\\")


def search_anchor(term: str) -> str:
    """The part of a term the index is asked for: its longest run of 3 or more digits (the
    rarest part of numbers, codes and references), else the whole term."""
    runs = sorted(re.findall(r"[0-9]{3,}", term), key=len, reverse=True)
    return runs[0] if runs else term


def _pattern(term: str) -> str:
    """`%term%`, with the term's own %, _ and \\ matched literally."""
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def counted(
    session: Session, side: str, state: str | Sequence[str] | None, tier: str | None
) -> int:
    """How many cases the queue holds, from case_counts (store.py) rather than by counting.

    `state` is one state or several (the console's "open only" is every non-final state).
    """
    query = select(func.coalesce(func.sum(CaseCount.cases), 0))
    if side == "CN":
        query = query.where(col(CaseCount.sent_to_cn).is_(True))
    if isinstance(state, str):
        query = query.where(CaseCount.state == state)
    elif state is not None:
        query = query.where(col(CaseCount.state).in_(list(state)))
    if tier:
        query = query.where(CaseCount.tier == tier)
    return int(session.exec(query).one())


def queue_total(session: Session, wanted: QueueFilter, cap: int | None = None) -> int:
    """The queue's size: the running count when there is one, else counted (up to cap + 1)."""
    if wanted.counted_running:
        return counted(session, wanted.side, wanted.states, wanted.tier)
    query = queue_query(wanted).with_only_columns(_CASES.c.id)
    if cap is not None:
        query = query.limit(cap + 1)
    return int(session.execute(sa_select(func.count()).select_from(query.subquery())).scalar_one())


def queue_page(
    session: Session,
    wanted: QueueFilter,
    order: Sequence[Any],
    offset: int,
    size: int,
    today: date,
) -> list[dict[str, Any]]:
    """One page of the queue, each row as the side may see it, marked when overdue and when
    awaiting its side's countersignature."""
    rows = session.execute(queue_query(wanted).order_by(*order).offset(offset).limit(size)).all()
    proposing = _proposing_sides(session, rows)
    return [_row_view(wanted.side, case, today, proposing) for case in rows]


def _proposing_sides(session: Session, rows: Sequence[Any]) -> dict[str, str]:
    """The side of each pending proposal of these rows, by proposal id (one query)."""
    ids = [row.pending_proposal_id for row in rows if row.pending_proposal_id is not None]
    if not ids:
        return {}
    proposals = _PROPOSALS.c
    query = sa_select(proposals.id, proposals.side).where(proposals.id.in_(ids))
    return {proposal_id: side for proposal_id, side in session.execute(query)}


def listed_cases(
    session: Session, side: Side, case_ids: Sequence[str], today: date
) -> dict[str, dict[str, Any]]:
    """The cases named (a priority list's), each as a queue row the side may see, by id; a
    case the side may not see is left out."""
    query = sa_select(*_QUEUE_COLUMNS).where(_CASES.c.id.in_(list(case_ids)))
    seen = visible_to(side)
    if seen is not None:
        query = query.where(seen)
    rows = session.execute(query).all()
    proposing = _proposing_sides(session, rows)
    return {case.id: _row_view(side, case, today, proposing) for case in rows}


def deadline_rows(
    session: Session, side: Side, states: Sequence[str], until: date, today: date
) -> list[dict[str, Any]]:
    """The side's cases in `states` whose stage deadline is on or before `until`, by
    deadline, each as a queue row the side may see (the officials' daily digest)."""
    c = _CASES.c
    query = (
        queue_query(QueueFilter(side=side, states=states))
        .where(c.due_on.is_not(None), c.due_on <= until)
        .order_by(c.due_on, c.reference)
    )
    # A digest names no pending proposal: it marks nothing (as for the other side).
    return [_row_view(side, case, today, {}) for case in session.execute(query)]


def _row_view(side: Side, case: Any, today: date, proposing: Mapping[str, str]) -> dict[str, Any]:
    """One queue row as the side may see it (visibility.view_for), marked when overdue, and
    when a proposal of the side awaits countersignature: a proposal of the other side marks
    nothing (PROTOCOL.md: the other side never learns of a pending proposal)."""
    summary = view_for(
        side,
        {
            "id": case.id,
            "reference": case.reference,
            "version": case.version,
            "state": case.state,
            "submitted_at": case.submitted_at,
            "updated_at": case.updated_at,
            "applicant": {"company_id": case.company_id, "name": case.company_name},
            "application": case.application,
            "priority": {
                "tier": case.tier,
                "score": case.score,
                "list_number": case.list_number,
                "list_position": case.list_position,
            },
            "deadlines": {"stage_due": case.due_on},
            "expected_decision_date": case.expected_decision_date,
            "production_stops_before_decision": stops_before_decision(
                case.production_stop_date, case.expected_decision_date
            ),
        },
    )
    summary["overdue"] = case.due_on is not None and case.due_on < today
    pending = case.pending_proposal_id
    summary["awaiting_countersignature"] = pending is not None and proposing.get(pending) == side
    return summary


def stopping_before_decision(session: Session, protocol: Protocol) -> int:
    """How many open cases stop production before their expected decision date (EU only:
    the production stop date is hidden from China), from case_counts rather than by counting
    the cases: a few rows at any size."""
    terminal = [s for s in protocol.states if protocol.is_terminal(s)]
    query = select(func.coalesce(func.sum(CaseCount.cases), 0)).where(
        col(CaseCount.stops_before_decision).is_(True), col(CaseCount.state).not_in(terminal)
    )
    return int(session.exec(query).one())


def awaiting_a_list(session: Session, protocol: Protocol) -> Sequence[Case]:
    """The admitted cases waiting for a list, in the order a priority list takes them (the
    EU's lists page)."""
    waiting = protocol.target_of("admit")
    return session.exec(select(Case).where(Case.state == waiting).order_by(*QUEUE_ORDER)).all()
