"""planner statistics for the address table, for pools imported before imports analysed it

An import of 1,000+ addresses now ends with ANALYZE address on both databases (see
pool.addresses.insert_repository.refresh_statistics); a pool imported earlier gets its statistics
here rather than at its next large import.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ANALYZE address")


def downgrade() -> None:
    pass  # statistics only: nothing to undo
