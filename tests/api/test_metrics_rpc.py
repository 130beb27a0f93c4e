"""RPC metrics on `/metrics`: a real anvil call moves them, a dead endpoint moves the errors,
and no label ever carries an RPC URL's secret path."""

from __future__ import annotations

import pytest

from chains.rpc import RpcClient, RpcResponseError, RpcTransportError, redact_url
from tests.api.test_metrics import scrape, value
from tests.fixtures.devnet import Devnet
from tests.fixtures.server import free_port


async def test_rpc_requests_and_latency_move_when_a_client_calls_anvil(
    client, devnet: Devnet
) -> None:
    endpoint = redact_url(devnet.url)
    before = await scrape(client)
    rpc = RpcClient(devnet.url)
    try:
        await rpc.call("eth_blockNumber", [])
        await rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        with pytest.raises(RpcResponseError):
            await rpc.call("eth_noSuchMethod", [])
    finally:
        await rpc.close()
    after = await scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("addrpool_rpc_requests_total", endpoint=endpoint, method="eth_blockNumber") == 1
    assert moved("addrpool_rpc_requests_total", endpoint=endpoint, method="batch") == 1
    assert moved("addrpool_rpc_requests_total", endpoint=endpoint, method="eth_noSuchMethod") == 1
    assert moved("addrpool_rpc_errors_total", endpoint=endpoint, kind="rpc_error") == 1
    assert moved("addrpool_rpc_errors_total", endpoint=endpoint, kind="connection") == 0
    assert moved("addrpool_rpc_request_duration_seconds_count", endpoint=endpoint) == 3
    assert moved("addrpool_rpc_request_duration_seconds_sum", endpoint=endpoint) > 0


async def test_a_dead_endpoint_moves_the_error_counter_without_leaking_its_key(client) -> None:
    secret_url = f"http://127.0.0.1:{free_port()}/v3/sekrit-api-key-123?token=also-secret"
    endpoint = redact_url(secret_url)
    before = await scrape(client)
    rpc = RpcClient(secret_url, attempts=2, backoff=0.01)
    try:
        with pytest.raises(RpcTransportError):
            await rpc.call("eth_blockNumber", [])
    finally:
        await rpc.close()
    response = await client.get("/metrics")
    after = await scrape(client)

    assert (
        value(after, "addrpool_rpc_errors_total", endpoint=endpoint, kind="connection")
        - value(before, "addrpool_rpc_errors_total", endpoint=endpoint, kind="connection")
        == 2
    )  # both attempts
    assert (
        value(after, "addrpool_rpc_requests_total", endpoint=endpoint, method="eth_blockNumber")
        - value(before, "addrpool_rpc_requests_total", endpoint=endpoint, method="eth_blockNumber")
        == 2
    )
    assert "sekrit" not in response.text and "also-secret" not in response.text


async def test_each_fault_is_counted_by_its_kind(client) -> None:
    # Faults a real node does not produce on demand: the scripted server of the RPC tests.
    from tests.chains.test_rpc import Scripted

    server = Scripted([(503, b"busy", 0.0), (200, b"not json", 0.0), (200, b"{}", 1.0)])
    endpoint = redact_url(server.url)
    rpc = RpcClient(server.url + "/key", timeout=0.3, attempts=3, backoff=0.01)
    try:
        with pytest.raises(RpcTransportError):
            await rpc.call("eth_getLogs", [])
    finally:
        await rpc.close()
        server.close()
    samples = await scrape(client)

    kinds = {
        kind: value(samples, "addrpool_rpc_errors_total", endpoint=endpoint, kind=kind)
        for kind in ("http", "invalid_json", "timeout", "connection", "rpc_error")
    }
    assert kinds == {"http": 1, "invalid_json": 1, "timeout": 1, "connection": 0, "rpc_error": 0}
    assert (
        value(samples, "addrpool_rpc_requests_total", endpoint=endpoint, method="eth_getLogs") == 3
    )
