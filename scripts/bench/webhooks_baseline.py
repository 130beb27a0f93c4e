"""The ceiling for `scripts/bench/webhooks.py`: bare client loops to the same `ok` receiver.

    python -m scripts.bench.webhooks_baseline URL [URL...] [--requests 4000] [--per-url 4]

No database, no signing, no worker: `--per-url` tasks per URL (the worker's PER_ENDPOINT) POST
a ~700-byte body until `--requests` are answered in all, once with aiohttp and once with httpx
(each with a fresh client, keep-alive, no redirects; httpx at most HTTPX_REQUESTS, it is slow).
What the worker gets can only be less.
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
HTTPX_REQUESTS = 2000
HEADERS = {"Content-Type": "application/json", "X-PayIn-Delivery-Id": "baseline"}


Post = Callable[[str], Awaitable[int]]


async def _loop(post: Post, urls: list[str], *, requests: int, per_url: int) -> dict[str, float]:
    remaining = requests

    async def one_lane(url: str) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            if await post(url) != 200:
                raise RuntimeError("the baseline receiver did not answer 200")

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(one_lane(url) for url in urls for _ in range(per_url)))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return {
        "requests_per_second": requests / seconds,
        "cpu_ms_per_request": cpu_seconds / requests * 1000,
    }


async def with_aiohttp(urls: list[str], *, requests: int, per_url: int) -> dict[str, float]:
    async with aiohttp.ClientSession() as session:

        async def post(url: str) -> int:
            async with session.post(
                url, data=BODY, headers=HEADERS, allow_redirects=False
            ) as response:
                await response.read()
                return response.status

        return await _loop(post, urls, requests=requests, per_url=per_url)


async def with_httpx(urls: list[str], *, requests: int, per_url: int) -> dict[str, float]:
    async with httpx.AsyncClient(trust_env=False, follow_redirects=False) as client:

        async def post(url: str) -> int:
            response = await client.post(url, content=BODY, headers=HEADERS)
            return response.status_code

        return await _loop(post, urls, requests=requests, per_url=per_url)


async def measure(urls: list[str], *, requests: int, per_url: int) -> dict[str, Any]:
    return {
        "urls": len(urls),
        "per_url": per_url,
        "requests": requests,
        "aiohttp": await with_aiohttp(urls, requests=requests, per_url=per_url),
        "httpx": await with_httpx(urls, requests=min(requests, HTTPX_REQUESTS), per_url=per_url),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--per-url", type=int, default=4)
    args = parser.parse_args()
    result = asyncio.run(measure(args.urls, requests=args.requests, per_url=args.per_url))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
