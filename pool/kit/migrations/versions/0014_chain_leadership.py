"""chain leadership: the epoch that fences a chain's watcher (invariant 15, docs/design.md)

Each time a watcher takes a chain's leadership the chain's epoch goes up by one; every
transaction that writes the chain's state commits only while the epoch is still its own.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_leader",
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_leader")),
    )


def downgrade() -> None:
    op.drop_table("chain_leader")
