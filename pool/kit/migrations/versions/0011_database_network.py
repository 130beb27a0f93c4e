"""the network a database belongs to: one row, recorded by the first process of that network

A database upgraded from 0010 has no row yet; the first process to open it records its own
network, or refuses when the database's API keys say it belongs to the other one (pool.instance.service).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_instance"),
        sa.CheckConstraint("id = 1", name="ck_instance_single_row"),
        sa.CheckConstraint("network IN ('testnet', 'mainnet')", name="ck_instance_network"),
    )


def downgrade() -> None:
    op.drop_table("instance")
