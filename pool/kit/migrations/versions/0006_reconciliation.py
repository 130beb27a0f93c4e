"""reconciliation reports; how often reconciliation re-enqueued a delivery; window indexes

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reconciliation_report",
        sa.Column("id", Id, nullable=False),
        sa.Column("started_at", Moment, nullable=False),
        sa.Column("finished_at", Moment, nullable=False),
        sa.Column("since", Moment, nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_reconciliation_report"),
    )
    op.create_index("ix_reconciliation_report_finished", "reconciliation_report", ["finished_at"])
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(
            sa.Column("requeues", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    op.create_index("ix_deposit_detected_at", "deposit", ["detected_at"])
    op.create_index("ix_event_created_at", "event", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_event_created_at", table_name="event")
    op.drop_index("ix_deposit_detected_at", table_name="deposit")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("requeues")
    op.drop_index("ix_reconciliation_report_finished", table_name="reconciliation_report")
    op.drop_table("reconciliation_report")
