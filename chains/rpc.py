"""An async JSON-RPC client over web3's HTTP provider, without web3's result formatting.

web3's formatters cost most of a log scan (docs/performance.md): we hand the provider our
own request bytes, take its raw response bytes and decode them with orjson. Transport faults
(timeouts, connection errors, HTTP 5xx/429, a body that is not JSON) are retried with backoff a
bounded number of times; a JSON-RPC error object is returned to the caller as `RpcResponseError`,
since what it means (range too large, unknown block) is the caller's business.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import time
from typing import Any

import orjson
from aiohttp import ClientError, ClientResponseError, ClientTimeout
from web3 import AsyncHTTPProvider
from web3.types import RPCEndpoint

from pool.kit import metrics

log = logging.getLogger("addrpool.rpc")

# Importing web3 imports py_ecc, which raises the interpreter's recursion limit to 100,000 for
# its own maths (unused here). Past Python's 1,000, the guard that turns a deeply nested JSON
# request body into a RecursionError (a 400) no longer comes before the C stack overflows:
# one ~200 KB body nested 99,000 deep killed `addrpool serve` with SIGSEGV. Put it back.
PYTHON_RECURSION_LIMIT = 1000
sys.setrecursionlimit(min(sys.getrecursionlimit(), PYTHON_RECURSION_LIMIT))


class RpcError(Exception):
    """Anything that kept an RPC call from giving a usable answer."""

    def __init__(self, endpoint: str, message: str) -> None:
        super().__init__(f"{endpoint}: {message}")
        self.endpoint = endpoint


class RpcTransportError(RpcError):
    """The endpoint did not answer usefully: timeout, refused, HTTP error, garbage."""


class RpcResponseError(RpcError):
    """The endpoint answered with a JSON-RPC error object."""

    def __init__(self, endpoint: str, code: int, message: str) -> None:
        super().__init__(endpoint, f"JSON-RPC error {code}: {message}")
        self.code = code
        self.rpc_message = message


class RpcClient:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.url = url
        self._attempts = attempts
        self._backoff = backoff
        self._ids = itertools.count(1)
        # Retries are ours (bounded, logged); the provider's own retry loop is switched off.
        self._provider = AsyncHTTPProvider(
            url,
            request_kwargs={"timeout": ClientTimeout(total=timeout)},
            exception_retry_configuration=None,
        )

    @property
    def endpoint(self) -> str:
        """The URL without credentials or path secrets, fit for logs and `/health`."""
        return redact_url(self.url)

    async def call(self, method: str, params: list[Any]) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        answer = await self._post(method, orjson.dumps(request))
        if not isinstance(answer, dict):
            metrics.count_rpc_error(self.endpoint, "bad_answer")
            raise RpcTransportError(self.endpoint, f"{method}: answer is not a JSON object")
        return self._result(answer)

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """Several calls in one HTTP request; results in the order of `calls`."""
        if not calls:
            return []
        first = next(self._ids)
        self._ids = itertools.count(first + len(calls))
        body = [
            {"jsonrpc": "2.0", "id": first + i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        answer = await self._post("batch", orjson.dumps(body))
        if isinstance(answer, dict):  # a node that refuses batches answers with one error
            self._result(answer)
        if not isinstance(answer, list) or len(answer) != len(calls):
            metrics.count_rpc_error(self.endpoint, "bad_answer")
            raise RpcTransportError(self.endpoint, "batch answer does not match the request")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        return [self._result(by_id.get(first + i, {})) for i in range(len(calls))]

    async def close(self) -> None:
        await self._provider.disconnect()

    async def _post(self, method: str, body: bytes) -> Any:
        for attempt in range(1, self._attempts + 1):
            try:
                return orjson.loads(await self._send(method, body))
            except RpcTransportError as exc:
                if attempt == self._attempts:
                    raise
                delay = self._backoff * 2 ** (attempt - 1)
                log.warning(
                    "rpc retry",
                    extra={"endpoint": self.endpoint, "method": method, "error": str(exc)},
                )
                await asyncio.sleep(delay)
            except orjson.JSONDecodeError as exc:
                metrics.count_rpc_error(self.endpoint, "invalid_json")
                if attempt == self._attempts:
                    raise RpcTransportError(self.endpoint, f"{method}: not JSON") from exc
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, method: str, body: bytes) -> bytes:
        started = time.perf_counter()
        try:
            # The provider's raw POST: our bytes in, the endpoint's bytes out, no formatting.
            raw: bytes = await self._provider._make_request(RPCEndpoint(method), body)
        except ClientResponseError as exc:
            metrics.count_rpc_error(self.endpoint, "http")
            raise RpcTransportError(self.endpoint, f"{method}: HTTP {exc.status}") from exc
        except (ClientError, TimeoutError, OSError) as exc:
            # aiohttp's timeouts are ClientErrors too; they are told apart for the operator.
            kind = "timeout" if isinstance(exc, TimeoutError) else "connection"
            metrics.count_rpc_error(self.endpoint, kind)
            raise RpcTransportError(self.endpoint, f"{method}: {type(exc).__name__}") from exc
        finally:
            # Failures too: a slow endpoint that times out is exactly what the latency shows.
            metrics.observe_rpc_request(self.endpoint, method, time.perf_counter() - started)
        return raw

    def _result(self, answer: dict[str, Any]) -> Any:
        error = answer.get("error")
        if error is not None:
            metrics.count_rpc_error(self.endpoint, "rpc_error")
            if isinstance(error, dict):
                code, message = error.get("code", 0), str(error.get("message", ""))
                raise RpcResponseError(self.endpoint, int(code), message)
            raise RpcResponseError(self.endpoint, 0, str(error))
        if "result" not in answer:
            metrics.count_rpc_error(self.endpoint, "bad_answer")
            raise RpcTransportError(self.endpoint, "answer has neither result nor error")
        return answer["result"]


def redact_url(url: str) -> str:
    """Scheme, host and port only: RPC URLs often carry an API key in the path or query."""
    scheme, _, rest = url.partition("://")
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    return f"{scheme}://{host}" if rest else url
