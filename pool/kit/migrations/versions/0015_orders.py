"""orders: a payment of a known amount to an address allocated from the pool

Adds the `payment_order` table and, on `deposit`, the order a transfer belongs to, its role
for that order, and its block's timestamp (docs/design.md, Orders).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def _amount_type() -> sa.types.TypeEngine[Any]:
    # SQLite's NUMERIC is a lossy REAL above 2^63: amounts are exact text there.
    return sa.String(80) if op.get_bind().dialect.name == "sqlite" else sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "payment_order",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("order_reference", sa.String(255), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("amount", _amount_type(), nullable=False),
        sa.Column("address_id", Id, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("required_confirmations", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("success_url", sa.Text(), nullable=True),
        sa.Column("cancel_url", sa.Text(), nullable=True),
        sa.Column("payment_url", sa.Text(), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("window_ends_at", Moment, nullable=False),
        sa.Column("grace_ends_at", Moment, nullable=False),
        sa.Column("completed_at", Moment, nullable=True),
        sa.Column("expired_at", Moment, nullable=True),
        sa.Column("cancelled_at", Moment, nullable=True),
        sa.Column("completed_by", sa.String(32), nullable=True),
        sa.Column("cooldown_until", Moment, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["address_id"], ["address.id"], name=op.f("fk_payment_order_address_id_address")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_order")),
        sa.UniqueConstraint("order_reference", name=op.f("uq_payment_order_order_reference")),
    )
    op.create_index("ix_payment_order_status_grace", "payment_order", ["status", "grace_ends_at"])
    op.create_index("ix_payment_order_address", "payment_order", ["address_id", "created_at"])
    op.create_index("ix_payment_order_created_at", "payment_order", ["created_at"])
    with op.batch_alter_table("deposit") as batch:
        batch.add_column(sa.Column("order_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("order_role", sa.String(16), nullable=True))
        batch.add_column(sa.Column("block_time", Moment, nullable=True))
        batch.create_foreign_key(
            op.f("fk_deposit_order_id_payment_order"), "payment_order", ["order_id"], ["id"]
        )
        batch.create_index("ix_deposit_order", ["order_id"])


def downgrade() -> None:
    with op.batch_alter_table("deposit") as batch:
        batch.drop_index("ix_deposit_order")
        batch.drop_constraint(op.f("fk_deposit_order_id_payment_order"), type_="foreignkey")
        batch.drop_column("block_time")
        batch.drop_column("order_role")
        batch.drop_column("order_id")
    op.drop_table("payment_order")
