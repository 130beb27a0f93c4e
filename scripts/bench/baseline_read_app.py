"""The ceiling for the payment-status benchmark: a minimal FastAPI endpoint reading one order.

`GET /order/{order_id}`: the order's row by its primary key, as JSON — the same engine, driver
and database as addrpool; no transfers, no view, no envelope, no headers of its own.
`uvicorn --factory scripts.bench.baseline_read_app:create`.
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Response
from sqlalchemy import select

from pool.kit.config import load_settings
from pool.kit.db import Database
from pool.kit.tables import payment_order

_ORDER = select(payment_order.c.status, payment_order.c.amount, payment_order.c.address_id)


def create() -> FastAPI:
    settings = load_settings()  # the same database and pool size as addrpool's own workers
    db = Database(settings.database_url, pool_size=settings.db_pool_size)
    app = FastAPI()

    @app.get("/order/{order_id}")
    async def order(order_id: str) -> Response:
        # The cheapest read there is: a lone statement, no BEGIN/COMMIT (as the status's own).
        async with db.read() if db.is_sqlite else db.autocommit() as conn:
            row = (await conn.execute(_ORDER.where(payment_order.c.id == order_id))).first()
        if row is None:
            return Response(b"{}", status_code=404, media_type="application/json")
        body = {"status": row.status, "amount": str(row.amount), "addressId": row.address_id}
        return Response(json.dumps(body).encode(), media_type="application/json")

    return app
