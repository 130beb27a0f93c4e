"""The schema's operational tables (docs/design.md, Data model): alerts and their hooks'
notifications, webhook endpoints and deliveries, reconciliation reports, upstream events, the
instance, API keys, console sessions, the console's import jobs and the audit log.
`pool.kit.tables` re-exports them."""

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
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from pool.kit.schema_base import Id, metadata
from pool.kit.types import UTCDateTime

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

# A file imported from the console, run in the background of the API process that received it:
# what its progress page shows (pool/addresses/import_jobs.py). The file itself is never stored.
import_job = Table(
    "import_job",
    metadata,
    Column("id", Id, primary_key=True),
    Column("protocol", String(8), nullable=False),
    Column("actor", String(64), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("format", String(16), nullable=False),
    Column("skip_invalid", Boolean, nullable=False),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("phase", String(16), nullable=False),  # reading | validate | insert | ...
    Column("done", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("result", JSON, nullable=True),  # the import's summary, or the refused rows
    Column("error", String(1000), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    # The running process writes at least every few seconds: a stale one has stopped.
    Column("updated_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Index("ix_import_job_created_at", "created_at"),
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
