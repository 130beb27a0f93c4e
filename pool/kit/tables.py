"""The schema, as SQLAlchemy Core tables (docs/design.md, Data model).

The migrations in `pool/kit/migrations` create exactly this; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from pool.kit.schema_base import Id as Id
from pool.kit.schema_base import metadata as metadata
from pool.kit.tables_operations import alert as alert
from pool.kit.tables_operations import alert_notification as alert_notification
from pool.kit.tables_operations import alert_transition as alert_transition
from pool.kit.tables_operations import api_key as api_key
from pool.kit.tables_operations import audit_log as audit_log
from pool.kit.tables_operations import console_session as console_session
from pool.kit.tables_operations import delivery as delivery
from pool.kit.tables_operations import delivery_attempt as delivery_attempt
from pool.kit.tables_operations import import_job as import_job
from pool.kit.tables_operations import instance as instance
from pool.kit.tables_operations import reconciliation_report as reconciliation_report
from pool.kit.tables_operations import upstream_event as upstream_event
from pool.kit.tables_operations import webhook_endpoint as webhook_endpoint
from pool.kit.tables_operations import webhook_subscription as webhook_subscription
from pool.kit.types import BaseUnits, UTCDateTime

ACTIVE = text("unbound_at IS NULL")

import_batch = Table(
    "import_batch",
    metadata,
    Column("id", Id, primary_key=True),
    Column("protocol", String(8), nullable=False),
    Column("source", String(255), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("imported", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("format", String(16), nullable=True),
    Column("file_sha256", String(64), nullable=True),
    # importing | committed | done (pool.vocabulary): whether its rows are the pool's yet.
    Column("status", String(16), nullable=False, server_default="done"),
)

master_key = Table(
    "master_key",
    metadata,
    Column("id", Id, primary_key=True),
    Column("protocol", String(8), nullable=False),
    Column("public_key", Text, nullable=False),
    Column("fingerprint", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("protocol", "public_key"),
)

# A registered xpub's branch that refills the pool by itself (pool.refill): `next_index` is
# claimed by a conditional UPDATE in the transaction that imports the range it names.
key_refill = Table(
    "key_refill",
    metadata,
    Column("id", Id, primary_key=True),
    Column("master_key_id", Id, ForeignKey("master_key.id"), nullable=False),
    Column("branch", BigInteger, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_index", BigInteger, nullable=False),
    Column("max_index", BigInteger, nullable=False),  # inclusive: the last index it may derive
    Column("low_water", Integer, nullable=True),  # NULL: the [refill] setting
    Column("batch_size", Integer, nullable=True),  # NULL: the [refill] setting
    Column("refilled_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("master_key_id", "branch"),
)

address = Table(
    "address",
    metadata,
    Column("id", Id, primary_key=True),
    Column("protocol", String(8), nullable=False),
    Column("address", String(64), nullable=False),
    # Lower-case 40-hex of the 20 account bytes: what Transfer logs carry on EVM and Tron.
    Column("hex20", String(40), nullable=False),
    # available | bound | allocated | archived, or importing (an unfinished SQLite import).
    Column("status", String(16), nullable=False),
    Column("import_batch_id", Id, ForeignKey("import_batch.id"), nullable=True),
    Column("master_key_id", Id, ForeignKey("master_key.id"), nullable=True),
    Column("derivation_index", BigInteger, nullable=True),
    Column("last_reference", String(255), nullable=True),
    Column("recycled_at", UTCDateTime, nullable=True),
    Column("cooldown_until", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("protocol", "hex20"),
    UniqueConstraint("protocol", "address"),
)

# The claim walks this index: never-used first (NULL recycled_at), then longest-recycled.
# Not partial, so a generic prepared plan (asyncpg caches statements) can use it too.
# SQLite sorts NULLs first on its own and refuses NULLS FIRST in an index.
Index(
    "ix_address_claim_order",
    address.c.protocol,
    address.c.status,
    address.c.recycled_at.asc().nullsfirst(),
    address.c.id,
).ddl_if(dialect="postgresql")
Index(
    "ix_address_claim_order_sqlite",
    address.c.protocol,
    address.c.status,
    address.c.recycled_at,
    address.c.id,
).ddl_if(dialect="sqlite")

# The rows of unfinished imports, by batch: what an import hands over to the pool or removes
# a chunk at a time, and what the watcher and the counts leave out. Empty but for an import in
# flight (PostgreSQL never writes `importing`), so it costs the other writes nothing.
IMPORTING = text("status = 'importing'")
Index(
    "ix_address_importing",
    address.c.import_batch_id,
    postgresql_where=IMPORTING,
    sqlite_where=IMPORTING,
)

# The pool's counts, kept by triggers on `address` in the transaction of every write to it
# (migration 0022; pool.addresses.counts reads them): per protocol and stored status (an
# unfinished import's rows left out), in `slot`s so that concurrent binds on PostgreSQL each
# update a row of their own (the slot is the address id modulo 64; SQLite, one writer, uses 0).
# A status's count is the sum of its slots.
address_count = Table(
    "address_count",
    metadata,
    Column("protocol", String(8), primary_key=True),
    Column("status", String(16), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Deposits (by chain), deliveries and orders by status, kept by triggers in the transaction of
# every write (migration 0027): what /metrics gauges, read in a few rows whatever the history.
# PostgreSQL: a transaction adds its changes to rows of its own (slot: its transaction id),
# which the worker folds into slot 0 (pool.monitoring.status_counts); SQLite: slot 0 in place.
status_count = Table(
    "status_count",
    metadata,
    Column("subject", String(16), primary_key=True),  # deposit | delivery | order
    Column("label", String(64), primary_key=True),  # a deposit's chain id; "" otherwise
    Column("status", String(16), primary_key=True),
    Column("slot", BigInteger, primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Addresses cooling down, by when they stop: time, not a write, ends a cooldown, so the counts
# above cannot say how many of the available ones cool; this bounded range counts them.
COOLS = text("status = 'available' AND cooldown_until IS NOT NULL")
Index(
    "ix_address_cooling",
    address.c.protocol,
    address.c.cooldown_until,
    postgresql_where=COOLS,
    sqlite_where=COOLS,
)

binding = Table(
    "binding",
    metadata,
    Column("id", Id, primary_key=True),
    Column("deposit_reference", String(255), nullable=False),
    Column("protocol", String(8), nullable=False),
    Column("address_id", Id, ForeignKey("address.id"), nullable=False),
    Column("metadata", JSON, nullable=True),
    Column("bound_at", UTCDateTime, nullable=False),
    Column("unbound_at", UTCDateTime, nullable=True),
    Column("cooldown_until", UTCDateTime, nullable=True),
    Column("bound_by", String(64), nullable=False),
    Column("unbound_by", String(64), nullable=True),
    # Invariant 1, enforced by the database: a race loses loudly instead of double-binding.
    Index(
        "uq_binding_active_reference",
        "protocol",
        "deposit_reference",
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    ),
    Index(
        "uq_binding_active_address",
        "address_id",
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    ),
    Index("ix_binding_reference_history", "protocol", "deposit_reference", "bound_at"),
    Index("ix_binding_address_history", "address_id", "bound_at"),
    # The exhaustion projection counts a protocol's recent binds.
    Index("ix_binding_protocol_bound_at", "protocol", "bound_at"),
)

# One payment of a known amount to an address allocated from the pool (docs/design.md, Orders).
# `order` is an SQL keyword, hence the name.
payment_link = Table(
    "payment_link",
    metadata,
    Column("id", String(40), primary_key=True),  # pl_ + 128 random bits
    # The public checkout's key (`/checkout/{slug}`): random, so links cannot be enumerated.
    Column("slug", String(32), nullable=False, unique=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=True),
    # A decimal string ("0": the payer enters the amount); in each currency's own units.
    Column("amount", String(80), nullable=False),
    Column("currencies", JSON, nullable=False),  # [{"currency", "chainId"}], in the link's order
    Column("status", String(16), nullable=False),  # draft | published | archived
    # Inventory: None is unlimited. `reserved` counts the link's pending orders (the per-link
    # cap applies to it too); an order's end moves one to `sold` or back (pool.orders.ending).
    Column("inventory_total", Integer, nullable=True),
    Column("inventory_reserved", Integer, nullable=False, server_default="0"),
    Column("inventory_sold", Integer, nullable=False, server_default="0"),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("metadata", JSON, nullable=True),
    Column("success_url", Text, nullable=True),
    Column("cancel_url", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime, nullable=True),
    Column("archived_at", UTCDateTime, nullable=True),
    Column("created_by", String(64), nullable=False),
    Index("ix_payment_link_created_at", "created_at"),
)

payment_order = Table(
    "payment_order",
    metadata,
    Column("id", String(40), primary_key=True),  # ord_ + 128 random bits: the payment page's key
    # Invariant 13: one orderReference names one order, whatever its status.
    Column("order_reference", String(255), nullable=False, unique=True),
    Column("protocol", String(8), nullable=False),
    Column("chain_id", String(64), nullable=False),
    Column("currency", String(16), nullable=False),
    Column("token_contract", String(64), nullable=False),
    Column("decimals", Integer, nullable=False),
    Column("amount", BaseUnits, nullable=False),
    Column("address_id", Id, ForeignKey("address.id"), nullable=False),
    Column("status", String(16), nullable=False),  # pending | completed | expired | cancelled
    Column("required_confirmations", Integer, nullable=False),
    Column("metadata", JSON, nullable=True),
    Column("success_url", Text, nullable=True),
    Column("cancel_url", Text, nullable=True),
    # Absolute, fixed when the order is created: events carry it and have no request to ask.
    Column("payment_url", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("window_ends_at", UTCDateTime, nullable=False),
    Column("grace_ends_at", UTCDateTime, nullable=False),  # = expiresAt
    Column("completed_at", UTCDateTime, nullable=True),
    Column("expired_at", UTCDateTime, nullable=True),
    Column("cancelled_at", UTCDateTime, nullable=True),
    # The counted transfer that reached the amount (its txHash is the order's).
    Column("completed_by", String(32), nullable=True),
    # Set when the order ends: until then a transfer to the address is the order's late payment.
    Column("cooldown_until", UTCDateTime, nullable=True),
    Column("created_by", String(64), nullable=False),
    # Set when a payment link's checkout created the order (its inventory follows the order).
    Column("payment_link_id", String(40), ForeignKey("payment_link.id"), nullable=True),
    # The expiry worker reads the pending orders whose grace has ended, oldest first.
    Index("ix_payment_order_status_grace", "status", "grace_ends_at"),
    # Which order a transfer to an address belongs to: its latest.
    Index("ix_payment_order_address", "address_id", "created_at"),
    Index("ix_payment_order_created_at", "created_at"),
    Index("ix_payment_order_payment_link_id", "payment_link_id", "status"),
)

deposit = Table(
    "deposit",
    metadata,
    Column("id", String(32), primary_key=True),  # dep_<hex>
    Column("chain_id", String(64), nullable=False),
    Column("tx_hash", String(80), nullable=False),
    Column("log_index", Integer, nullable=False),  # -1: a native transfer has no log
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(80), nullable=False),
    Column("from_address", String(64), nullable=False),
    Column("address_id", Id, ForeignKey("address.id"), nullable=False),
    Column("binding_id", Id, ForeignKey("binding.id"), nullable=True),
    Column("token_contract", String(64), nullable=False),
    Column("currency", String(16), nullable=False),
    Column("amount", BaseUnits, nullable=False),
    Column("decimals", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("late", Boolean, nullable=False, server_default=text("false")),
    Column("detected_at", UTCDateTime, nullable=False),
    Column("confirmed_at", UTCDateTime, nullable=True),
    Column("completed_at", UTCDateTime, nullable=True),
    Column("reverted_at", UTCDateTime, nullable=True),
    # A transfer to an order's address: which order, and what it is to it (OrderPaymentRole).
    Column("order_id", String(40), ForeignKey("payment_order.id"), nullable=True),
    Column("order_role", String(16), nullable=True),  # payment | late | mismatch
    # The block's timestamp: whether a transfer was in an order's time is decided by it, not by
    # when it was detected (the same after a rescan). NULL on rows recorded before orders.
    Column("block_time", UTCDateTime, nullable=True),
    # An operator's decision on a deposit nobody was credited with, or an order's late or
    # mismatched transfer (pool/deposits/resolution.py): attributed | refunded | ignored.
    Column("resolution", String(16), nullable=True),
    Column("resolution_note", String(1000), nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    # A native transfer's place in its transaction's call trace ("tx", "tx.0.1"); "" for a
    # token's (chains.evm.native). With the log index, it is the deposit's identity.
    Column("trace_position", String(64), nullable=False, server_default=""),
    UniqueConstraint("chain_id", "tx_hash", "log_index", "trace_position"),
    Index("ix_deposit_order", "order_id"),
    Index("ix_deposit_binding", "binding_id", "detected_at"),
    Index("ix_deposit_address", "address_id", "detected_at"),
    Index("ix_deposit_status", "status", "detected_at"),
    # The watcher's reorg rollback and confirmation pass walk deposits by chain and height.
    Index("ix_deposit_chain_block", "chain_id", "block_number"),
    # Reconciliation reads a window of recent deposits, whatever their status.
    Index("ix_deposit_detected_at", "detected_at"),
)
chain_cursor = Table(
    "chain_cursor",
    metadata,
    Column("chain_id", String(64), primary_key=True),
    # The highest block fully processed (Invariant 6: never past a block that failed).
    Column("block_number", BigInteger, nullable=False),
    Column("block_hash", String(80), nullable=False),
    Column("head", BigInteger, nullable=True),
    Column("confirmations", Integer, nullable=False),
    Column("endpoint", String(255), nullable=True),
    Column("head_at", UTCDateTime, nullable=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # [{endpoint, state, reason, head, failures, retryInSeconds}] as the watcher last saw them.
    Column("endpoints", JSON, nullable=True),
    # The timestamp of the cursor's block (NULL after a rollback until the next range): the
    # expiry worker waits until it passes an order's grace end (docs/design.md, Orders).
    Column("block_time", UTCDateTime, nullable=True),
)
# Which watcher writes a chain (Invariant 15): `epoch` goes up by one each time a watcher takes
# the chain's leadership, and every transaction that writes the chain's state locks this row and
# commits only while the epoch is still its own (chains.watch.leadership). A row of its own, not a
# column of `chain_cursor`: leadership is taken before a chain's first cursor exists.
chain_leader = Table(
    "chain_leader",
    metadata,
    Column("chain_id", String(64), primary_key=True),
    Column("epoch", BigInteger, nullable=False),
    Column("holder", String(255), nullable=False),  # host:pid of the process that took it
    Column("taken_at", UTCDateTime, nullable=False),
)
# Recent canonical block hashes per chain, at least max(256, 2 x confirmations) deep.
chain_block = Table(
    "chain_block",
    metadata,
    Column("chain_id", String(64), primary_key=True),
    Column("number", BigInteger, primary_key=True),
    Column("hash", String(80), nullable=False),
    Column("parent_hash", String(80), nullable=False),
)

event = Table(
    "event",
    metadata,
    Column("seq", Id, primary_key=True),
    Column("id", String(32), nullable=False, unique=True),  # evt_<hex>, stable across retries
    Column("type", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Reconciliation reads the events of a recent window, not the whole history.
    Index("ix_event_created_at", "created_at"),
)
