"""watcher state: chain cursors, recent block hashes, deposits by chain and height

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_cursor",
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(80), nullable=False),
        sa.Column("head", sa.BigInteger(), nullable=True),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(255), nullable=True),
        sa.Column("head_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", name=op.f("pk_chain_cursor")),
    )
    op.create_table(
        "chain_block",
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(80), nullable=False),
        sa.Column("parent_hash", sa.String(80), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "number", name=op.f("pk_chain_block")),
    )
    op.create_index("ix_deposit_chain_block", "deposit", ["chain_id", "block_number"])


def downgrade() -> None:
    op.drop_index("ix_deposit_chain_block", table_name="deposit")
    op.drop_table("chain_block")
    op.drop_table("chain_cursor")
