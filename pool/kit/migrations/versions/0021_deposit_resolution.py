"""deposit resolution: an operator's decision on an unclaimed deposit

Adds `deposit.resolution` (attributed | refunded | ignored), `resolution_note`, `resolved_by`
and `resolved_at` (docs/design.md, Data model; docs/operations.md, Unattributed, late and
mismatched deposits). Nullable: every existing deposit is unresolved.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("deposit") as batch:
        batch.add_column(sa.Column("resolution", sa.String(16), nullable=True))
        batch.add_column(sa.Column("resolution_note", sa.String(1000), nullable=True))
        batch.add_column(sa.Column("resolved_by", sa.String(64), nullable=True))
        batch.add_column(sa.Column("resolved_at", Moment, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deposit") as batch:
        batch.drop_column("resolved_at")
        batch.drop_column("resolved_by")
        batch.drop_column("resolution_note")
        batch.drop_column("resolution")
