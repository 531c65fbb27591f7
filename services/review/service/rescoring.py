"""Live priority: open cases scored again each day and when the rules change; adopting rules.

Urgency ages: "production stops in 43 days" is true on the day it is scored only. Each open
case is scored again once a day under the rule set in force, and at once when a supervisor
adopts a new one. A case whose tier changes moves through the protocol's `rescore` action
(`CaseworkCore._apply`: audited with its reason, deadlines refreshed, intake told); a tier a
supervisor set by hand stays, its score and explanations still follow the day.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.review.domain.errors import CaseConflict, StaleCase
from services.review.domain.priority import (
    PriorityResult,
    RuleSet,
    SimulationCase,
    score,
    simulate,
)
from services.review.domain.protocol import Protocol
from services.review.service.core import CaseworkCore
from services.review.service.who import SYSTEM, SYSTEM_WHO, Who
from services.review.store import Case, PriorityRuleSet, adopted_rule_set
from shared.db import session_scope
from shared.i18n import N_

__all__ = ["RESCORE_CHUNK", "PriorityRescoring", "adopt_and_rescore", "rescore_open_cases"]

# Cases one transaction of the re-scoring claims and scores.
RESCORE_CHUNK = 500
# Rounds in a row that may meet an official's concurrent action before the pass stops
# (the next pass takes up the rest).
STALE_ROUNDS = 3
_REASON_LENGTH = 2000


class PriorityRescoring(CaseworkCore):
    def load_rules(self, session: Session) -> RuleSet:
        """The rule set in force: the one adopted last, else the packaged one."""
        adopted = adopted_rule_set(session)
        if adopted is not None and adopted.version != self.rules.version:
            self.rules = RuleSet.from_dict(adopted.rules)
        return self.rules

    def adopt_rules(self, session: Session, draft: RuleSet, who: Who, reason: str) -> None:
        """Put a (simulated) draft in force under its own version; re-scoring follows."""
        self.require(
            who, "adopt_priority_rules", N_("Only an EU supervisor may adopt priority rules.")
        )
        packaged = RuleSet.default()
        # A version names one rule set for good: the packaged one may be adopted again (to
        # go back to it), but under its own version only as it is.
        reused = session.get(PriorityRuleSet, draft.version) is not None or (
            draft.version == packaged.version and draft.as_dict() != packaged.as_dict()
        )
        if reused:
            raise CaseConflict(
                N_("Rule set version %(version)s exists already; give the draft a new version."),
                version=draft.version,
            )
        session.add(
            PriorityRuleSet(
                version=draft.version,
                rules=draft.as_dict(),
                reason=reason,
                adopted_by=who.id,
                adopted_by_name=who.name,
                adopted_at=self.now(),
            )
        )

    def simulate_rules(self, session: Session, draft: RuleSet) -> dict[str, Any]:
        """The open cases whose tier `draft` would change, today; nothing is changed. Cases
        whose tier was set by hand keep it, so they are left out."""
        terminal = [s for s in self.protocol.states if self.protocol.is_terminal(s)]
        open_cases = session.exec(
            select(Case).where(
                col(Case.state).not_in(terminal), col(Case.tier_overridden).is_(False)
            )
        ).all()
        changes = simulate(
            [SimulationCase(c.id, c.application, c.tier, c.score) for c in open_cases],
            draft,
            self.today(),
        )
        references = {c.id: c.reference for c in open_cases}
        return {
            "rules_version": draft.version,
            "cases_scored": len(open_cases),
            "changes": [{**ch.as_dict(), "reference": references[ch.case_id]} for ch in changes],
        }

    def rescore(self, session: Session, today: date | None = None) -> int:
        """Score again up to RESCORE_CHUNK open cases not scored today under the rules in force.

        Returns how many it claimed: fewer than RESCORE_CHUNK means none is left for today.
        The claim sets `scored_on` first, in one UPDATE: a replica running the same pass at the
        same time waits on those rows, then finds them scored and takes others.
        """
        today = today or self.today()
        rules = self.rules
        due = _due(self.protocol, today, rules.version)
        ids = session.exec(
            select(Case.id).where(due).order_by(col(Case.id)).limit(RESCORE_CHUNK)
        ).all()
        if not ids:
            return 0
        claimed = (
            session.execute(
                update(Case)
                .where(col(Case.id).in_(ids), due)
                .values(scored_on=today)
                .returning(col(Case.id))
                .execution_options(synchronize_session=False)
            )
            .scalars()
            .all()
        )
        cases = session.exec(select(Case).where(col(Case.id).in_(claimed))).all()
        for case in sorted(cases, key=lambda c: c.id):
            self._rescore_case(session, case, rules, today)
        return len(ids)

    def _rescore_case(self, session: Session, case: Case, rules: RuleSet, today: date) -> None:
        before_tier, before_score, before_version = case.tier, case.score, case.rules_version
        before_fired = {f["rule_id"] for f in case.fired_rules}
        result = score(case.application, rules, today)
        case.score, case.fired_rules = result.score, [f.as_dict() for f in result.fired]
        case.flags, case.rules_version = list(result.flags), result.rules_version
        case.scored_on = today
        if result.tier == case.tier or case.tier_overridden:
            session.add(case)
            return
        reason = rescore_reason(before_score, before_fired, before_version, result, today)
        transition = self.protocol.decide(
            "rescore",
            SYSTEM,
            case.state,
            tier=case.tier,
            params={"tier": result.tier, "reason": reason},
        )
        case.tier = result.tier
        payload = {
            **transition.payload(),
            "from_tier": before_tier,
            "from_score": before_score,
            "score": result.score,
            "rules_version": result.rules_version,
        }
        self._apply(session, case, transition, SYSTEM_WHO, payload)


def _due(protocol: Protocol, today: date, version: str) -> ColumnElement[bool]:
    """Open cases not scored today, or scored under other rules than those in force."""
    terminal = [state for state in protocol.states if protocol.is_terminal(state)]
    return and_(
        col(Case.state).not_in(terminal),
        or_(
            col(Case.scored_on).is_(None),
            col(Case.scored_on) < today,
            col(Case.rules_version) != version,
        ),
    )


def rescore_reason(
    before_score: int,
    before_fired: set[str],
    before_version: str,
    result: PriorityResult,
    today: date,
) -> str:
    """Why the tier moved, in words: the day, the rules, the score and the rules that changed."""
    rules = (
        f"rules {result.rules_version}"
        if before_version == result.rules_version
        else f"rules {result.rules_version} (was {before_version})"
    )
    parts = [f"Scored again on {today.isoformat()} under {rules}: {before_score} → {result.score}."]
    fired: Mapping[str, str] = {f.rule_id: f.explanation for f in result.fired}
    started = [f"{rule} ({why})" for rule, why in fired.items() if rule not in before_fired]
    stopped = sorted(before_fired - set(fired))
    if started:
        parts.append("Now: " + "; ".join(started) + ".")
    if stopped:
        parts.append("No longer: " + ", ".join(stopped) + ".")
    return " ".join(parts)[:_REASON_LENGTH]


def rescore_open_cases(
    engine: Engine, casework: PriorityRescoring, today: date | None = None
) -> int:
    """One pass over the open cases due for scoring, a chunk a transaction; how many scored."""
    with session_scope(engine) as session:
        casework.load_rules(session)
    total, stale = 0, 0
    while True:
        try:
            with session_scope(engine) as session:
                claimed = casework.rescore(session, today)
        except StaleCase:
            # An official acted on one of the chunk's cases meanwhile: nothing of the chunk
            # was kept; read it again.
            stale += 1
            if stale >= STALE_ROUNDS:
                return total
            continue
        total += claimed
        if claimed < RESCORE_CHUNK:
            return total


def adopt_and_rescore(
    engine: Engine, casework: PriorityRescoring, draft: RuleSet, who: Who, reason: str
) -> int:
    """Adopt `draft` (committed), then score every open case again under it at once; how many
    were scored."""
    with session_scope(engine) as session:
        casework.adopt_rules(session, draft, who, reason)
    return rescore_open_cases(engine, casework)
