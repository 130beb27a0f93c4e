"""payment links: a shareable checkout that creates orders, with an inventory

Adds the `payment_link` table and, on `payment_order`, the link whose checkout created the order
(docs/design.md, Payment links).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_link",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("slug", sa.String(32), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("amount", sa.String(80), nullable=False),
        sa.Column("currencies", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("inventory_total", sa.Integer(), nullable=True),
        sa.Column("inventory_reserved", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("inventory_sold", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("expires_at", Moment, nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=True),
        sa.Column("success_url", sa.Text(), nullable=True),
        sa.Column("cancel_url", sa.Text(), nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.Column("published_at", Moment, nullable=True),
        sa.Column("archived_at", Moment, nullable=True),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_link")),
        sa.UniqueConstraint("slug", name=op.f("uq_payment_link_slug")),
    )
    op.create_index("ix_payment_link_created_at", "payment_link", ["created_at"])
    with op.batch_alter_table("payment_order") as batch:
        batch.add_column(sa.Column("payment_link_id", sa.String(40), nullable=True))
        batch.create_foreign_key(
            op.f("fk_payment_order_payment_link_id_payment_link"),
            "payment_link",
            ["payment_link_id"],
            ["id"],
        )
        batch.create_index("ix_payment_order_payment_link_id", ["payment_link_id", "status"])


def downgrade() -> None:
    with op.batch_alter_table("payment_order") as batch:
        batch.drop_index("ix_payment_order_payment_link_id")
        batch.drop_constraint(
            op.f("fk_payment_order_payment_link_id_payment_link"), type_="foreignkey"
        )
        batch.drop_column("payment_link_id")
    op.drop_index("ix_payment_link_created_at", table_name="payment_link")
    op.drop_table("payment_link")
