"""The JSON-RPC client: against anvil for answers, against a scripted server for faults."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from chains.rpc import RpcClient, RpcResponseError, RpcTransportError, redact_url
from tests.fixtures.devnet import Devnet
from tests.fixtures.receivers.http import PostReceiver, Reply


class Scripted(PostReceiver):
    """An HTTP server answering each POST with the next scripted (status, body, delay)."""

    def __init__(self, script: list[tuple[int, bytes, float]]) -> None:
        self.script = script
        self.requests: list[bytes] = []
        super().__init__(self._answer)
        self.url = f"http://127.0.0.1:{self.port}"

    def _answer(self, _headers: dict[str, str], body: bytes) -> Reply:
        self.requests.append(body)
        status, answer, delay = self.script[min(len(self.requests), len(self.script)) - 1]
        return Reply(status, body=answer, delay=delay)


@pytest.fixture
def scripted() -> Iterator[type[Scripted]]:
    servers: list[Scripted] = []

    def start(script: list[tuple[int, bytes, float]]) -> Scripted:
        servers.append(Scripted(script))
        return servers[-1]

    yield start  # type: ignore[misc]
    for server in servers:
        server.close()


def ok(result: object) -> bytes:
    return orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": result})


async def test_call_and_batch_against_anvil(devnet: Devnet) -> None:
    client = RpcClient(devnet.url)
    try:
        head = int(await client.call("eth_blockNumber", []), 16)
        blocks = await client.batch([("eth_getBlockByNumber", [hex(n), False]) for n in (0, head)])
        assert [int(b["number"], 16) for b in blocks] == [0, head]
        with pytest.raises(RpcResponseError) as raised:
            await client.call("eth_noSuchMethod", [])
        assert raised.value.code != 0
    finally:
        await client.close()


async def test_transport_faults_are_retried_with_backoff(scripted) -> None:
    server = scripted([(503, b"busy", 0.0), (200, b"<html>garbage", 0.0), (200, ok("0x10"), 0.0)])
    client = RpcClient(server.url, attempts=3, backoff=0.01)
    try:
        assert await client.call("eth_blockNumber", []) == "0x10"
    finally:
        await client.close()
    assert len(server.requests) == 3


async def test_retries_are_bounded(scripted) -> None:
    server = scripted([(429, b"slow down", 0.0)])
    client = RpcClient(server.url, attempts=3, backoff=0.01)
    try:
        with pytest.raises(RpcTransportError, match="HTTP 429"):
            await client.call("eth_blockNumber", [])
    finally:
        await client.close()
    assert len(server.requests) == 3


async def test_a_json_rpc_error_is_the_callers_business_not_retried(scripted) -> None:
    error = orjson.dumps(
        {"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "too many"}}
    )
    server = scripted([(200, error, 0.0)])
    client = RpcClient(server.url, attempts=3, backoff=0.01)
    try:
        with pytest.raises(RpcResponseError, match="too many") as raised:
            await client.call("eth_getLogs", [{}])
    finally:
        await client.close()
    assert raised.value.code == -32005
    assert len(server.requests) == 1


async def test_a_slow_endpoint_times_out(scripted) -> None:
    server = scripted([(200, ok("0x1"), 1.0)])
    client = RpcClient(server.url, timeout=0.2, attempts=2, backoff=0.01)
    try:
        with pytest.raises(RpcTransportError, match="TimeoutError"):
            await client.call("eth_blockNumber", [])
    finally:
        await client.close()


async def test_a_batch_answer_that_does_not_match_is_refused(scripted) -> None:
    server = scripted([(200, orjson.dumps([{"jsonrpc": "2.0", "id": 1, "result": "0x1"}]), 0.0)])
    client = RpcClient(server.url, attempts=1)
    try:
        with pytest.raises(RpcTransportError, match="does not match"):
            await client.batch([("eth_blockNumber", []), ("eth_chainId", [])])
    finally:
        await client.close()


def test_urls_are_redacted_for_logs() -> None:
    assert (
        redact_url("https://user:secret@rpc.example:8545/v2/APIKEY?x=1")
        == "https://rpc.example:8545"
    )
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
