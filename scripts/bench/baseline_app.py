"""The ceiling for the bind benchmark: a minimal FastAPI endpoint running one claim statement.

Same engine, driver and claim statement as addrpool's bind; no auth, validation, binding row,
outbox event or envelope. Two flavours: `/claim` inside BEGIN/COMMIT, and `/claim-autocommit`
as a lone statement, which is how addrpool runs its one-statement bind on PostgreSQL (so that
is the fair ceiling). `uvicorn --factory scripts.bench.baseline_app:create`.
"""

from __future__ import annotations

import itertools
import os

from fastapi import FastAPI, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from pool.addresses.repository import claim_available_address
from pool.kit.clock import utc_now
from pool.kit.config import load_settings
from pool.kit.db import Database


def create() -> FastAPI:
    settings = load_settings()  # the same database and pool size as addrpool's own workers
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    app = FastAPI()
    counter = itertools.count()

    async def claim(conn: AsyncConnection) -> Response:
        reference = f"baseline_{os.getpid()}_{next(counter)}"
        claimed = await claim_available_address(
            conn, protocol="evm", reference=reference, now=utc_now()
        )
        body = b'{"address":"%s"}' % (claimed.text.encode() if claimed else b"")
        return Response(body, status_code=201 if claimed else 503, media_type="application/json")

    @app.post("/claim")
    async def claim_in_transaction() -> Response:
        async with db.write() as conn:
            return await claim(conn)

    @app.post("/claim-autocommit")
    async def claim_alone() -> Response:
        async with db.autocommit() as conn:
            return await claim(conn)

    return app
