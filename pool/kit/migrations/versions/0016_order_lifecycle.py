"""order lifecycle: the block time of the watcher's cursor

The expiry worker expires an order only once the watcher has processed its chain past the
order's grace end (a payment mined in time may not be recorded yet): it reads the timestamp of
the cursor's block, which the watcher now stores with the cursor (docs/design.md, Orders).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chain_cursor") as batch:
        batch.add_column(sa.Column("block_time", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chain_cursor") as batch:
        batch.drop_column("block_time")
