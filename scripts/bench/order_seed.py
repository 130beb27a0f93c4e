"""Set-up shared by the orders benchmarks (scripts.bench.order_lifecycle,
scripts.bench.order_latency, scripts.bench.pay_page_latency): a pool imported with `addrpool
import`, pending orders written straight into `payment_order`, and clearing a chain's state."""

from __future__ import annotations

import secrets
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, insert, select, text, update

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import (
    address,
    alert,
    chain_block,
    chain_cursor,
    chain_leader,
    deposit,
    event,
    payment_order,
)
from pool.vocabulary import ALLOCATED, AVAILABLE, PENDING
from scripts.bench.children import clean_env
from scripts.bench.imports import ADDRPOOL, write_file

UNIT = 1_000_000
CHUNK = 5_000


def import_pool(url: str, count: int, work: Path) -> None:
    pool_file = work / "pool.csv"
    write_file(pool_file, "evm", count)
    env = clean_env(ADDRPOOL_DATABASE_URL=url)
    subprocess.run(
        [ADDRPOOL, "import", str(pool_file), "--protocol", "evm", "--json"],
        env=env,
        cwd=work,
        check=True,
        capture_output=True,
    )


async def seed_orders(
    db: Database,
    *,
    chain_id: str,
    token: str,
    count: int,
    grace_end: datetime | None = None,
    amount: int,
    spread: timedelta = timedelta(0),
) -> list[tuple[str, str]]:
    """`count` pending orders on free addresses, the n-th's grace ending at `grace_end` (by
    default an hour away: none ends during a run) + n × `spread`; their (order id, address)."""
    created = utc_now() - timedelta(minutes=1)
    first_end = utc_now() + timedelta(hours=1) if grace_end is None else grace_end
    async with db.write() as conn:
        free = (
            await conn.execute(
                select(address.c.id, address.c.address)
                .where(address.c.status == AVAILABLE, address.c.protocol == "evm")
                .order_by(address.c.id)
                .limit(count)
            )
        ).all()
        if len(free) < count:
            raise RuntimeError(f"{count} orders wanted, {len(free)} free addresses")
        made = []
        rows = []
        for n, (address_id, text_) in enumerate(free):
            ends = first_end + n * spread
            order_id = "ord_" + secrets.token_hex(16)
            made.append((order_id, text_))
            rows.append(
                {
                    "id": order_id,
                    "order_reference": order_id,
                    "protocol": "evm",
                    "chain_id": chain_id,
                    "currency": "USDT",
                    "token_contract": token,
                    "decimals": 6,
                    "amount": amount,
                    "address_id": address_id,
                    "status": PENDING,
                    "required_confirmations": 2,
                    "payment_url": f"https://pay.example.com/pay/order/{order_id}",
                    "created_at": created,
                    "window_ends_at": ends,
                    "grace_ends_at": ends,
                    "created_by": "bench",
                }
            )
        for start in range(0, len(rows), CHUNK):
            await conn.execute(insert(payment_order), rows[start : start + CHUNK])
            ids = [address_id for address_id, _ in free[start : start + CHUNK]]
            await conn.execute(
                update(address).where(address.c.id.in_(ids)).values(status=ALLOCATED)
            )
    await analyze(db)
    return made


async def drop_orders(db: Database) -> None:
    async with db.write() as conn:
        await conn.execute(delete(payment_order))
        await conn.execute(
            update(address).where(address.c.status == ALLOCATED).values(status=AVAILABLE)
        )
    await analyze(db)


async def analyze(db: Database) -> None:
    async with db.autocommit() as conn:
        await conn.execute(text("VACUUM ANALYZE"))


async def forget_chain(db: Database, chain_id: str) -> None:
    """The chain's deposits, events, alerts and watcher state, as if never watched."""
    async with db.write() as conn:
        await conn.execute(delete(deposit).where(deposit.c.chain_id == chain_id))
        await conn.execute(text("DELETE FROM delivery"))
        await conn.execute(delete(event))
        await conn.execute(text("DELETE FROM alert_notification"))
        await conn.execute(text("DELETE FROM alert_transition"))
        await conn.execute(delete(alert))
        for table in (chain_cursor, chain_block, chain_leader):
            await conn.execute(delete(table).where(table.c.chain_id == chain_id))
