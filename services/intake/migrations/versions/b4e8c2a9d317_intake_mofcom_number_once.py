"""intake: a company's MOFCOM application number registered once while it is held.

Revision b4e8c2a9d317, after d1e2f3a4b5c6. Applications that ended without a decision on
their merits release their number. Numbers registered more than once before this revision:
the earliest application keeps the number, the later ones keep their cases but release it,
so the unique index can be built on data that broke the rule.
"""

import sqlalchemy as sa
from alembic import op

from services.intake.domain import RELEASING_STATUSES

revision = "b4e8c2a9d317"
down_revision = "d1e2f3a4b5c6"
INDEX = "ux_applications_company_live_mofcom_number"


def upgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("mofcom_released", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    applications = sa.table(
        "applications",
        sa.column("number", sa.Integer()),
        sa.column("company_id", sa.String()),
        sa.column("mofcom_application_number", sa.String()),
        sa.column("status", sa.String()),
        sa.column("mofcom_released", sa.Boolean()),
    )
    op.execute(
        applications.update()
        .where(applications.c.status.in_(sorted(RELEASING_STATUSES)))
        .values(mofcom_released=True)
    )
    earlier = applications.alias("earlier")
    op.execute(
        applications.update()
        .where(
            applications.c.mofcom_released.is_(False),
            sa.exists().where(
                earlier.c.company_id == applications.c.company_id,
                earlier.c.mofcom_application_number == applications.c.mofcom_application_number,
                earlier.c.mofcom_released.is_(False),
                earlier.c.number < applications.c.number,
            ),
        )
        .values(mofcom_released=True)
    )
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.create_index(
            INDEX,
            ["company_id", "mofcom_application_number"],
            unique=True,
            postgresql_where=sa.text("NOT mofcom_released"),
            sqlite_where=sa.text("NOT mofcom_released"),
        )


def downgrade() -> None:
    with op.batch_alter_table("applications", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.drop_column("mofcom_released")
