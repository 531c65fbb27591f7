"""directory: people, invitations, sessions and their audit; credentials expire and are named

Personal accounts (issue 20, shared/accounts/models.py) live in the credential directory's
schema beside the credentials, so that a session is checked with the same one query every
service already makes. Officials' tokens get `expires_at`, company API keys a `name`.

Revision ID: 3f6c1a2b9d40
Revises: 8044d414fccb
Create Date: 2026-12-01 10:40:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "3f6c1a2b9d40"
down_revision = "8044d414fccb"
branch_labels = None
depends_on = None


def columns(spec: str) -> list[sa.Column]:
    """Columns from `name:length` (text), `name:time` (UTC timestamp); `?` allows NULL."""
    made = []
    for item in spec.split():
        name, kind = item.rstrip("?").split(":")
        of_type = (
            sqlmodel.sql.sqltypes.UTCDateTime()
            if kind == "time"
            else sqlmodel.sql.sqltypes.AutoString(length=int(kind))
        )
        made.append(sa.Column(name, of_type, nullable=item.endswith("?")))
    return made


TABLES = {
    "people": "id:36 kind:10 email:254 name:200 side:2? company_id:36? role:20"
    " password_hash:200 totp_secret:64? created_at:time disabled_at:time?",
    "invitations": "id:36 purpose:10 token_hash:64 email:254 name:200 kind:10 side:2?"
    " company_id:36? role:20 invited_by:100 person_id:36? created_at:time expires_at:time"
    " used_at:time?",
    "account_sessions": "id:36 person_id:36 created_at:time last_seen_at:time ended_at:time?"
    " address:64?",
    "people_events": "id:36 at:time action:40 person_id:36? email:254? actor:100?"
    " address:64? detail:500?",
}
UNIQUE = {"people": "email", "invitations": "token_hash"}
INDEXED = {
    "people": ("company_id",),
    "account_sessions": ("person_id",),
    "people_events": ("at", "person_id"),
}


def upgrade() -> None:
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        for column in columns("expires_at:time? name:100?"):
            batch_op.add_column(column)
    for table, spec in TABLES.items():
        constraints: list[sa.Constraint] = [sa.PrimaryKeyConstraint("id")]
        if table in UNIQUE:
            constraints.append(sa.UniqueConstraint(UNIQUE[table]))
        op.create_table(table, *columns(spec), *constraints)
        for column in INDEXED.get(table, ()):
            op.create_index(f"ix_{table}_{column}", table, [column])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("credentials", schema=None) as batch_op:
        batch_op.drop_column("name")
        batch_op.drop_column("expires_at")
