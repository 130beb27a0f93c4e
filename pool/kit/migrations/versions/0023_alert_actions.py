"""alert actions: acknowledge an episode, silence a subject

Adds to `alert` who acknowledged the episode and when, and until when (and by whom) its
subject is silenced, with a partial index over the silenced rows (docs/design.md, Alerts).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)
SILENCED = sa.text("silenced_until IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("acknowledged_at", Moment, nullable=True))
        batch.add_column(sa.Column("acknowledged_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("silenced_until", Moment, nullable=True))
        batch.add_column(sa.Column("silenced_by", sa.String(64), nullable=True))
    op.create_index(
        "ix_alert_silenced",
        "alert",
        ["subject", "silenced_until"],
        postgresql_where=SILENCED,
        sqlite_where=SILENCED,
    )


def downgrade() -> None:
    op.drop_index("ix_alert_silenced", table_name="alert")
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("silenced_by")
        batch.drop_column("silenced_until")
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
