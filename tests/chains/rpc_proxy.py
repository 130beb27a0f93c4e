"""A JSON-RPC proxy in front of anvil that misbehaves on demand: the faults real endpoints show
(range caps, throttling, garbage, a node without its log index, a failed Tron transaction that
kept its logs) but a healthy local node never produces."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from tests.fixtures.receivers.http import PostReceiver, Reply

TOO_MANY = {"code": -32005, "message": "query returned more than 10000 results"}


class RpcProxy(PostReceiver):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.max_log_range: int | None = None
        self.status: int | None = None
        self.garbage = False
        self.empty_logs = False
        self.failed_receipts: set[str] = set()
        self.refused_methods: set[str] = set()  # answered "method not found", as nodes do
        self.methods: list[str] = []  # every method asked, in order
        self.single: list[str] = []  # the methods asked alone, not in a batch
        self.full_blocks = 0  # eth_getBlockByNumber asked for whole transactions
        self.log_ranges: list[int] = []
        self._http = httpx.Client(trust_env=False, timeout=10)
        super().__init__(self._reply)
        self.url = f"http://127.0.0.1:{self.port}"

    def _reply(self, _headers: dict[str, str], body: bytes) -> Reply:
        status, answer = self.answer(body)
        return Reply(status, {"Content-Type": "application/json"}, answer)

    def answer(self, body: bytes) -> tuple[int, bytes]:
        if self.status is not None:
            return self.status, b'{"error": "rate limited"}'
        if self.garbage:
            return 200, b"<html>502 Bad Gateway</html>"
        request = orjson.loads(body)
        if isinstance(request, list):
            return 200, orjson.dumps([self._one(item) for item in request])
        self.single.append(request["method"])
        return 200, orjson.dumps(self._one(request))

    def _one(self, request: dict[str, Any]) -> dict[str, Any]:
        method = request["method"]
        self.methods.append(method)
        if method == "eth_getBlockByNumber" and request["params"][1] is True:
            self.full_blocks += 1
        if method in self.refused_methods:
            error = {"code": -32601, "message": f"the method {method} does not exist"}
            return {"jsonrpc": "2.0", "id": request["id"], "error": error}
        if method == "eth_getLogs":
            query = request["params"][0]
            blocks = int(query["toBlock"], 16) - int(query["fromBlock"], 16) + 1
            self.log_ranges.append(blocks)
            if self.max_log_range is not None and blocks > self.max_log_range:
                return {"jsonrpc": "2.0", "id": request["id"], "error": TOO_MANY}
            if self.empty_logs:
                return {"jsonrpc": "2.0", "id": request["id"], "result": []}
        answer: dict[str, Any] = self._http.post(self.upstream, json=request).json()
        receipt = answer.get("result") if method == "eth_getTransactionReceipt" else None
        if receipt and receipt["transactionHash"] in self.failed_receipts:
            receipt["status"] = "0x0"  # logs kept, as java-tron does
        return answer

    def close(self) -> None:
        super().close()
        self._http.close()
