"""The load the faults run under (docs/scaling.md): binds through the load balancer, token
transfers from the devnet's payer, and a webhook receiver slow enough to keep deliveries in
flight."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from scripts.cluster.observe import DEADLINE, UNIT, ChainTruth, expect, query
from scripts.cluster.topology import Cluster

# -- load -----------------------------------------------------------------------------------


@dataclass
class BindLoad:
    """Client threads binding fresh references through the load balancer, each retrying a
    failed bind (no answer, or a 5xx) with the same reference until it gets one."""

    cluster: Cluster
    clients: int = 8
    tag: str = "load"
    answers: dict[str, set[str]] = field(default_factory=dict)
    completed: list[float] = field(default_factory=list)  # monotonic time of each success
    errors: list[tuple[float, str]] = field(default_factory=list)
    retries: int = 0
    refused: list[str] = field(default_factory=list)  # answers no retry could change
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> BindLoad:
        for n in range(self.clients):
            thread = threading.Thread(target=self._client, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=DEADLINE)

    def _client(self, n: int) -> None:
        headers = {"Authorization": f"Bearer {self.cluster.api_key}"}
        with httpx.Client(base_url=self.cluster.base_url, headers=headers, timeout=30) as http:
            i = 0
            while not self._stop.is_set():
                reference = f"{self.tag}-{n}-{i}"
                try:
                    self._bind(http, reference)
                except AssertionError as refused:  # for `check` to report: a thread's would be lost
                    self.refused.append(str(refused))
                    return
                i += 1

    def _bind(self, http: httpx.Client, reference: str) -> None:
        """Until it is answered or the load stops (a bind left unanswered is not checked)."""
        body = {"depositReference": reference, "protocol": "evm"}
        while not self._stop.is_set():
            try:
                answer = http.post("/api/v1/deposits/bind", json=body)
            except httpx.HTTPError as exc:
                self._failed(f"{type(exc).__name__}")
                continue
            if answer.status_code in (200, 201):
                with self._lock:
                    self.answers.setdefault(reference, set()).add(answer.json()["data"]["address"])
                    self.completed.append(time.monotonic())
                return
            self._failed(str(answer.status_code))
            # An empty pool answers 503 too, and would be retried for ever: the cluster was
            # given too few addresses for the load, which is the scenario's fault, not a pause.
            if answer.status_code < 500 or "INSUFFICIENT_ADDRESSES" in answer.text:
                raise AssertionError(f"bind answered {answer.status_code}: {answer.text}")

    def _failed(self, what: str) -> None:
        with self._lock:
            self.errors.append((time.monotonic(), what))
            self.retries += 1
        time.sleep(0.1)

    def check(self) -> dict[str, int]:
        """Every reference got one address, however often retried; no address went to two."""
        expect(not self.refused, f"binds refused: {self.refused[:3]}")
        for reference, addresses in self.answers.items():
            expect(len(addresses) == 1, f"{reference} was answered with {addresses}")
        given = Counter(next(iter(a)) for a in self.answers.values())
        twice = [address for address, count in given.items() if count > 1]
        expect(not twice, f"addresses given to two references: {twice[:5]}")
        rows = query(
            self.cluster,
            "SELECT b.deposit_reference, a.address FROM binding b JOIN address a"
            " ON a.id = b.address_id WHERE b.deposit_reference LIKE $1",
            f"{self.tag}-%",
        )
        stored = {r["deposit_reference"]: r["address"] for r in rows}
        expect(len(stored) == len(rows), "a reference bound twice")
        for reference, addresses in self.answers.items():
            expect(stored[reference] in addresses, (reference, stored.get(reference), addresses))
        statuses = Counter(what for _, what in self.errors)
        return {
            "binds": len(self.answers),
            "retries": self.retries,
            "5xx": sum(n for what, n in statuses.items() if what.startswith("5")),
            "500": statuses["500"],  # a fault: never expected, whatever the fault
            "503": statuses["503"],  # the database out of reach for a moment: retry
        }

    def longest_pause(self, since: float) -> float:
        """The longest wait, from `since` on, between one completed bind and the next: how long
        binds stopped for a fault."""
        moments = sorted(t for t in self.completed if t >= since)
        expect(len(moments) > 1, "no bind completed after the fault")
        return max(b - a for a, b in zip(moments, moments[1:], strict=False))


@dataclass
class Payer:
    """Transfers to bound addresses from a thread, one every `every` seconds, until stopped."""

    cluster: Cluster
    truth: ChainTruth
    recipients: list[str]
    every: float = 0.2
    failure: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Payer:
        self._thread = threading.Thread(target=self._pay, daemon=True)
        self._thread.start()
        return self

    def _pay(self) -> None:
        rng = random.Random(15)  # noqa: S311 (amounts, not secrets)
        try:
            while not self._stop.wait(self.every):
                amount = rng.randint(1, 50) * UNIT
                self.truth.send(self.cluster, rng.choice(self.recipients), amount)
        except BaseException as exc:  # reported by stop(), in the caller's thread
            self.failure = exc

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=DEADLINE)
        expect(self.failure is None, f"a transfer failed: {self.failure!r}")


def bound_addresses(cluster: Cluster, tag: str, count: int) -> list[str]:
    headers = {"Authorization": f"Bearer {cluster.api_key}"}
    found = []
    with httpx.Client(base_url=cluster.base_url, headers=headers, timeout=30) as http:
        for n in range(count):
            body = {"depositReference": f"{tag}-payer-{n}", "protocol": "evm"}
            answer = http.post("/api/v1/deposits/bind", json=body)
            answer.raise_for_status()
            found.append(answer.json()["data"]["address"])
    return found


def wait_for(check: Callable[[], bool], what: str, deadline: float = DEADLINE) -> float:
    """Seconds it took for `check` to hold (polled every 50 ms)."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > deadline:
            raise TimeoutError(f"waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - start


class Receiver:
    """A webhook endpoint on loopback that notes each event id it receives, answering 200
    after `delay` (so that deliveries are in flight when a worker dies)."""

    def __init__(self, delay: float) -> None:
        received: list[str] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                time.sleep(delay)
                received.append(json.loads(body)["id"])
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
