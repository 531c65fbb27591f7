"""The metrics' per-case facts and aggregates, kept in the transactions that move the cases.

Each case has one `case_facts` row (what facts.case_facts() derives from its audit trail).
What a row contributes to the aggregates (`metric_counts`, `metric_members`) is a pure
function of it (facts.contributions); when a case moves, its row is advanced and the
difference between its contributions before and after is added to the aggregates just
before COMMIT (services/review/projection.py writes it), so the aggregates always equal
the sum over the cases (docs/metrics.md).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlmodel import Session, col, select

from services.review.domain.calendar import working_days_between
from services.review.domain.protocol import Protocol
from services.review.domain.statistics import WorkingDays
from services.review.metrics.facts import (
    STAGES,
    TOTAL_CALENDAR,
    CountKey,
    Definition,
    MemberKey,
    aware,
    case_facts,
    contributions,
    fact_row,
    group_values,
)
from services.review.store import AuditRecord, Breach, Case, CaseFact, MetricCount, MetricMember

COUNT_KEYS = ("grouping", "grain", "day", "value", "measure", "days")
MEMBER_KEYS = ("grouping", "value", "state", "since")
CHUNK = 1000
Contribution = tuple[Counter[CountKey], Counter[MemberKey]]


def _advance(fact: CaseFact, protocol: Protocol, on: date, to_state: str) -> None:
    """One more state change, as case_facts() would count it with the whole trail."""
    if fact.last_state is not None and fact.last_on is not None:
        entered = fact.last_state
        side = protocol.calendar_side(entered)
        if entered in STAGES and side is not None:
            stage_days = dict(fact.stage_days)
            stage_days[entered] = stage_days.get(entered, 0) + working_days_between(
                side, fact.last_on, on
            )
            fact.stage_days = stage_days
    else:
        fact.first_on = on
    fact.last_state, fact.last_on = to_state, on
    if protocol.is_terminal(to_state):
        assert fact.first_on is not None
        fact.outcome, fact.decided_on = to_state, on
        fact.total_days = working_days_between(TOTAL_CALENDAR, fact.first_on, on)
    else:
        fact.outcome, fact.decided_on, fact.total_days = None, None, None


def _case_groups(case: Case) -> dict[str, list[str]]:
    return group_values(case.application or {}, case.list_number, case.sent_to_cn_at is not None)


def _rebuild(session: Session, protocol: Protocol, case: Case) -> CaseFact:
    """A case with history but no facts row yet (written behind the service's back)."""
    session.flush()
    moves = [
        (at, f, t)
        for at, f, t in session.execute(
            sa_select(col(AuditRecord.at), col(AuditRecord.from_state), col(AuditRecord.to_state))
            .where(
                col(AuditRecord.case_id) == case.id,
                col(AuditRecord.from_state) != col(AuditRecord.to_state),
            )
            .order_by(col(AuditRecord.seq))
        ).all()
    ]
    breaches = session.execute(
        sa_select(col(Breach.recorded_at), col(Breach.state), col(Breach.limit_name)).where(
            col(Breach.case_id) == case.id
        )
    ).all()
    facts = case_facts(
        case.id,
        case.state,
        case.opened_at,
        _case_groups(case),
        moves,
        protocol,
        WorkingDays(),
        date.today(),
    )
    return fact_row(facts, moves, [(at, st, lim) for at, st, lim in breaches])


class MetricsProjection:
    """One transaction's changes to the metrics: the facts rows it touched and the net
    change of the aggregates, written by `write` just before COMMIT."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.facts: dict[str, CaseFact] = {}
        self.counts: Counter[CountKey] = Counter()
        self.members: Counter[MemberKey] = Counter()

    def _fact(self, case_id: str) -> CaseFact | None:
        fact = self.facts.get(case_id)
        if fact is None:
            # No flush for this read: the case's changes go out once, at commit.
            with self.session.no_autoflush:
                fact = self.session.get(CaseFact, case_id)
            if fact is not None:
                self.facts[case_id] = fact
        return fact

    def prefetch(self, case_ids: Sequence[str]) -> None:
        """Read the facts of many cases in a few queries (a priority list moves hundreds)."""
        wanted = [i for i in case_ids if i not in self.facts]
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            for fact in self.session.exec(select(CaseFact).where(col(CaseFact.case_id).in_(chunk))):
                self.facts[fact.case_id] = fact

    def _note(self, before: Contribution, after: Contribution) -> None:
        self.counts.update(after[0])
        self.counts.subtract(before[0])
        self.members.update(after[1])
        self.members.subtract(before[1])

    def case_changed(self, protocol: Protocol, case: Case, entry: AuditRecord | None) -> None:
        """A case changed (`entry` is the audit entry just written for it)."""
        definition = Definition.of(protocol)
        # A case's first audit entry is its opening: it has no facts row yet, none to look for.
        fact = self._fact(case.id) if case.audit_seq > 1 else None
        before: Contribution = (Counter(), Counter())
        if fact is None:
            if case.audit_seq > 1:
                fact = _rebuild(self.session, protocol, case)
                entry = None  # the rebuilt row already holds it
            else:
                fact = CaseFact(
                    case_id=case.id, state=case.state, opened_on=aware(case.opened_at).date()
                )
            self.facts[case.id] = fact
        else:
            before = contributions(fact, definition)
        if (
            entry is not None
            and entry.from_state is not None
            and entry.to_state is not None
            and entry.from_state != entry.to_state
        ):
            _advance(fact, protocol, aware(entry.at).date(), entry.to_state)
        fact.state = case.state
        groups = _case_groups(case)
        if groups != fact.groups:
            fact.groups = groups
        self._note(before, contributions(fact, definition))
        self.session.add(fact)

    def breach_recorded(self, protocol: Protocol, case: Case, breach: Breach) -> None:
        """A deadline breach of a case was recorded."""
        definition = Definition.of(protocol)
        fact = self._fact(case.id)
        if fact is None:
            self.case_changed(protocol, case, None)
            fact = self._fact(case.id)
            assert fact is not None
        before = contributions(fact, definition)
        recorded = [aware(breach.recorded_at).date().isoformat(), breach.state, breach.limit_name]
        fact.breaches = sorted([*fact.breaches, recorded])
        self._note(before, contributions(fact, definition))
        self.session.add(fact)

    def write(self, conn: Connection) -> None:
        apply_deltas(conn, self.counts, self.members)
        self.counts, self.members = Counter(), Counter()
        self.facts = {}


_PG_TYPES = {"day": "date", "since": "date", "days": "integer", "cases": "integer"}


def _upsert(conn: Connection, table: Any, keys: Sequence[str], deltas: Mapping[Any, int]) -> None:
    items = [(key, n) for key, n in sorted(deltas.items()) if n]
    if not items:
        return
    if conn.dialect.name == "postgresql":
        # One statement whatever the number of rows (a decision changes about 80): the
        # columns travel as arrays; the statement text, and so its plan, never changes.
        columns = [*keys, "cases"]
        arrays = {c: [key[i] for key, _ in items] for i, c in enumerate(keys)}
        arrays["cases"] = [n for _, n in items]
        unnest = ", ".join(f"CAST(:{c} AS {_PG_TYPES.get(c, 'text')}[])" for c in columns)
        conn.execute(
            text(
                f"INSERT INTO {table.name} ({', '.join(columns)}) "
                f"SELECT * FROM unnest({unnest}) "
                f"ON CONFLICT ({', '.join(keys)}) "
                f"DO UPDATE SET cases = {table.name}.cases + excluded.cases"
            ),
            arrays,
        )
        return
    statement = sqlite_insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=list(keys), set_={"cases": table.c.cases + statement.excluded.cases}
    )
    conn.execute(statement, [{**dict(zip(keys, key, strict=True)), "cases": n} for key, n in items])


def apply_deltas(
    conn: Connection, counts: Mapping[CountKey, int], members: Mapping[MemberKey, int]
) -> None:
    """Add to the aggregates; rows in one order, so two transactions never wait in a cycle."""
    _upsert(conn, MetricCount.__table__, COUNT_KEYS, counts)  # type: ignore[attr-defined]
    _upsert(conn, MetricMember.__table__, MEMBER_KEYS, members)  # type: ignore[attr-defined]


# --- backfill: facts and aggregates from the cases and the audit trail ------------------------


def _chunks_of_facts(conn: Connection, protocol: Protocol) -> Iterator[list[CaseFact]]:
    days, today = WorkingDays(), date.today()
    cases, audit, breaches = Case.__table__, AuditRecord.__table__, Breach.__table__  # type: ignore[attr-defined]
    last = ""
    while True:
        rows = conn.execute(
            sa_select(
                cases.c.id,
                cases.c.state,
                cases.c.opened_at,
                cases.c.application,
                cases.c.list_number,
                cases.c.sent_to_cn_at,
            )
            .where(cases.c.id > last)
            .order_by(cases.c.id)
            .limit(CHUNK)
        ).all()
        if not rows:
            return
        ids = [r.id for r in rows]
        last = ids[-1]
        moves: dict[str, list[tuple[datetime, str | None, str | None]]] = defaultdict(list)
        for case_id, at, from_state, to_state in conn.execute(
            sa_select(audit.c.case_id, audit.c.at, audit.c.from_state, audit.c.to_state)
            .where(audit.c.case_id.in_(ids), audit.c.from_state != audit.c.to_state)
            .order_by(audit.c.case_id, audit.c.seq)
        ):
            moves[case_id].append((at, from_state, to_state))
        breached: dict[str, list[tuple[datetime, str, str]]] = defaultdict(list)
        for case_id, at, state, limit in conn.execute(
            sa_select(
                breaches.c.case_id, breaches.c.recorded_at, breaches.c.state, breaches.c.limit_name
            ).where(breaches.c.case_id.in_(ids))
        ):
            breached[case_id].append((at, state, limit))
        facts = [
            case_facts(
                r.id,
                r.state,
                r.opened_at,
                group_values(r.application or {}, r.list_number, r.sent_to_cn_at is not None),
                moves.get(r.id, []),
                protocol,
                days,
                today,
            )
            for r in rows
        ]
        yield [fact_row(f, moves.get(f.id, []), breached.get(f.id, [])) for f in facts]


def backfill(conn: Connection, protocol: Protocol | None = None) -> int:
    """Rebuild case_facts, metric_counts and metric_members from the cases and their audit
    trail with the definition's own code (case_facts()), a thousand cases at a time.
    Can be run at any time (it empties the tables first); returns the number of cases."""
    protocol = protocol or Protocol.load()
    definition = Definition.of(protocol)
    facts_table = CaseFact.__table__  # type: ignore[attr-defined]
    for table in (facts_table, MetricCount.__table__, MetricMember.__table__):  # type: ignore[attr-defined]
        conn.execute(table.delete())
    counts: Counter[CountKey] = Counter()
    members: Counter[MemberKey] = Counter()
    done = 0
    for chunk in _chunks_of_facts(conn, protocol):
        conn.execute(
            facts_table.insert(),
            [{c.name: getattr(fact, c.name) for c in facts_table.columns} for fact in chunk],
        )
        for fact in chunk:
            c, m = contributions(fact, definition)
            counts.update(c)
            members.update(m)
        done += len(chunk)
    apply_deltas(conn, counts, members)
    return done
