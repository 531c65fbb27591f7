"""review: what each side searches a case by, with a trigram index on PostgreSQL

Revision ID: 7a2c5a8ebea1
Revises: f4a5b6c7d8e9
Create Date: 2026-12-01 12:30:00.000000

Two columns of `cases` hold the text each side may find a case by (domain/search.py): the
reference, the MOFCOM application number, the exporter's name and USCC, the company's name
(the EU's only) and the HS codes, one a line, lower-cased. Existing cases are filled here with
a frozen copy of that rule as it stands at this revision. On PostgreSQL each column gets a
GIN index over pg_trgm's trigrams, which serves `LIKE '%term%'`; the extension is created
(into `public`) unless the database has it already, in whatever schema.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from shared.db import advisory_key

revision: str = "7a2c5a8ebea1"
down_revision: str | None = "f4a5b6c7d8e9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHUNK = 1000
_cases = sa.table(
    "cases",
    sa.column("id", sa.String),
    sa.column("reference", sa.String),
    sa.column("company_name", sa.String),
    sa.column("application", sa.JSON),
    sa.column("search_eu", sa.Text),
    sa.column("search_cn", sa.Text),
)


def _text(reference: str, company: str | None, application: Mapping[str, Any]) -> str:
    if not isinstance(application, Mapping):  # a row whose application is no object
        application = {}
    exporter = application.get("exporter") or {}
    goods = [g for g in application.get("goods") or [] if isinstance(g, Mapping)]
    values = [
        reference,
        application.get("mofcom_application_number"),
        exporter.get("name"),
        exporter.get("uscc"),
        company,
        *(g.get("hs_code") for g in goods),
    ]
    return "\n".join(v.lower() for v in values if isinstance(v, str) and v)


def _backfill(conn: sa.Connection) -> None:
    last = ""
    while True:
        rows = conn.execute(
            sa.select(_cases.c.id, _cases.c.reference, _cases.c.company_name, _cases.c.application)
            .where(_cases.c.id > last)
            .order_by(_cases.c.id)
            .limit(_CHUNK)
        ).all()
        if not rows:
            return
        conn.execute(
            _cases.update()
            .where(_cases.c.id == sa.bindparam("case_id"))
            .values(search_eu=sa.bindparam("eu"), search_cn=sa.bindparam("cn")),
            [
                {
                    "case_id": r.id,
                    "eu": _text(r.reference, r.company_name, r.application or {}),
                    "cn": _text(r.reference, None, r.application or {}),
                }
                for r in rows
            ],
        )
        last = rows[-1].id


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("search_eu", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("search_cn", sa.Text(), nullable=False, server_default=""))
    conn = op.get_bind()
    _backfill(conn)
    if conn.dialect.name != "postgresql":
        return  # SQLite searches with a plain LIKE over the same columns
    # One creator at a time: schemas of one database migrate concurrently (their own locks).
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key("pg_trgm")})
    conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
    schema = conn.execute(
        sa.text(
            "SELECT n.nspname FROM pg_extension AS e "
            "JOIN pg_namespace AS n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'"
        )
    ).scalar_one()
    for side in ("eu", "cn"):
        conn.execute(
            sa.text(
                f"CREATE INDEX ix_cases_search_{side} ON cases "
                f'USING gin (search_{side} "{schema}".gin_trgm_ops)'
            )
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_cases_search_cn", table_name="cases")
        op.drop_index("ix_cases_search_eu", table_name="cases")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("search_cn")
        batch_op.drop_column("search_eu")
