"""initial schema: addresses, bindings, deposits, outbox, alerts, keys, audit

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Moment = sa.DateTime(timezone=True)
ACTIVE = sa.text("unbound_at IS NULL")
FIRING = sa.text("state = 'firing'")


def _amount_type() -> sa.types.TypeEngine[Any]:
    # SQLite's NUMERIC is a lossy REAL above 2^63: amounts are exact text there.
    return sa.String(80) if op.get_bind().dialect.name == "sqlite" else sa.Numeric(78, 0)


def upgrade() -> None:
    op.create_table(
        "import_batch",
        sa.Column("id", Id, primary_key=True),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("imported", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_import_batch"),
    )
    op.create_table(
        "master_key",
        sa.Column("id", Id, primary_key=True),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("fingerprint", sa.String(16), nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_master_key"),
        sa.UniqueConstraint("protocol", "public_key", name="uq_master_key_protocol_public_key"),
    )
    _create_address()
    _create_binding()
    _create_deposit()
    _create_operations_tables()


def _create_address() -> None:
    op.create_table(
        "address",
        sa.Column("id", Id, primary_key=True),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("hex20", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("import_batch_id", Id, nullable=True),
        sa.Column("master_key_id", Id, nullable=True),
        sa.Column("derivation_index", sa.BigInteger, nullable=True),
        sa.Column("last_reference", sa.String(255), nullable=True),
        sa.Column("recycled_at", Moment, nullable=True),
        sa.Column("cooldown_until", Moment, nullable=True),
        sa.Column("created_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_address"),
        sa.ForeignKeyConstraint(
            ["import_batch_id"], ["import_batch.id"], name="fk_address_import_batch_id_import_batch"
        ),
        sa.ForeignKeyConstraint(
            ["master_key_id"], ["master_key.id"], name="fk_address_master_key_id_master_key"
        ),
        sa.UniqueConstraint("protocol", "hex20", name="uq_address_protocol_hex20"),
        sa.UniqueConstraint("protocol", "address", name="uq_address_protocol_address"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_address_claim_order",
            "address",
            ["protocol", "status", sa.text("recycled_at ASC NULLS FIRST"), "id"],
        )
    else:
        op.create_index(
            "ix_address_claim_order_sqlite",
            "address",
            ["protocol", "status", "recycled_at", "id"],
        )


def _create_binding() -> None:
    op.create_table(
        "binding",
        sa.Column("id", Id, primary_key=True),
        sa.Column("deposit_reference", sa.String(255), nullable=False),
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("address_id", Id, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=True),
        sa.Column("bound_at", Moment, nullable=False),
        sa.Column("unbound_at", Moment, nullable=True),
        sa.Column("cooldown_until", Moment, nullable=True),
        sa.Column("bound_by", sa.String(64), nullable=False),
        sa.Column("unbound_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_binding"),
        sa.ForeignKeyConstraint(
            ["address_id"], ["address.id"], name="fk_binding_address_id_address"
        ),
    )
    # Partial predicates are written by hand: autogenerate does not see them.
    op.create_index(
        "uq_binding_active_reference",
        "binding",
        ["protocol", "deposit_reference"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index(
        "uq_binding_active_address",
        "binding",
        ["address_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    op.create_index(
        "ix_binding_reference_history", "binding", ["protocol", "deposit_reference", "bound_at"]
    )
    op.create_index("ix_binding_address_history", "binding", ["address_id", "bound_at"])


def _create_deposit() -> None:
    op.create_table(
        "deposit",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("chain_id", sa.String(64), nullable=False),
        sa.Column("tx_hash", sa.String(80), nullable=False),
        sa.Column("log_index", sa.Integer, nullable=False),
        sa.Column("block_number", sa.BigInteger, nullable=False),
        sa.Column("block_hash", sa.String(80), nullable=False),
        sa.Column("from_address", sa.String(64), nullable=False),
        sa.Column("address_id", Id, nullable=False),
        sa.Column("binding_id", Id, nullable=True),
        sa.Column("token_contract", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(16), nullable=False),
        sa.Column("amount", _amount_type(), nullable=False),
        sa.Column("decimals", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("late", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("detected_at", Moment, nullable=False),
        sa.Column("confirmed_at", Moment, nullable=True),
        sa.Column("completed_at", Moment, nullable=True),
        sa.Column("reverted_at", Moment, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_deposit"),
        sa.ForeignKeyConstraint(
            ["address_id"], ["address.id"], name="fk_deposit_address_id_address"
        ),
        sa.ForeignKeyConstraint(
            ["binding_id"], ["binding.id"], name="fk_deposit_binding_id_binding"
        ),
        sa.UniqueConstraint(
            "chain_id", "tx_hash", "log_index", name="uq_deposit_chain_id_tx_hash_log_index"
        ),
    )
    op.create_index("ix_deposit_binding", "deposit", ["binding_id", "detected_at"])
    op.create_index("ix_deposit_address", "deposit", ["address_id", "detected_at"])
    op.create_index("ix_deposit_status", "deposit", ["status", "detected_at"])


def _create_operations_tables() -> None:
    op.create_table(
        "event",
        sa.Column("seq", Id, primary_key=True),
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_event"),
        sa.UniqueConstraint("id", name="uq_event_id"),
    )
    op.create_table(
        "alert",
        sa.Column("id", Id, primary_key=True),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("details", sa.JSON, nullable=True),
        sa.Column("first_fired_at", Moment, nullable=False),
        sa.Column("last_fired_at", Moment, nullable=False),
        sa.Column("resolved_at", Moment, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert"),
    )
    op.create_index(
        "uq_alert_firing_subject",
        "alert",
        ["subject"],
        unique=True,
        postgresql_where=FIRING,
        sqlite_where=FIRING,
    )
    op.create_table(
        "api_key",
        sa.Column("id", Id, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("created_at", Moment, nullable=False),
        sa.Column("last_used_at", Moment, nullable=True),
        sa.Column("revoked_at", Moment, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_key"),
        sa.UniqueConstraint("key_hash", name="uq_api_key_key_hash"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", Id, primary_key=True),
        sa.Column("at", Moment, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("details", sa.JSON, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])


def downgrade() -> None:
    for table in (
        "audit_log",
        "api_key",
        "alert",
        "event",
        "deposit",
        "binding",
        "address",
        "master_key",
        "import_batch",
    ):
        op.drop_table(table)
