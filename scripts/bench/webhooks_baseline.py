"""The ceiling for `scripts/bench_webhooks.py`: bare client loops to the same `ok` receiver.

    python -m scripts.bench.webhooks_baseline URL [--requests 4000] [--concurrency 4]

No database, no signing, no worker: `--concurrency` tasks POST a ~700-byte body to URL until
`--requests` are answered, once with aiohttp and once with httpx (each with a fresh client,
keep-alive, no redirects). What the worker gets per endpoint can only be less than this.
Prints one JSON object: requests per second and CPU ms per request for each client.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx

BODY = b'{"id":"evt_baseline","data":"' + b"x" * 660 + b'"}'
HEADERS = {"Content-Type": "application/json", "X-PayIn-Delivery-Id": "baseline"}

Post = Callable[[], Awaitable[int]]


async def _loop(post: Post, *, requests: int, concurrency: int) -> dict[str, float]:
    remaining = requests

    async def one_lane() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await post() != 200:
                raise RuntimeError("the baseline receiver did not answer 200")

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one_lane() for _ in range(concurrency)))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {
        "requests_per_second": requests / seconds,
        "cpu_ms_per_request": cpu_seconds / requests * 1000,
    }


async def with_aiohttp(url: str, *, requests: int, concurrency: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as session:

        async def post() -> int:
            async with session.post(
                url, data=BODY, headers=HEADERS, allow_redirects=False
            ) as response:
                await response.read()
                return response.status

        return await _loop(post, requests=requests, concurrency=concurrency)


async def with_httpx(url: str, *, requests: int, concurrency: int) -> dict[str, float]:
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:

        async def post() -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        return await _loop(post, requests=requests, concurrency=concurrency)


async def measure(url: str, *, requests: int, concurrency: int) -> dict[str, Any]:
    return {
        "concurrency": concurrency,
        "requests": requests,
        "aiohttp": await with_aiohttp(url, requests=requests, concurrency=concurrency),
        "httpx": await with_httpx(url, requests=requests, concurrency=concurrency),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("url")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(measure(args.url, requests=args.requests, concurrency=args.concurrency))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
