"""order scopes and subscriptions: what existed before orders keeps working with them

A PayIn client calls createOrder with the key it already has, and expects order events on the
endpoint it already has. So:
- an API key holding `deposits:read` gains `orders:read`, and `deposits:write` gains
  `orders:write` (an `admin` key already passes every check);
- a webhook endpoint subscribed to every event type that existed before orders (the five
  `deposit.*` and `alert.address_pool_low`: "everything") is subscribed to every `order.*`
  type too. An endpoint that chose some types keeps exactly its choice.

Data only; the schema is 0015's. The downgrade leaves the rows as they are: 0015 knows these
scopes and event types too.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# Frozen here, not imported: a migration must mean the same whatever the code becomes.
SCOPES_GAINED = {"deposits:read": "orders:read", "deposits:write": "orders:write"}
EVENTS_BEFORE_ORDERS = (
    "deposit.pending",
    "deposit.confirmed",
    "deposit.reverted",
    "deposit.address_bound",
    "deposit.address_unbound",
    "alert.address_pool_low",
)
ORDER_EVENTS = (
    "order.created",
    "order.completed",
    "order.expired",
    "order.cancelled",
    "order.paid_late",
    "order.payment_mismatch",
    "order.reverted",
)

api_key = sa.table("api_key", sa.column("id", sa.Integer()), sa.column("scopes", sa.Text()))
subscription = sa.table(
    "webhook_subscription",
    sa.column("endpoint_id", sa.String(32)),
    sa.column("event_type", sa.String(64)),
)


def upgrade() -> None:
    conn = op.get_bind()
    for key_id, text in conn.execute(sa.select(api_key.c.id, api_key.c.scopes)).all():
        scopes = text.split()
        gained = [SCOPES_GAINED[s] for s in scopes if s in SCOPES_GAINED]
        new = sorted(set(scopes) | set(gained))
        if new != sorted(set(scopes)):
            conn.execute(
                api_key.update().where(api_key.c.id == key_id).values(scopes=" ".join(new))
            )
    everything = (
        sa.select(subscription.c.endpoint_id)
        .where(subscription.c.event_type.in_(EVENTS_BEFORE_ORDERS))
        .group_by(subscription.c.endpoint_id)
        .having(sa.func.count() == len(EVENTS_BEFORE_ORDERS))
    )
    for (endpoint_id,) in conn.execute(everything).all():
        present = set(
            conn.execute(
                sa.select(subscription.c.event_type).where(
                    subscription.c.endpoint_id == endpoint_id
                )
            ).scalars()
        )
        missing = [t for t in ORDER_EVENTS if t not in present]
        if missing:
            conn.execute(
                subscription.insert(),
                [{"endpoint_id": endpoint_id, "event_type": t} for t in missing],
            )


def downgrade() -> None:
    """Nothing to undo: 0015 knows these scopes and event types."""
