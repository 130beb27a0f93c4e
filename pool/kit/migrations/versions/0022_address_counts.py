"""address counts: the pool's counts kept as the addresses change

Adds `address_count` (per protocol, stored status and slot, the number of addresses) and the
triggers on `address` that keep it in the transaction of every write, whoever writes: the bind,
an order, an import, an archive, or SQL typed by hand. Backfilled from the table as it is.
Adds `ix_address_cooling`: cooling down is a matter of time, not of a write, so the summary
counts the addresses still cooling through it, a range as long as the addresses cooling at once.

PostgreSQL: a statement is counted once, over its transition tables (an import of a million
rows adds them up once; a row-level trigger would update a counter row a million times in one
transaction, each update walking the versions the earlier ones left: quadratic). The counts
are in slots (the address id modulo 64): binds at once, which claim neighbouring ids, update
rows of their own. SQLite (one writer, updates in place): once per row, slot 0. docs/design.md, Data model: "address_count".

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

COOLS = sa.text("status = 'available' AND cooldown_until IS NOT NULL")

# Rows of an unfinished import (SQLite) are not the pool's: never counted.
_POSTGRES_FUNCTIONS = """
CREATE FUNCTION address_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO address_count (protocol, status, slot, n)
    SELECT protocol, status, (id % 64)::integer, count(*) FROM inserted
    WHERE status <> 'importing'
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (protocol, status, slot) DO UPDATE SET n = address_count.n + EXCLUDED.n;
    RETURN NULL;
END $$

CREATE FUNCTION address_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO address_count (protocol, status, slot, n)
    SELECT protocol, status, (id % 64)::integer, -count(*) FROM deleted
    WHERE status <> 'importing'
    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
    ON CONFLICT (protocol, status, slot) DO UPDATE SET n = address_count.n + EXCLUDED.n;
    RETURN NULL;
END $$

-- Old rows count -1, new rows +1: a row whose status did not change nets out. The rows are
-- upserted in one order (protocol, status, slot), so two writes never wait on each other
-- crosswise.
CREATE FUNCTION address_count_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO address_count (protocol, status, slot, n)
    SELECT protocol, status, slot, sum(d) FROM (
        SELECT protocol, status, (id % 64)::integer AS slot, -1 AS d FROM deleted
        UNION ALL
        SELECT protocol, status, (id % 64)::integer, 1 FROM inserted
    ) AS change
    WHERE status <> 'importing'
    GROUP BY 1, 2, 3 HAVING sum(d) <> 0 ORDER BY 1, 2, 3
    ON CONFLICT (protocol, status, slot) DO UPDATE SET n = address_count.n + EXCLUDED.n;
    RETURN NULL;
END $$
"""

_POSTGRES_TRIGGERS = """
CREATE TRIGGER address_count_inserted AFTER INSERT ON address
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION address_count_inserted();
CREATE TRIGGER address_count_deleted AFTER DELETE ON address
    REFERENCING OLD TABLE AS deleted
    FOR EACH STATEMENT EXECUTE FUNCTION address_count_deleted();
CREATE TRIGGER address_count_changed AFTER UPDATE ON address
    REFERENCING OLD TABLE AS deleted NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION address_count_changed()
"""

_SQLITE_TRIGGERS = [
    """
CREATE TRIGGER address_count_inserted AFTER INSERT ON address
WHEN NEW.status <> 'importing'
BEGIN
    INSERT INTO address_count (protocol, status, slot, n) VALUES (NEW.protocol, NEW.status, 0, 1)
    ON CONFLICT (protocol, status, slot) DO UPDATE SET n = n + 1;
END
""",
    """
CREATE TRIGGER address_count_deleted AFTER DELETE ON address
WHEN OLD.status <> 'importing'
BEGIN
    UPDATE address_count SET n = n - 1
    WHERE protocol = OLD.protocol AND status = OLD.status AND slot = 0;
END
""",
    """
CREATE TRIGGER address_count_changed AFTER UPDATE OF status, protocol ON address
WHEN OLD.status IS NOT NEW.status OR OLD.protocol IS NOT NEW.protocol
BEGIN
    UPDATE address_count SET n = n - 1
    WHERE protocol = OLD.protocol AND status = OLD.status AND slot = 0
      AND OLD.status <> 'importing';
    INSERT INTO address_count (protocol, status, slot, n)
    SELECT NEW.protocol, NEW.status, 0, 1 WHERE NEW.status <> 'importing'
    ON CONFLICT (protocol, status, slot) DO UPDATE SET n = n + 1;
END
""",
]

_BACKFILL = """
INSERT INTO address_count (protocol, status, slot, n)
SELECT protocol, status, {slot}, count(*) FROM address
WHERE status <> 'importing'
GROUP BY 1, 2, 3
"""

_TRIGGERS = ("address_count_inserted", "address_count_deleted", "address_count_changed")


def upgrade() -> None:
    op.create_table(
        "address_count",
        sa.Column("protocol", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("protocol", "status", "slot", name=op.f("pk_address_count")),
    )
    op.create_index(
        "ix_address_cooling",
        "address",
        ["protocol", "cooldown_until"],
        postgresql_where=COOLS,
        sqlite_where=COOLS,
    )
    # Triggers first, then the backfill, in one transaction: on PostgreSQL CREATE TRIGGER
    # locks out writers to `address` until the commit, so no write falls between the two.
    if op.get_bind().dialect.name == "postgresql":
        # One statement per call: asyncpg prepares what it runs, and a prepared statement is one.
        for function in _POSTGRES_FUNCTIONS.split("\n\n"):
            op.execute(function)
        for trigger in _POSTGRES_TRIGGERS.strip().split(";\n"):
            op.execute(trigger)
        op.execute(_BACKFILL.format(slot="(id % 64)::integer"))
    else:
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        op.execute(_BACKFILL.format(slot="0"))


def downgrade() -> None:
    for name in _TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + _on_address())
    if op.get_bind().dialect.name == "postgresql":
        for name in _TRIGGERS:
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_index("ix_address_cooling", table_name="address")
    op.drop_table("address_count")


def _on_address() -> str:
    return " ON address" if op.get_bind().dialect.name == "postgresql" else ""
