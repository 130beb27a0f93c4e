"""The schema, as SQLAlchemy Core tables (docs/design.md, Data model).

The migrations in `pool/kit/migrations` create exactly this; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from pool.kit.types import BaseUnits, UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only gives AUTOINCREMENT-like rowids to INTEGER PRIMARY KEY, not BIGINT.
Id = BigInteger().with_variant(Integer(), "sqlite")

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
    Column("log_index", Integer, nullable=False),
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
    UniqueConstraint("chain_id", "tx_hash", "log_index"),
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

alert = Table(
    "alert",
    metadata,
    Column("id", Id, primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("state", String(16), nullable=False),  # firing | resolved
    Column("value", Text, nullable=True),
    Column("details", JSON, nullable=True),
    Column("first_fired_at", UTCDateTime, nullable=False),
    Column("last_fired_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime, nullable=True),
    # An operator's acknowledgement: of this episode only (docs/operations.md, Alerts).
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("acknowledged_by", String(64), nullable=True),
    # A silence is the subject's: a new episode of a silenced subject is opened silenced, and
    # the hooks hear nothing of it until the time ends (pool.alerts.actions_repository).
    Column("silenced_until", UTCDateTime, nullable=True),
    Column("silenced_by", String(64), nullable=True),
    # One open episode per subject: an alert fires once and resolves once.
    Index(
        "uq_alert_firing_subject",
        "subject",
        unique=True,
        postgresql_where=text("state = 'firing'"),
        sqlite_where=text("state = 'firing'"),
    ),
    # The few silenced episodes, found without reading every alert ever raised (the notifier
    # looks for ended silences on each pass; a fired batch, for silences to inherit).
    Index(
        "ix_alert_silenced",
        "subject",
        "silenced_until",
        postgresql_where=text("silenced_until IS NOT NULL"),
        sqlite_where=text("silenced_until IS NOT NULL"),
    ),
)

# Every episode's opening and closing, written in the transaction that changed the alert: what
# the hooks are told (Invariant 8's outbox, for operators).
alert_transition = Table(
    "alert_transition",
    metadata,
    Column("id", Id, primary_key=True),
    Column("alert_id", Id, ForeignKey("alert.id"), nullable=False),
    Column("transition", String(16), nullable=False),  # fired | escalated | deescalated | resolved
    Column("at", UTCDateTime, nullable=False),
    # The alert as this transition left it, for hooks told later (a retried "fired" must not
    # show the severity of a later escalation). NULL: as the alert row says — the watcher's
    # batch-fired alerts, whose severity never changes.
    Column("severity", String(16), nullable=True),
    Column("value", Text, nullable=True),
    Column("details", JSON, nullable=True),
    # Set once a notification row per configured hook exists (and the log has it).
    Column("dispatched_at", UTCDateTime, nullable=True),
    Index("ix_alert_transition_undispatched", "dispatched_at", "id"),
    # A batch of fired alerts looks up which already have a transition (repository.alerts).
    Index("ix_alert_transition_alert", "alert_id"),
)
# One transition to one hook: sent with retries, like a webhook delivery.
alert_notification = Table(
    "alert_notification",
    metadata,
    Column("id", Id, primary_key=True),
    Column("transition_id", Id, ForeignKey("alert_transition.id"), nullable=False),
    Column("hook", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=True),  # also the sender's lease
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    UniqueConstraint("transition_id", "hook"),
    Index("ix_alert_notification_due", "status", "next_attempt_at"),
)

webhook_endpoint = Table(
    "webhook_endpoint",
    metadata,
    Column("id", String(32), primary_key=True),  # we_<hex>
    Column("url", Text, nullable=False),
    Column("description", String(255), nullable=True),
    Column("signature_scheme", String(16), nullable=False),  # body | timestamped
    # Encrypted with ADDRPOOL_SECRET_KEY: secrets must be readable to sign, so not hashed.
    Column("secret_encrypted", Text, nullable=False),
    Column("previous_secret_encrypted", Text, nullable=True),
    Column("previous_secret_expires_at", UTCDateTime, nullable=True),
    Column("enabled", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Deleted endpoints stay for their delivery history; they receive nothing more.
    Column("deleted_at", UTCDateTime, nullable=True),
)
# One row per (endpoint, event type) it subscribes to: the outbox joins on it in the very
# statement that writes an event, on both databases, without JSON operators.
webhook_subscription = Table(
    "webhook_subscription",
    metadata,
    Column("endpoint_id", String(32), ForeignKey("webhook_endpoint.id"), primary_key=True),
    Column("event_type", String(64), primary_key=True),
    Index("ix_webhook_subscription_type", "event_type"),
)
delivery = Table(
    "delivery",
    metadata,
    Column("id", String(32), primary_key=True),  # dlv_<hex>
    Column("event_seq", Id, ForeignKey("event.seq"), nullable=False),
    Column("endpoint_id", String(32), ForeignKey("webhook_endpoint.id"), nullable=False),
    # pending -> succeeded | failed | cancelled (failed can be retried back to pending)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The retry budget (about 3 days) runs from here; a manual retry restarts it.
    Column("retry_from", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime, nullable=True),
    # Times reconciliation sent a failed delivery back to pending: it does so a bounded number.
    Column("requeues", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("event_seq", "endpoint_id"),
    # What a delivery worker claims: due pending deliveries, oldest first.
    Index("ix_delivery_due", "status", "next_attempt_at"),
    Index("ix_delivery_endpoint", "endpoint_id", "created_at"),
    # An endpoint's oldest undelivered delivery (the failing-endpoint alert), without walking
    # its delivered history.
    Index(
        "ix_delivery_pending_by_endpoint",
        "endpoint_id",
        "retry_from",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
)
delivery_attempt = Table(
    "delivery_attempt",
    metadata,
    Column("id", Id, primary_key=True),
    Column("delivery_id", String(32), ForeignKey("delivery.id"), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("response_body", Text, nullable=True),  # the first KB
    Index("ix_delivery_attempt_delivery", "delivery_id", "attempted_at"),
)
# What the reconciliation worker found, kept so the API serves the latest report without
# touching the chain (the worker reads it; a request never does).
reconciliation_report = Table(
    "reconciliation_report",
    metadata,
    Column("id", Id, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("summary", JSON, nullable=False),  # counts per category, what was checked/repaired
    Column("items", JSON, nullable=False),  # the discrepancies, capped per category
    Index("ix_reconciliation_report_finished", "finished_at"),
)

# Upstream mode: PayIn's webhooks as received — every one, refused ones too (the audit trail),
# each accepted event once (its id), then checked against our own observations.
upstream_event = Table(
    "upstream_event",
    metadata,
    Column("id", Id, primary_key=True),
    Column("event_id", String(128), nullable=True),
    Column("type", String(64), nullable=True),
    # rejected | received | matched | not_seen | not_on_chain | mismatched | ignored
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=True),
    Column("payload", JSON, nullable=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("checked_at", UTCDateTime, nullable=True),
    Column("deposit_id", String(32), nullable=True),
    Index(
        "uq_upstream_event_accepted",
        "event_id",
        unique=True,
        postgresql_where=text("status <> 'rejected'"),
        sqlite_where=text("status <> 'rejected'"),
    ),
    Index("ix_upstream_event_status", "status", "received_at"),
)

# The network the database belongs to: one row, written once by the first process of that network
# (pool.instance.service). A process of the other network refuses to use the database.
instance = Table(
    "instance",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("network", String(8), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
    CheckConstraint("network IN ('testnet', 'mainnet')", name="network"),
)

api_key = Table(
    "api_key",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("prefix", String(16), nullable=False),  # shown in listings, e.g. pk_test_1a2b
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex of the key
    Column("scopes", Text, nullable=False),  # space-separated
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)

# A signed-in console browser: the SHA-256 of its cookie's token, never the token or the key.
console_session = Table(
    "console_session",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("api_key_id", Id, ForeignKey("api_key.id"), nullable=False),
    Column("csrf", String(64), nullable=False),  # every form of the session carries it
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_console_session_expires_at", "expires_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("details", JSON, nullable=True),
    Index("ix_audit_log_at", "at"),
)
