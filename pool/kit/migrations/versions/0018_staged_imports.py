"""staged imports: a batch's status, and an index of the rows of unfinished imports

A SQLite import writes its rows in short transactions, as `importing` (not yet the pool's), so
that binds keep answering while it runs; it commits by marking its batch `committed`, then
hands the rows over to the pool a chunk at a time (docs/importing.md). Batches imported before
were written in one transaction: `done`.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

IMPORTING = sa.text("status = 'importing'")


def upgrade() -> None:
    with op.batch_alter_table("import_batch") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="done"))
    op.create_index(
        "ix_address_importing",
        "address",
        ["import_batch_id"],
        postgresql_where=IMPORTING,
        sqlite_where=IMPORTING,
    )


def downgrade() -> None:
    # Rows of an import that never finished are not the pool's: they go with the status that
    # said so (a committed one's are the pool's and become available).
    op.execute(
        "DELETE FROM address WHERE status = 'importing' AND import_batch_id IN "
        "(SELECT id FROM import_batch WHERE status = 'importing')"
    )
    op.execute("UPDATE address SET status = 'available' WHERE status = 'importing'")
    op.execute("DELETE FROM import_batch WHERE status = 'importing'")
    op.drop_index("ix_address_importing", table_name="address")
    op.drop_column("import_batch", "status")
