"""an index for an endpoint's oldest undelivered delivery (the failing-endpoint alert)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")


def upgrade() -> None:
    op.create_index(
        "ix_delivery_pending_by_endpoint",
        "delivery",
        ["endpoint_id", "retry_from"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_delivery_pending_by_endpoint", table_name="delivery")
