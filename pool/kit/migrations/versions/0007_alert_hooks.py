"""alert transitions and their notifications to hooks; an index for the bind rate

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alert_transition",
        sa.Column("id", Id, nullable=False),
        sa.Column("alert_id", Id, nullable=False),
        sa.Column("transition", sa.String(16), nullable=False),
        sa.Column("at", Moment, nullable=False),
        sa.Column("dispatched_at", Moment, nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alert.id"], name="fk_alert_transition_alert_id_alert"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_transition"),
    )
    op.create_index("ix_alert_transition_undispatched", "alert_transition", ["dispatched_at", "id"])
    op.create_table(
        "alert_notification",
        sa.Column("id", Id, nullable=False),
        sa.Column("transition_id", Id, nullable=False),
        sa.Column("hook", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", Moment, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("sent_at", Moment, nullable=True),
        sa.ForeignKeyConstraint(
            ["transition_id"],
            ["alert_transition.id"],
            name="fk_alert_notification_transition_id_alert_transition",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_alert_notification"),
        sa.UniqueConstraint(
            "transition_id", "hook", name="uq_alert_notification_transition_id_hook"
        ),
    )
    op.create_index(
        "ix_alert_notification_due", "alert_notification", ["status", "next_attempt_at"]
    )
    op.create_index("ix_binding_protocol_bound_at", "binding", ["protocol", "bound_at"])


def downgrade() -> None:
    op.drop_index("ix_binding_protocol_bound_at", table_name="binding")
    op.drop_index("ix_alert_notification_due", table_name="alert_notification")
    op.drop_table("alert_notification")
    op.drop_index("ix_alert_transition_undispatched", table_name="alert_transition")
    op.drop_table("alert_transition")
