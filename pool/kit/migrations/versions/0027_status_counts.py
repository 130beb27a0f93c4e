"""status counts: deposits, deliveries and orders by status, kept as they change

Adds `status_count` (what is counted, its label — a deposit's chain, "" otherwise —, a status,
a slot, the number of rows) and the triggers on `deposit`, `delivery` and `payment_order` that
keep it in the transaction of every write, whoever writes. Backfilled from the tables as they
are. `/metrics` gauges these three by status; counting them grew with the history.

PostgreSQL: one trigger a statement, over its transition tables, adds what the statement
changed to a row of the writing transaction's own (the slot is its transaction id): two writers
never wait on each other's counter row, so counting adds no lock wait to a deposit, a delivery
or an order, and no lock order to deadlock on. The worker folds the rows of committed
transactions into slot 0 every few seconds (pool.monitoring.status_counts.compact); a read
sums what is there. SQLite (one writer): once per row, in place, slot 0.
docs/design.md, Data model: "status_count".

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

# table → (subject, the label's SQL over the table's row, the columns whose change moves a row)
COUNTED = {
    "deposit": ("deposit", "chain_id", ("status", "chain_id")),
    "delivery": ("delivery", "''", ("status",)),
    "payment_order": ("order", "''", ("status",)),
}

_POSTGRES_FUNCTION = """
CREATE FUNCTION {table}_status_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO status_count (subject, label, status, slot, n)
        SELECT '{subject}', {label}, status, txid_current(), count(*) FROM inserted
        GROUP BY 2, 3
        ON CONFLICT (subject, label, status, slot) DO UPDATE SET n = status_count.n + EXCLUDED.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO status_count (subject, label, status, slot, n)
        SELECT '{subject}', {label}, status, txid_current(), -count(*) FROM deleted
        GROUP BY 2, 3
        ON CONFLICT (subject, label, status, slot) DO UPDATE SET n = status_count.n + EXCLUDED.n;
    ELSE
        -- Old rows count -1, new rows +1: a row whose status did not change nets out, and
        -- writes nothing (most updates: a delivery's attempt, a deposit's confirmations).
        INSERT INTO status_count (subject, label, status, slot, n)
        SELECT '{subject}', label, status, txid_current(), sum(d) FROM (
            SELECT {label} AS label, status, -1 AS d FROM deleted
            UNION ALL
            SELECT {label}, status, 1 FROM inserted
        ) AS change
        GROUP BY 2, 3 HAVING sum(d) <> 0
        ON CONFLICT (subject, label, status, slot) DO UPDATE SET n = status_count.n + EXCLUDED.n;
    END IF;
    RETURN NULL;
END $$
"""

_POSTGRES_TRIGGERS = """
CREATE TRIGGER {table}_status_inserted AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_status_count();
CREATE TRIGGER {table}_status_deleted AFTER DELETE ON {table}
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_status_count();
CREATE TRIGGER {table}_status_changed AFTER UPDATE ON {table}
    REFERENCING OLD TABLE AS deleted NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_status_count()
"""

_SQLITE_TRIGGERS = [
    """
CREATE TRIGGER {table}_status_inserted AFTER INSERT ON {table}
BEGIN
    INSERT INTO status_count (subject, label, status, slot, n)
    VALUES ('{subject}', {new_label}, NEW.status, 0, 1)
    ON CONFLICT (subject, label, status, slot) DO UPDATE SET n = n + 1;
END
""",
    """
CREATE TRIGGER {table}_status_deleted AFTER DELETE ON {table}
BEGIN
    UPDATE status_count SET n = n - 1
    WHERE subject = '{subject}' AND label = {old_label} AND status = OLD.status AND slot = 0;
END
""",
    """
CREATE TRIGGER {table}_status_changed AFTER UPDATE OF {columns} ON {table}
WHEN {changed}
BEGIN
    UPDATE status_count SET n = n - 1
    WHERE subject = '{subject}' AND label = {old_label} AND status = OLD.status AND slot = 0;
    INSERT INTO status_count (subject, label, status, slot, n)
    VALUES ('{subject}', {new_label}, NEW.status, 0, 1)
    ON CONFLICT (subject, label, status, slot) DO UPDATE SET n = n + 1;
END
""",
]

_BACKFILL = """
INSERT INTO status_count (subject, label, status, slot, n)
SELECT '{subject}', {label}, status, 0, count(*) FROM {table} GROUP BY 2, 3
"""

_TRIGGER_KINDS = ("inserted", "deleted", "changed")


def upgrade() -> None:
    op.create_table(
        "status_count",
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "label", "status", "slot", name=op.f("pk_status_count")),
    )
    # Triggers first, then the backfill, in one transaction: on PostgreSQL CREATE TRIGGER
    # locks out writers to the table until the commit, so no write falls between the two.
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, (subject, label, columns) in COUNTED.items():
        if postgres:
            _create_postgres(table, subject, label)
        else:
            _create_sqlite(table, subject, label, columns)
        op.execute(_BACKFILL.format(subject=subject, label=label, table=table))


def _create_postgres(table: str, subject: str, label: str) -> None:
    # One statement per call: asyncpg prepares what it runs, and a prepared statement is one.
    op.execute(_POSTGRES_FUNCTION.format(table=table, subject=subject, label=label))
    for trigger in _POSTGRES_TRIGGERS.strip().split(";\n"):
        op.execute(trigger.format(table=table))


def _create_sqlite(table: str, subject: str, label: str, columns: tuple[str, ...]) -> None:
    def row(which: str) -> str:
        return f"{which}.{label}" if label != "''" else "''"

    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
    for trigger in _SQLITE_TRIGGERS:
        op.execute(
            trigger.format(
                table=table,
                subject=subject,
                new_label=row("NEW"),
                old_label=row("OLD"),
                columns=", ".join(columns),
                changed=changed,
            )
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table in COUNTED:
        for kind in _TRIGGER_KINDS:
            on = f" ON {table}" if postgres else ""
            op.execute(f"DROP TRIGGER IF EXISTS {table}_status_{kind}{on}")
        if postgres:
            op.execute(f"DROP FUNCTION IF EXISTS {table}_status_count()")
    op.drop_table("status_count")
