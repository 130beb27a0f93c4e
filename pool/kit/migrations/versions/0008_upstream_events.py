"""upstream mode: PayIn's webhooks as received

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "upstream_event",
        sa.Column("id", Id, nullable=False),
        sa.Column("event_id", sa.String(128), nullable=True),
        sa.Column("type", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("received_at", Moment, nullable=False),
        sa.Column("checked_at", Moment, nullable=True),
        sa.Column("deposit_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_upstream_event"),
    )
    not_rejected = sa.text("status <> 'rejected'")
    op.create_index(
        "uq_upstream_event_accepted",
        "upstream_event",
        ["event_id"],
        unique=True,
        postgresql_where=not_rejected,
        sqlite_where=not_rejected,
    )
    op.create_index("ix_upstream_event_status", "upstream_event", ["status", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_upstream_event_status", table_name="upstream_event")
    op.drop_index("uq_upstream_event_accepted", table_name="upstream_event")
    op.drop_table("upstream_event")
