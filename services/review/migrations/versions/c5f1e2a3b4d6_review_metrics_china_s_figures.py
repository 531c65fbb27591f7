"""review metrics: China's figures (cn:* groupings in metric_counts and metric_members)

China's summary covers only the cases sent to China and only what China may see of them
(red-team finding F5, docs/metrics.md): the aggregates gain rows under the groupings
`cn:*` and `cn:<grouping>`, kept by the service from now on. This migration adds them for
the cases already in the database, from their `case_facts` rows, with the rule frozen as
it stands at this revision. No table or column changes.

Revision ID: c5f1e2a3b4d6
Revises: 9a7ce815e083
Create Date: 2026-12-01 10:00:00.000000
"""

from collections import Counter
from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "c5f1e2a3b4d6"
down_revision: str | None = "9a7ce815e083"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_GROUPINGS = ("form", "element", "value_chain", "licence_type", "priority_list")
# What China may not see: the EU-internal states before sending and the EU's `decline`.
_HIDDEN = frozenset({"submitted", "eu_screening", "queued", "not_admitted"})
_TERMINAL = frozenset({"approved", "refused", "not_admitted", "withdrawn", "lapsed"})

# The columns this migration reads and writes, as they stand at this revision.
_facts = sa.table(
    "case_facts",
    *(sa.column(c, sa.String) for c in ("state", "outcome")),
    *(sa.column(c, sa.Date) for c in ("opened_on", "first_on", "decided_on")),
    sa.column("total_days", sa.Integer),
    *(sa.column(c, sa.JSON) for c in ("stage_days", "groups", "breaches")),
)
_counts, _members = (
    sa.table(name, *(sa.column(c, kind) for c, kind in columns.items()))
    for name, columns in (
        ("metric_counts", dict.fromkeys(("grouping", "grain", "value", "measure"), sa.String)
         | {"day": sa.Date, "days": sa.Integer, "cases": sa.Integer}),
        ("metric_members", dict.fromkeys(("grouping", "value", "state"), sa.String)
         | {"since": sa.Date, "cases": sa.Integer}),
    )
)  # fmt: skip


def _china_sees(fact: Any) -> list[tuple[date, str, int]]:
    """The dated measures of a case sent to China that China may see."""
    seen = [(fact.opened_on, "submitted", 0)]
    if fact.outcome is not None and fact.outcome not in _HIDDEN:
        seen.append((fact.decided_on, fact.outcome, fact.total_days or 0))
        seen += [
            (fact.decided_on, f"stage:{stage}", n)
            for stage, n in fact.stage_days.items()
            if stage not in _HIDDEN
        ]
    seen += [
        (date.fromisoformat(on), f"breach:{stage}:{limit}", 0)
        for on, stage, limit in fact.breaches
        if stage not in _HIDDEN
    ]
    return seen


def upgrade() -> None:
    conn = op.get_bind()
    counts: Counter[tuple[Any, ...]] = Counter()
    members: Counter[tuple[Any, ...]] = Counter()
    for fact in conn.execute(sa.select(_facts)):
        if fact.groups.get("priority_list") == ["not listed"]:
            continue  # never sent to China
        into = [("cn:*", "")] + [(f"cn:{g}", v) for g in _GROUPINGS for v in fact.groups[g]]
        for on, measure, days in _china_sees(fact):
            for grain, day in (("d", on), ("m", on.replace(day=1))):
                counts.update((g, grain, day, v, measure, days) for g, v in into)
        if fact.outcome is None and fact.state not in _TERMINAL:
            state, since = fact.state, fact.first_on or fact.opened_on
        else:
            state, since = "", date(2000, 1, 1)
        members.update((g, v, state, since) for g, v in into)
    keys = ("grouping", "grain", "day", "value", "measure", "days")
    rows = [dict(zip(keys, k, strict=True), cases=n) for k, n in counts.items()]
    if rows:
        conn.execute(_counts.insert(), rows)
    keys = ("grouping", "value", "state", "since")
    rows = [dict(zip(keys, k, strict=True), cases=n) for k, n in members.items()]
    if rows:
        conn.execute(_members.insert(), rows)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM metric_counts WHERE grouping LIKE 'cn:%'"))
    op.execute(sa.text("DELETE FROM metric_members WHERE grouping LIKE 'cn:%'"))
