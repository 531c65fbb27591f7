"""case_counts, the queue's total, stays equal to counting the cases through every change.

The counts are kept explicitly (services/review/projection.py): Casework says which cases it
takes (`taken`, at the version claim) and which it changed (`changed`, from `_apply`); these
tests make the same calls around plain changes to the rows."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, create_engine, select

from services.review.domain.protocol import Protocol
from services.review.projection import projections
from services.review.queue import stopping_before_decision
from services.review.store import Case, CaseCount
from shared.db import session_scope
from tests.metrics_oracle import stopping_before_decision_from_columns

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{tmp_path / 'review.db'}")
    SQLModel.metadata.create_all(engine, tables=[Case.__table__, CaseCount.__table__])  # type: ignore[attr-defined]
    return engine


def new_case(n: int, tier: str = "P2") -> Case:
    return Case(
        application_id=f"app-{n}",
        reference=f"REC-2026-{n:06d}",
        company_id="company",
        state="submitted",
        tier=tier,
        application={},
        submitted_at=NOW,
        stage_started_on=date(2026, 3, 2),
    )


def taken(session: Session, *cases: Case, new: bool = False) -> None:
    for case in cases:
        projections(session).counts.taken(case, is_new=new)


def changed(session: Session, *cases: Case) -> None:
    for case in cases:
        projections(session).counts.changed(case)


def counted(engine: Engine) -> dict[tuple[str, str, bool], int]:
    with Session(engine) as session:
        rows = session.exec(select(CaseCount)).all()
    return {(r.state, r.tier, bool(r.sent_to_cn)): r.cases for r in rows if r.cases}


def actual(engine: Engine) -> dict[tuple[str, str, bool], int]:
    with Session(engine) as session:
        cases = session.exec(select(Case)).all()
    return dict(Counter((c.state, c.tier, c.sent_to_cn_at is not None) for c in cases))


def test_counts_follow_opening_moves_retiering_and_sending_to_china(engine: Engine) -> None:
    with session_scope(engine) as session:
        cases = [new_case(n, tier="P1" if n % 3 == 0 else "P2") for n in range(6)]
        session.add_all(cases)
        taken(session, *cases, new=True)
        changed(session, *cases)
        session.flush()
        for case in cases:
            case.state = "eu_screening"  # a second flush in the same transaction
        changed(session, *cases)
    assert (
        counted(engine)
        == actual(engine)
        == {("eu_screening", "P1", False): 2, ("eu_screening", "P2", False): 4}
    )
    with session_scope(engine) as session:
        for case in session.exec(select(Case)).all():
            taken(session, case)
            if case.tier == "P2":
                case.state, case.sent_to_cn_at = "cn_review", NOW
            else:
                case.tier = "P3"
            session.add(case)
            changed(session, case)
    assert counted(engine) == actual(engine)
    assert counted(engine)[("cn_review", "P2", True)] == 4


def test_a_rolled_back_change_leaves_the_counts_alone(engine: Engine) -> None:
    with session_scope(engine) as session:
        case = new_case(1)
        session.add(case)
        taken(session, case, new=True)
        changed(session, case)
    before = counted(engine)
    with pytest.raises(RuntimeError), session_scope(engine) as session:
        case = session.exec(select(Case)).one()
        taken(session, case)
        case.state = "queued"
        changed(session, case)
        session.flush()
        raise RuntimeError("the request failed after the flush")
    assert counted(engine) == before == actual(engine)


def test_a_version_claim_does_not_count_twice(engine: Engine) -> None:
    with session_scope(engine) as session:
        case = new_case(1)
        session.add(case)
        taken(session, case, new=True)
        changed(session, case)
    with session_scope(engine) as session:
        case = session.exec(select(Case)).one()
        session.execute(update(Case).values(version=Case.version + 1))
        taken(session, case)
        case.state = "eu_screening"
        session.add(case)
        changed(session, case)
    assert counted(engine) == actual(engine) == {("eu_screening", "P2", False): 1}


def stopping_counted(engine: Engine, protocol: Protocol) -> int:
    """The EU metrics' figure, with every statement it runs recorded."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        with Session(engine) as session:
            found = stopping_before_decision(session, protocol)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert statements and not any(re.search(r"\bFROM cases\b", s) for s in statements), (
        "read off case_counts, not counted over the cases"
    )
    return found


def stopping_actual(engine: Engine, protocol: Protocol) -> int:
    with Session(engine) as session:
        return stopping_before_decision_from_columns(session, protocol)


def test_stopping_before_decision_follows_dates_and_closing(engine: Engine) -> None:
    protocol = Protocol.load()
    closed = next(s for s in protocol.states if protocol.is_terminal(s))
    decision = date(2026, 4, 1)
    with session_scope(engine) as session:
        cases = [new_case(n) for n in range(4)]
        for n, case in enumerate(cases):
            case.state = protocol.target_of("open")
            case.expected_decision_date = decision
            case.production_stop_date = decision - timedelta(days=1 - n)  # n=0 stops first
        session.add_all(cases)
        taken(session, *cases, new=True)
        changed(session, *cases)
    assert stopping_counted(engine, protocol) == stopping_actual(engine, protocol) == 1
    with session_scope(engine) as session:
        on_the_day, later = session.exec(
            select(Case).where(
                Case.reference.in_(  # type: ignore[attr-defined]
                    ["REC-2026-000001", "REC-2026-000002"]
                )
            )
        ).all()
        taken(session, on_the_day, later)
        on_the_day.expected_decision_date = decision + timedelta(days=10)  # moves past the stop
        later.production_stop_date = None  # no stop date: never counted
        session.add_all([on_the_day, later])
        changed(session, on_the_day, later)
    assert stopping_counted(engine, protocol) == stopping_actual(engine, protocol) == 2
    with session_scope(engine) as session:
        first = session.exec(select(Case).where(Case.reference == "REC-2026-000000")).one()
        taken(session, first)
        first.state = closed  # closed with its dates left as they were: no longer open
        session.add(first)
        changed(session, first)
    assert stopping_counted(engine, protocol) == stopping_actual(engine, protocol) == 1
