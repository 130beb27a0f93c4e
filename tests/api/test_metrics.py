"""`GET /metrics`: parsed with prometheus-client's own text parser, checked against the database."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, insert, select

from api.app import create_app
from pool.alerts.repository import fire_alert, resolve_alert
from pool.chain_state.repository import Cursor, create_cursor
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.tables import address, delivery, deposit, event, webhook_endpoint
from tests.fixtures.helpers import auth, load_pool, make_key

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample by (name, sorted labels); the parser raises on anything malformed."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def pool_gauges(samples: Samples) -> dict[tuple[str, str], int]:
    return {
        (dict(labels)["protocol"], dict(labels)["status"]): int(v)
        for (name, labels), v in samples.items()
        if name == "addrpool_pool_addresses"
    }


async def database_pool_counts(db: Database) -> dict[tuple[str, str], int]:
    """Counted here independently of pool.addresses.stats, as the operator's SQL would."""
    now = utc_now()
    states = ("available", "bound", "allocated", "cooling_down", "archived")
    counts = {(p, s): 0 for p in ("evm", "tron") for s in states}
    async with db.read() as conn:
        rows = await conn.execute(
            select(address.c.protocol, address.c.status, address.c.cooldown_until)
        )
        for protocol, status, cooldown_until in rows:
            if status == "available" and cooldown_until is not None and cooldown_until > now:
                status = "cooling_down"
            counts[(protocol, status)] += 1
    return counts


async def bind(
    client: httpx.AsyncClient, key: str, reference: str, protocol: str = "evm"
) -> httpx.Response:
    body = {"depositReference": reference, "protocol": protocol}
    return await client.post("/api/v1/deposits/bind", json=body, headers=auth(key))


async def unbind(client: httpx.AsyncClient, key: str, reference: str) -> httpx.Response:
    body = {"depositReference": reference, "protocol": "evm"}
    return await client.post("/api/v1/deposits/unbind", json=body, headers=auth(key))


async def test_pool_gauges_equal_the_database_after_binds_unbinds_and_an_archive(
    client, db: Database, admin_key: str
) -> None:
    evm = await load_pool(db, "evm", 30)
    await load_pool(db, "tron", 4)
    bound = [
        (await bind(client, admin_key, f"user_{i}")).json()["data"]["address"] for i in range(5)
    ]
    assert (await bind(client, admin_key, "tron_user", "tron")).status_code == 201
    for reference in ("user_0", "user_1"):
        assert (await unbind(client, admin_key, reference)).status_code == 200
    never_bound = [a for a in evm if a not in bound][:3]
    for text in never_bound:
        response = await client.patch(
            f"/api/v1/address-pool/addresses/{text}/archive", headers=auth(admin_key)
        )
        assert response.status_code == 200, response.text

    samples = await scrape(client)

    assert pool_gauges(samples) == await database_pool_counts(db)
    assert pool_gauges(samples)["evm", "available"] == 30 - 5 - 3
    assert pool_gauges(samples)["evm", "cooling_down"] == 2
    assert pool_gauges(samples)["evm", "bound"] == 3
    assert pool_gauges(samples)["evm", "archived"] == 3
    assert pool_gauges(samples)["tron", "bound"] == 1
    assert value(samples, "addrpool_pool_threshold", protocol="evm") == 200
    assert value(samples, "addrpool_pool_threshold", protocol="tron") == 100


async def test_bind_and_unbind_counters_move_by_exactly_the_requests_made(
    client, db: Database, service_key: str
) -> None:
    await load_pool(db, "evm", 6)
    before = await scrape(client)

    for i in range(4):
        assert (await bind(client, service_key, f"counted_{i}")).status_code == 201
    assert (await bind(client, service_key, "counted_0")).status_code == 200
    assert (await bind(client, service_key, "no_tron_pool", "tron")).status_code == 503
    for reference in ("counted_1", "counted_2", "counted_3"):
        assert (await unbind(client, service_key, reference)).status_code == 200
    assert (await unbind(client, service_key, "never_bound")).status_code == 404

    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("addrpool_binds_total", protocol="evm", outcome="created") == 4
    assert moved("addrpool_binds_total", protocol="evm", outcome="existing") == 1
    assert moved("addrpool_binds_total", protocol="tron", outcome="insufficient") == 1
    assert moved("addrpool_binds_total", protocol="tron", outcome="created") == 0
    assert moved("addrpool_unbinds_total", protocol="evm") == 3


async def _insert_deposits(db: Database, rows: list[tuple[str, str]]) -> None:
    """(chain, status) per deposit, all to one pool address."""
    await load_pool(db, "evm", 1)
    now = utc_now()
    async with db.write() as conn:
        address_id = await conn.scalar(select(func.min(address.c.id)))
        for n, (chain, status) in enumerate(rows):
            await conn.execute(
                insert(deposit).values(
                    id=f"dep_{n:08x}",
                    chain_id=chain,
                    tx_hash=f"0x{n:064x}",
                    log_index=0,
                    block_number=100 + n,
                    block_hash=f"0x{n:064x}",
                    from_address="0x" + "11" * 20,
                    address_id=address_id,
                    token_contract="0x" + "22" * 20,
                    currency="USDT",
                    amount=10**6,
                    decimals=6,
                    status=status,
                    detected_at=now,
                )
            )


async def _insert_deliveries(db: Database, statuses: list[str]) -> None:
    now = utc_now()
    async with db.write() as conn:
        await conn.execute(
            insert(webhook_endpoint).values(
                id="we_metrics",
                url="http://127.0.0.1:9/hook",
                signature_scheme="body",
                secret_encrypted="sealed",
                created_at=now,
                updated_at=now,
            )
        )
        for n, status in enumerate(statuses):
            seq = (
                await conn.execute(
                    insert(event)
                    .values(id=f"evt_{n:08x}", type="deposit.confirmed", data={}, created_at=now)
                    .returning(event.c.seq)
                )
            ).scalar_one()
            await conn.execute(
                insert(delivery).values(
                    id=f"dlv_{n:08x}",
                    event_seq=seq,
                    endpoint_id="we_metrics",
                    status=status,
                    created_at=now,
                    retry_from=now,
                )
            )


async def _raise_alerts(db: Database) -> None:
    now = utc_now()
    async with db.write() as conn:
        for kind, subject in (
            ("pool_low", "pool_low:evm"),
            ("watcher_lagging", "watcher_lagging:ethereum-sepolia"),
            ("watcher_lagging", "watcher_lagging:bsc-testnet"),
            ("deep_reorg", "deep_reorg:ethereum-sepolia"),
        ):
            await fire_alert(
                conn,
                kind=kind,
                subject=subject,
                severity="warning",
                value="1",
                details=None,
                now=now,
            )
        await resolve_alert(conn, subject="deep_reorg:ethereum-sepolia", now=now)


async def _create_cursors(db: Database) -> None:
    now = utc_now()
    async with db.write() as conn:
        for chain, block, head in (("ethereum-sepolia", 100, 112), ("bsc-testnet", 50, None)):
            cursor = Cursor(
                chain, block, "0x" + "ab" * 32, head, 12, None, now, now - timedelta(seconds=30)
            )
            await create_cursor(conn, cursor)


async def test_deposit_delivery_alert_and_watcher_gauges_equal_the_rows(
    client, db: Database
) -> None:
    deposits = [("ethereum-sepolia", "pending")] * 3 + [("ethereum-sepolia", "completed")] * 2
    deposits += [("bsc-testnet", "confirmed"), ("bsc-testnet", "dust")]
    await _insert_deposits(db, deposits)
    await _insert_deliveries(db, ["succeeded"] * 4 + ["failed"] * 2 + ["pending"])
    await _raise_alerts(db)
    await _create_cursors(db)

    samples = await scrape(client)

    def gauge(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        assert key in samples, key
        return samples[key]

    assert gauge("addrpool_deposits", chain="ethereum-sepolia", status="pending") == 3
    assert gauge("addrpool_deposits", chain="ethereum-sepolia", status="completed") == 2
    assert gauge("addrpool_deposits", chain="ethereum-sepolia", status="reverted") == 0
    assert gauge("addrpool_deposits", chain="bsc-testnet", status="confirmed") == 1
    assert gauge("addrpool_deposits", chain="bsc-testnet", status="dust") == 1
    assert sum(v for (n, _), v in samples.items() if n == "addrpool_deposits") == len(deposits)
    assert gauge("addrpool_webhook_deliveries", status="succeeded") == 4
    assert gauge("addrpool_webhook_deliveries", status="failed") == 2
    assert gauge("addrpool_webhook_deliveries", status="pending") == 1
    assert gauge("addrpool_webhook_deliveries", status="cancelled") == 0
    assert gauge("addrpool_alerts_firing", kind="pool_low") == 1
    assert gauge("addrpool_alerts_firing", kind="watcher_lagging") == 2
    assert gauge("addrpool_alerts_firing", kind="deep_reorg") == 0  # resolved
    assert gauge("addrpool_watcher_head_block", chain="ethereum-sepolia") == 112
    assert gauge("addrpool_watcher_cursor_block", chain="ethereum-sepolia") == 100
    assert gauge("addrpool_watcher_lag_blocks", chain="ethereum-sepolia") == 12
    # No head recorded yet: the cursor stands in for it, as in /health.
    assert gauge("addrpool_watcher_head_block", chain="bsc-testnet") == 50
    assert gauge("addrpool_watcher_lag_blocks", chain="bsc-testnet") == 0
    updated = gauge("addrpool_watcher_cursor_updated_timestamp_seconds", chain="bsc-testnet")
    assert abs(updated - (utc_now() - timedelta(seconds=30)).timestamp()) < 30


async def test_an_empty_database_still_exposes_every_pool_and_delivery_series(client) -> None:
    samples = await scrape(client)
    assert len(pool_gauges(samples)) == 10 and not any(pool_gauges(samples).values())
    assert value(samples, "addrpool_webhook_deliveries", status="failed") == 0
    assert ("addrpool_webhook_deliveries", (("status", "failed"),)) in samples


async def test_metrics_can_be_switched_off(settings: Settings, db: Database) -> None:
    app = create_app(settings.model_copy(update={"metrics_enabled": False}), db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        assert (await http.get("/metrics")).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Basic bWV0cmljcy10b2tlbg==", "Bearer ", "metrics-token"],
)
async def test_a_metrics_token_is_required_once_set(
    settings: Settings, db: Database, authorization: str | None
) -> None:
    protected = settings.model_copy(update={"metrics_token": SecretStr("metrics-token")})
    app = create_app(protected, db=db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://addrpool.test") as http:
        headers = {"Authorization": authorization} if authorization else {}
        refused = await http.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["code"] == "METRICS_TOKEN_REQUIRED"
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer metrics-token"})
        assert allowed.status_code == 200
        assert "addrpool_pool_addresses" in allowed.text


async def test_metrics_need_no_api_key_by_default(client, db: Database) -> None:
    await make_key(db, scopes=["admin"])
    assert (await client.get("/metrics")).status_code == 200
