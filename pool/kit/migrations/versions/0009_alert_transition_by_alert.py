"""alert transitions found by their alert (a batch of fired alerts checks which have one)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alert_transition_alert", "alert_transition", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_transition_alert", table_name="alert_transition")
