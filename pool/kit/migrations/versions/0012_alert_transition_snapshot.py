"""alert transitions keep the alert's severity, value and details as the transition left them
(an open episode now escalates and de-escalates)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alert_transition") as batch:
        batch.add_column(sa.Column("severity", sa.String(16), nullable=True))
        batch.add_column(sa.Column("value", sa.Text(), nullable=True))
        batch.add_column(sa.Column("details", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alert_transition") as batch:
        batch.drop_column("details")
        batch.drop_column("value")
        batch.drop_column("severity")
