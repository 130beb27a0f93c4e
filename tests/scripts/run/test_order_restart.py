"""An order outlives the process that created it (invariant 14, docs/design.md): `addrpool serve`
is killed with SIGKILL between the order's window end and its grace end, a new process starts on
the same database, and the order expires at its grace end — decided from the database alone, once,
its `order.expired` event with it, its address cooling down."""

from __future__ import annotations

import signal
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select, update

from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import address, payment_order
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import auth, load_pool, make_key
from tests.fixtures.order_rows import mine_past, order_events
from tests.fixtures.orders import devnet_serve_env, order_body
from tests.fixtures.polling import wait_until
from tests.fixtures.server import running_server

pytestmark = pytest.mark.server

GRACE_LEFT = timedelta(seconds=2)  # once the second process serves
# Expired after the grace end, and by the second process: once its watcher has read past the
# grace end and its next expiry pass has run — seconds, more on a loaded machine. How late, in
# figures, is scripts/bench/order_lifecycle.py's to measure (expiry lateness), not this test's.
LATENESS = timedelta(seconds=10)


async def test_an_order_expires_on_time_after_its_server_is_killed_between_window_and_grace(
    database_url: str, db: Database, devnet: Devnet, tmp_path: Path, no_proxy_env: None
) -> None:
    await load_pool(db, "evm", 2)
    key = await make_key(db, scopes=None)
    env = {**devnet_serve_env(tmp_path, devnet), "ADDRPOOL_ORDERS__EXPIRE_EVERY": "0.5"}
    with running_server(database_url, extra_env=env) as first:
        api = httpx.Client(base_url=f"{first.base_url}/api/v1", headers=auth(key))
        created = api.post("/orders", json=order_body("restart_1", chainId="devnet"))
        assert created.status_code == 201, created.text
        order_id = created.json()["data"]["orderId"]
        # The API's shortest window is a minute: end it now, the grace a minute away.
        await _set_times(
            db, order_id, window_end=utc_now(), grace_end=utc_now() + timedelta(minutes=1)
        )
        time.sleep(1.0)  # the first process's expiry worker looks twice
        assert api.get(f"/orders/{order_id}").json()["data"]["status"] == "pending"
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(timeout=30)

    with running_server(database_url, extra_env=env) as second:
        # Only now does the grace end come close: the lateness measured is the second process's.
        grace_end = utc_now() + GRACE_LEFT
        await _set_times(db, order_id, grace_end=grace_end)
        time.sleep((grace_end - utc_now()).total_seconds())
        mine_past(devnet.url, grace_end)  # the chain's clock passes the grace end too
        api = httpx.Client(base_url=f"{second.base_url}/api/v1", headers=auth(key))
        wait_until(
            lambda: api.get(f"/orders/{order_id}").json()["data"]["status"] != "pending",
            timeout=30,
            what="the order to end",
        )
        assert api.get(f"/orders/{order_id}").json()["data"]["status"] == "expired"
        assert second.terminate() == 0

    async with db.read() as conn:
        expired_at, status, cooldown_until = (
            await conn.execute(
                select(payment_order.c.expired_at, address.c.status, address.c.cooldown_until)
                .join(address, address.c.id == payment_order.c.address_id)
                .where(payment_order.c.id == order_id)
            )
        ).one()
    assert timedelta(0) <= expired_at - grace_end <= LATENESS
    assert status == "available" and cooldown_until > utc_now()  # cooling down
    assert [kind for kind, _ in await order_events(db)] == ["order.created", "order.expired"]


async def _set_times(db: Database, order_id: str, **ends: datetime) -> None:
    """Set the order's `window_end` and/or `grace_end`, as the test needs them."""
    values = {f"{name}s_at": moment for name, moment in ends.items()}
    async with db.write() as conn:
        await conn.execute(
            update(payment_order).where(payment_order.c.id == order_id).values(**values)
        )
