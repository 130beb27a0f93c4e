"""Webhook receivers for `scripts/bench/webhooks.py`: one process, one port per receiver.

    python -m scripts.bench.webhooks_receiver --modes ok,ok,hang,record --ready FILE

Each port answers POST according to its mode: `ok` at once with 200, `hang` with 200 after
`--hang-seconds` (a dead endpoint: the sender gives up first), `record` at once and keeps the
request (arrival time, event type, parsed body) for latency measurements. Any GET answers the
counters of every port as JSON (`/_stats`, or `/_reset` to clear them first). Arrival times are
`time.time()` when the whole request has been read, so the parent can compare them with its own
wall-clock moments. uvloop and httptools: the receiver must never be the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httptools
import uvloop

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


@dataclass(slots=True)
class Port:
    mode: str
    number: int = 0
    requests: int = 0
    delivery_ids: set[bytes] = field(default_factory=set)
    first_at: float | None = None
    last_at: float | None = None
    records: list[dict[str, Any]] = field(default_factory=list)

    def note(self, at: float, headers: dict[bytes, bytes], body: bytes) -> None:
        self.requests += 1
        self.delivery_ids.add(headers.get(b"x-payin-delivery-id", b""))
        self.first_at = at if self.first_at is None else self.first_at
        self.last_at = at
        if self.mode == "record":
            self.records.append(
                {
                    "at": at,
                    "type": headers.get(b"x-payin-event-type", b"").decode(),
                    "body": json.loads(body),
                }
            )

    def stats(self) -> dict[str, Any]:
        return {
            "port": self.number,
            "mode": self.mode,
            "requests": self.requests,
            "unique": len(self.delivery_ids),
            "first_at": self.first_at,
            "last_at": self.last_at,
            "records": self.records,
        }

    def reset(self) -> None:
        self.requests, self.first_at, self.last_at = 0, None, None
        self.delivery_ids.clear()
        self.records.clear()


class Connection(asyncio.Protocol):
    """One keep-alive connection; httptools calls the `on_*` methods while parsing."""

    def __init__(self, port: Port, ports: list[Port], hang_seconds: float) -> None:
        self.port = port
        self.ports = ports
        self.hang_seconds = hang_seconds
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # a TCP server's

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._close()

    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", {}, []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        at = time.time()
        if self.parser.get_method() == b"GET":
            self._answer_stats()
            return
        self.port.note(at, self.headers, b"".join(self.body))
        if self.port.mode == "hang":
            asyncio.get_running_loop().call_later(self.hang_seconds, self._answer)
        else:
            self._answer()

    def _answer(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ANSWER)

    def _answer_stats(self) -> None:
        if self.url.startswith(b"/_reset"):
            for port in self.ports:
                port.reset()
        body = json.dumps({"ports": [port.stats() for port in self.ports]}).encode()
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
        if self.transport is not None:
            self.transport.write(head.encode() + b"\r\n\r\n" + body)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def serve(modes: list[str], hang_seconds: float, ready: Path) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(stop_signal, stop.set)
    ports = [Port(mode) for mode in modes]
    servers = []
    for port in ports:
        server = await loop.create_server(
            lambda port=port: Connection(port, ports, hang_seconds),  # type: ignore[misc]
            "127.0.0.1",
            0,
            backlog=1024,
        )
        port.number = server.sockets[0].getsockname()[1]
        servers.append(server)
    # Written last and renamed into place: the parent never reads half a file.
    partial = ready.with_suffix(".partial")
    partial.write_text(json.dumps([port.number for port in ports]))
    partial.rename(ready)
    await stop.wait()
    for server in servers:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--modes", type=lambda text: text.split(","), required=True)
    parser.add_argument("--hang-seconds", type=float, default=30.0)
    parser.add_argument("--ready", type=Path, required=True, help="the ports are written here")
    args = parser.parse_args()
    unknown = set(args.modes) - {"ok", "hang", "record"}
    if unknown:
        raise SystemExit(f"unknown modes: {', '.join(sorted(unknown))}")
    uvloop.run(serve(args.modes, args.hang_seconds, args.ready))


if __name__ == "__main__":
    main()
