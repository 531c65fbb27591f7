"""Review's projections, kept in the transaction that changes the cases.

Two read models follow the cases: `case_counts` (the queue's totals per state, tier,
whether China has the case and whether its production stops before its expected decision:
the EU metrics' `stopping_before_decision`) and the metrics' facts and aggregates
(services/review/metrics/projection.py). Casework tells them explicitly what changed:
`note_taken` when it claims a case's version (before it changes anything), `note_change`
from `Casework._apply`, the one place a case changes, and `note_breach` when it records a
breach. The net change of the whole transaction is written just before its COMMIT, rows
in one order so that two transactions never wait for each other in a cycle; a rollback
forgets it. The hook is registered on the session that changed a case, not on every
session of the process.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session

from services.review.domain.priority import stops_before_decision
from services.review.domain.protocol import Protocol
from services.review.metrics.projection import MetricsProjection
from services.review.store import AuditRecord, Breach, Case, CaseCount

CountedKey = tuple[str, str, bool, bool]  # state, tier, sent to China, stops before decision
_PROJECTIONS = "review.projections"


def counted_key(case: Case) -> CountedKey:
    stops = stops_before_decision(case.production_stop_date, case.expected_decision_date)
    return (str(case.state), str(case.tier), case.sent_to_cn_at is not None, stops)


class CaseCounts:
    """One transaction's net change of case_counts."""

    def __init__(self) -> None:
        # Each touched case's key as case_counts has it (None: a new case, not counted yet).
        self.counted: dict[str, CountedKey | None] = {}
        self.now: dict[str, CountedKey] = {}

    def taken(self, case: Case, is_new: bool = False) -> None:
        """Remember how a case is counted before this transaction changes it."""
        if case.id not in self.counted:
            self.counted[case.id] = None if is_new else counted_key(case)

    def changed(self, case: Case) -> None:
        self.now[case.id] = counted_key(case)

    def deltas(self) -> Counter[CountedKey]:
        deltas: Counter[CountedKey] = Counter()
        for case_id, key in self.now.items():
            before = self.counted.get(case_id)
            if before != key:
                deltas[key] += 1
                if before is not None:
                    deltas[before] -= 1
        return deltas

    def write(self, conn: Connection) -> None:
        upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        table = CaseCount.__table__  # type: ignore[attr-defined]
        for (state, tier, sent, stops), delta in sorted(self.deltas().items()):
            if delta:
                conn.execute(
                    upsert(table)
                    .values(
                        state=state,
                        tier=tier,
                        sent_to_cn=sent,
                        stops_before_decision=stops,
                        cases=delta,
                    )
                    .on_conflict_do_update(
                        index_elements=["state", "tier", "sent_to_cn", "stops_before_decision"],
                        set_={"cases": table.c.cases + delta},
                    )
                )
        # What is written is now what case_counts has.
        self.counted.update(self.now)
        self.now = {}


class Projections:
    """What one transaction changes in review's projections."""

    def __init__(self, session: Session) -> None:
        self.counts = CaseCounts()
        self.metrics = MetricsProjection(session)

    def write(self, session: OrmSession) -> None:
        # Flush first: the cases' own rows go out before the projections that count them.
        session.flush()
        conn = session.connection()
        self.counts.write(conn)
        self.metrics.write(conn)


def _write(session: OrmSession) -> None:
    projections: Projections | None = session.info.pop(_PROJECTIONS, None)
    if projections is not None:
        projections.write(session)


def _forget(session: OrmSession) -> None:
    session.info.pop(_PROJECTIONS, None)


def projections(session: Session) -> Projections:
    """This transaction's projections; the first call hooks its commit and rollback."""
    found: Projections | None = session.info.get(_PROJECTIONS)
    if found is None:
        found = session.info[_PROJECTIONS] = Projections(session)
        if not event.contains(session, "before_commit", _write):
            event.listen(session, "before_commit", _write)
            event.listen(session, "after_rollback", _forget)
    return found


def note_taken(session: Session, cases: Sequence[Case]) -> None:
    """Casework claimed these cases' versions: they are about to change."""
    counts = projections(session).counts
    for case in cases:
        counts.taken(case)


def note_change(session: Session, protocol: Protocol, case: Case, entry: AuditRecord) -> None:
    """Casework._apply changed a case and wrote `entry` to its audit trail."""
    found = projections(session)
    found.counts.taken(case, is_new=case.audit_seq <= 1)
    found.counts.changed(case)
    found.metrics.case_changed(protocol, case, entry)


def note_breach(session: Session, protocol: Protocol, case: Case, breach: Breach) -> None:
    projections(session).metrics.breach_recorded(protocol, case, breach)


def prefetch_facts(session: Session, case_ids: Sequence[str]) -> None:
    projections(session).metrics.prefetch(case_ids)
