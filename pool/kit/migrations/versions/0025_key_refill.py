"""key refill: a registered xpub's branch that tops the pool up by itself

Adds `key_refill`: one row per (master key, branch) an operator marked for refill — whether it
is on, the next index to derive (claimed by a conditional UPDATE in the transaction that
imports the range, so two workers never derive the same range), the hard maximum index, and
the low-water mark and batch size when they differ from the `[refill]` settings
(docs/importing.md, "Refill from the xpub").

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "key_refill",
        sa.Column("id", Id, nullable=False),
        sa.Column("master_key_id", Id, nullable=False),
        sa.Column("branch", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("next_index", sa.BigInteger(), nullable=False),
        sa.Column("max_index", sa.BigInteger(), nullable=False),
        sa.Column("low_water", sa.Integer(), nullable=True),
        sa.Column("batch_size", sa.Integer(), nullable=True),
        sa.Column("refilled_at", Moment, nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.ForeignKeyConstraint(
            ["master_key_id"],
            ["master_key.id"],
            name=op.f("fk_key_refill_master_key_id_master_key"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_refill")),
        sa.UniqueConstraint(
            "master_key_id", "branch", name=op.f("uq_key_refill_master_key_id_branch")
        ),
    )


def downgrade() -> None:
    op.drop_table("key_refill")
