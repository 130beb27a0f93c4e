from datetime import timedelta

import httpx
from sqlalchemy import update

from api.app import create_app
from pool.chain_state.repository import Cursor, create_cursor
from pool.kit.clock import utc_now
from pool.kit.config import ChainSettings, Settings
from pool.kit.tables import chain_cursor


async def test_health_reports_healthy(client) -> None:
    response = await client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "healthy" and body["checks"]["database"] == "ok"
    assert body["version"] and body["timestamp"].endswith("Z")


async def test_health_is_503_when_the_database_is_unreachable(tmp_path) -> None:
    settings = Settings(database_url="postgresql://postgres@127.0.0.1:1/nothing")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/health")
    assert response.status_code == 503 and response.json()["status"] == "unhealthy"


async def test_openapi_docs_are_served(client) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    assert "/api/v1/deposits/bind" in spec["paths"]


def _sepolia(rpc: bool) -> ChainSettings:
    return ChainSettings(rpc_urls=["http://127.0.0.1:1"] if rpc else [])


async def _health(settings: Settings, db) -> dict:
    app = create_app(settings, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/health")
    await app.state.ctx.pool_alerts.close()
    assert response.status_code == 200  # degraded still serves binds
    return response.json()


async def test_a_configured_chain_without_rpc_url_is_degraded(settings, db) -> None:
    configured = settings.model_copy(update={"chains": {"ethereum-sepolia": _sepolia(False)}})
    body = await _health(configured, db)
    assert body["status"] == "degraded"
    assert body["problems"] == ["chain ethereum-sepolia is not watched: no RPC URL configured"]


async def test_presets_nobody_configured_are_no_problem(settings, db) -> None:
    body = await _health(settings, db)
    assert body["status"] == "healthy" and body["problems"] == []
    assert body["checks"]["chains"]["ethereum-sepolia"]["watched"] is False


async def test_a_watched_chain_no_watcher_reports_on_is_degraded(settings, db) -> None:
    """`addrpool api` without any `addrpool worker`: configured, never watched."""
    configured = settings.model_copy(update={"chains": {"ethereum-sepolia": _sepolia(True)}})
    body = await _health(configured, db)
    assert body["status"] == "degraded"
    [problem] = body["problems"]
    assert problem.startswith("chain ethereum-sepolia is not watched yet")


async def test_a_silent_watcher_is_degraded_and_a_live_one_healthy(settings, db) -> None:
    configured = settings.model_copy(update={"chains": {"ethereum-sepolia": _sepolia(True)}})
    now = utc_now()
    cursor = Cursor("ethereum-sepolia", 10, "0x" + "0" * 64, 12, 12, None, now, now)
    async with db.write() as conn:
        await create_cursor(conn, cursor)
    assert (await _health(configured, db))["status"] == "healthy"
    async with db.write() as conn:
        await conn.execute(
            update(chain_cursor).values(
                head_at=now - timedelta(hours=1), updated_at=now - timedelta(hours=1)
            )
        )
    body = await _health(configured, db)
    assert body["status"] == "degraded"
    assert body["problems"][0].startswith("chain ethereum-sepolia: its watcher has been silent")
