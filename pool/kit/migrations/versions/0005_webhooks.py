"""webhook endpoints, their subscriptions, deliveries and delivery attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoint",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("signature_scheme", sa.String(16), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("previous_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("previous_secret_expires_at", Moment, nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("updated_at", Moment, nullable=False),
        sa.Column("deleted_at", Moment, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoint"),
    )
    op.create_table(
        "webhook_subscription",
        sa.Column("endpoint_id", sa.String(32), nullable=False),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name="fk_webhook_subscription_endpoint_id_webhook_endpoint",
        ),
        sa.PrimaryKeyConstraint("endpoint_id", "event_type", name="pk_webhook_subscription"),
    )
    op.create_index("ix_webhook_subscription_type", "webhook_subscription", ["event_type"])
    op.create_table(
        "delivery",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("event_seq", Id, nullable=False),
        sa.Column("endpoint_id", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", Moment, nullable=True),
        sa.Column("last_attempt_at", Moment, nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("retry_from", Moment, nullable=False),
        sa.Column("completed_at", Moment, nullable=True),
        sa.ForeignKeyConstraint(["event_seq"], ["event.seq"], name="fk_delivery_event_seq_event"),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoint.id"],
            name="fk_delivery_endpoint_id_webhook_endpoint",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery"),
        sa.UniqueConstraint("event_seq", "endpoint_id", name="uq_delivery_event_seq_endpoint_id"),
    )
    op.create_index("ix_delivery_due", "delivery", ["status", "next_attempt_at"])
    op.create_index("ix_delivery_endpoint", "delivery", ["endpoint_id", "created_at"])
    op.create_table(
        "delivery_attempt",
        sa.Column("id", Id, nullable=False),
        sa.Column("delivery_id", sa.String(32), nullable=False),
        sa.Column("attempted_at", Moment, nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["delivery.id"], name="fk_delivery_attempt_delivery_id_delivery"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_delivery_attempt"),
    )
    op.create_index(
        "ix_delivery_attempt_delivery", "delivery_attempt", ["delivery_id", "attempted_at"]
    )


def downgrade() -> None:
    op.drop_table("delivery_attempt")
    op.drop_table("delivery")
    op.drop_table("webhook_subscription")
    op.drop_table("webhook_endpoint")
