import httpx

from api.app import create_app
from pool.kit.config import Settings


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
