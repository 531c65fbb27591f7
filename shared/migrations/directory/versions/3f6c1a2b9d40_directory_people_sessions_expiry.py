"""directory: people, invitations, sessions and their audit; credentials expire and are named

Revision ID: 3f6c1a2b9d40
Revises: 8044d414fccb
Create Date: 2026-12-01 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "3f6c1a2b9d40"
down_revision: str | None = "8044d414fccb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString
Time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", Time(), nullable=True))
        batch_op.add_column(sa.Column("name", String(length=100), nullable=True))
    op.create_table(
        "people",
        sa.Column("id", String(length=36), nullable=False),
        sa.Column("kind", String(length=10), nullable=False),
        sa.Column("email", String(length=254), nullable=False),
        sa.Column("name", String(length=200), nullable=False),
        sa.Column("side", String(length=2), nullable=True),
        sa.Column("company_id", String(length=36), nullable=True),
        sa.Column("role", String(length=20), nullable=False),
        sa.Column("password_hash", String(length=200), nullable=False),
        sa.Column("totp_secret", String(length=64), nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("disabled_at", Time(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_index("ix_people_company_id", "people", ["company_id"])
    op.create_table(
        "invitations",
        sa.Column("id", String(length=36), nullable=False),
        sa.Column("purpose", String(length=10), nullable=False),
        sa.Column("token_hash", String(length=64), nullable=False),
        sa.Column("email", String(length=254), nullable=False),
        sa.Column("name", String(length=200), nullable=False),
        sa.Column("kind", String(length=10), nullable=False),
        sa.Column("side", String(length=2), nullable=True),
        sa.Column("company_id", String(length=36), nullable=True),
        sa.Column("role", String(length=20), nullable=False),
        sa.Column("invited_by", String(length=100), nullable=False),
        sa.Column("person_id", String(length=36), nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("expires_at", Time(), nullable=False),
        sa.Column("used_at", Time(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "account_sessions",
        sa.Column("id", String(length=36), nullable=False),
        sa.Column("person_id", String(length=36), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("last_seen_at", Time(), nullable=False),
        sa.Column("ended_at", Time(), nullable=True),
        sa.Column("address", String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_account_sessions_person_id", "account_sessions", ["person_id"])
    op.create_table(
        "people_events",
        sa.Column("id", String(length=36), nullable=False),
        sa.Column("at", Time(), nullable=False),
        sa.Column("action", String(length=40), nullable=False),
        sa.Column("person_id", String(length=36), nullable=True),
        sa.Column("email", String(length=254), nullable=True),
        sa.Column("actor", String(length=100), nullable=True),
        sa.Column("address", String(length=64), nullable=True),
        sa.Column("detail", String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_people_events_at", "people_events", ["at"])
    op.create_index("ix_people_events_person_id", "people_events", ["person_id"])


def downgrade() -> None:
    op.drop_table("people_events")
    op.drop_table("account_sessions")
    op.drop_table("invitations")
    op.drop_table("people")
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_column("name")
        batch_op.drop_column("expires_at")
