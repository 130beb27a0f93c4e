"""native deposits: a deposit's identity gains its trace position

Adds `deposit.trace_position` and makes the deposit's identity (chain_id, tx_hash, log_index,
trace_position). A token deposit keeps its identity: its trace position is "" (every existing
row). A deposit of the chain's own coin has log index -1 and its place in the transaction's
call trace: "tx" for the transaction's own value, "tx.0.1" for a value transfer inside it
(docs/design.md, Native coins).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

OLD_IDENTITY = "uq_deposit_chain_id_tx_hash_log_index"
NEW_IDENTITY = "uq_deposit_chain_id_tx_hash_log_index_trace_position"


def upgrade() -> None:
    with op.batch_alter_table("deposit") as batch:
        batch.add_column(
            sa.Column("trace_position", sa.String(64), nullable=False, server_default="")
        )
        batch.drop_constraint(OLD_IDENTITY, type_="unique")
        batch.create_unique_constraint(
            NEW_IDENTITY, ["chain_id", "tx_hash", "log_index", "trace_position"]
        )


def downgrade() -> None:
    # Refused by the database while a native deposit shares a transaction with another.
    with op.batch_alter_table("deposit") as batch:
        batch.drop_constraint(NEW_IDENTITY, type_="unique")
        batch.create_unique_constraint(OLD_IDENTITY, ["chain_id", "tx_hash", "log_index"])
        batch.drop_column("trace_position")
