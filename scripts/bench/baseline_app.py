"""The ceiling for the bind benchmark: a minimal FastAPI endpoint running one claim statement.

Same engine, driver and claim statement as addrpool's bind; no auth, validation, binding row,
outbox event or envelope. `uvicorn --factory scripts.bench.baseline_app:create`.

PostgreSQL, two flavours: `/claim` inside BEGIN/COMMIT, and `/claim-autocommit` as a lone
statement, which is how addrpool runs its one-statement bind there (so that is the fair ceiling).

SQLite: `/claim` is the cheapest claim this process can make on the same file with the same
pragmas — BEGIN IMMEDIATE, the claim's UPDATE … RETURNING, COMMIT — run the way addrpool's bind
runs there: whole, in one trip to the writer connection's thread, under the writer's lock
(`Database.write_in_one_trip`). `/claim-autocommit` is the same on SQLite.
"""

from __future__ import annotations

import itertools
import os

from fastapi import FastAPI, Response
from sqlalchemy.ext.asyncio import AsyncConnection

from api.app import NO_TELEMETRY
from pool.addresses.repository import CLAIM_NEXT_FREE, claim_available_address
from pool.kit.clock import utc_now
from pool.kit.config import load_settings
from pool.kit.db import Database
from pool.kit.sqlite_trip import Trip, TripStatement

_CLAIM_IN_ONE_TRIP = TripStatement(CLAIM_NEXT_FREE)


def create() -> FastAPI:
    settings = load_settings()  # the same database and pool size as addrpool's own workers
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    # FastAPI's OpenTelemetry check off, as addrpool's app has it (api/app.py): the ceiling
    # stays the cheapest request this FastAPI can serve.
    app = FastAPI(telemetry=NO_TELEMETRY)
    counter = itertools.count()

    def answer(text: str | None) -> Response:
        body = b'{"address":"%s"}' % (text.encode() if text else b"")
        return Response(body, status_code=201 if text else 503, media_type="application/json")

    async def claim(conn: AsyncConnection) -> Response:
        reference = f"baseline_{os.getpid()}_{next(counter)}"
        claimed = await claim_available_address(
            conn, protocol="evm", reference=reference, now=utc_now()
        )
        return answer(claimed.text if claimed else None)

    async def claim_in_one_trip() -> Response:
        parameters = {
            "p_protocol": "evm",
            "p_reference": f"baseline_{os.getpid()}_{next(counter)}",
            "p_now": utc_now(),
        }

        def work(trip: Trip) -> str | None:
            rows = trip.rows(_CLAIM_IN_ONE_TRIP, parameters)
            return str(rows[0][1]) if rows else None

        return answer(await db.write_in_one_trip(work))

    @app.post("/claim")
    async def claim_in_transaction() -> Response:
        if db.is_sqlite:
            return await claim_in_one_trip()
        async with db.write() as conn:
            return await claim(conn)

    @app.post("/claim-autocommit")
    async def claim_alone() -> Response:
        if db.is_sqlite:
            return await claim_in_one_trip()
        async with db.autocommit() as conn:
            return await claim(conn)

    return app
