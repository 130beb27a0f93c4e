"""The cluster's faults, each one scripted and checked against chain truth (docs/scaling.md).

Chain truth is the list of token transfers this script itself made on the devnet (their hashes,
recipients and amounts): after every fault the deposit table must hold exactly those, each once,
each announced once as pending and once as confirmed; and the ranges the workers committed (their
"range scanned" lines, with their leadership epoch) must tile the chain with no block written
twice. Each scenario returns its figures; a broken guarantee raises AssertionError.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import asyncpg
import httpx

from scripts.cluster.topology import CHAIN_ID, CONFIRMATIONS, Cluster, Process
from scripts.devnet import anvil

DEADLINE = 120.0


class FaultCheckFailed(AssertionError):
    """A guarantee the fault broke (or a step that did not happen in time)."""


def expect(condition: object, detail: object = "") -> None:
    if not condition:
        raise FaultCheckFailed(detail)


UNIT = 10**6  # one token (6 decimals)


# -- what the cluster holds, and the chain truth --------------------------------------------


def query(cluster: Cluster, sql: str, *args: Any) -> list[asyncpg.Record]:
    """One query straight to the server (not through the pooler, not through addrpool)."""

    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(cluster.direct_url, timeout=5)
        try:
            return list(await conn.fetch(sql, *args))
        finally:
            await conn.close()

    return asyncio.run(run())


def leader(cluster: Cluster) -> tuple[int, int] | None:
    """(epoch, pid) of the chain's current leadership."""
    rows = query(cluster, "SELECT epoch, holder FROM chain_leader WHERE chain_id = $1", CHAIN_ID)
    if not rows:
        return None
    return int(rows[0]["epoch"]), int(rows[0]["holder"].rsplit(":", 1)[1])


def cursor(cluster: Cluster) -> int:
    rows = query(cluster, "SELECT block_number FROM chain_cursor WHERE chain_id = $1", CHAIN_ID)
    return int(rows[0]["block_number"]) if rows else -1


def worker_of(cluster: Cluster, pid: int) -> Process:
    [found] = [w for w in cluster.worker_processes if w.alive() and w.pid == pid]
    return found


@dataclass
class Transfer:
    tx_hash: str
    to: str
    amount: int


@dataclass
class ChainTruth:
    """Every transfer made to a pool address, in the order made."""

    transfers: list[Transfer] = field(default_factory=list)

    def send(self, cluster: Cluster, to: str, amount: int) -> None:
        tx = anvil.transfer(cluster.rpc_url, cluster.token, to, amount)
        self.transfers.append(Transfer(tx, to.lower(), amount))

    def settled(self, cluster: Cluster) -> bool:
        """Every transfer recorded and confirmed, and the cursor at the chain's head."""
        rows = query(
            cluster, "SELECT tx_hash FROM deposit WHERE status IN ('confirmed', 'completed')"
        )
        confirmed = {r["tx_hash"] for r in rows}
        head = anvil.block_number(cluster.rpc_url)
        return cursor(cluster) == head and confirmed >= {t.tx_hash for t in self.transfers}

    def wait_settled(self, cluster: Cluster, deadline: float = DEADLINE) -> None:
        anvil.mine(cluster.rpc_url, CONFIRMATIONS)
        cluster.until(lambda: self.settled(cluster), "every deposit confirmed", deadline)

    def check(self, cluster: Cluster) -> int:
        """The deposits are exactly the transfers, each announced once per kind; returns how
        many."""
        rows = query(
            cluster,
            "SELECT d.tx_hash, lower(a.address) AS address, d.amount::text AS amount"
            " FROM deposit d JOIN address a ON a.id = d.address_id",
        )
        recorded = Counter((r["tx_hash"], r["address"], int(r["amount"])) for r in rows)
        made = Counter((t.tx_hash, t.to, t.amount) for t in self.transfers)
        expect(recorded == made, f"deposits unlike the chain: {recorded - made} {made - recorded}")
        events = query(cluster, "SELECT type, data->>'depositId' AS id FROM event")
        announced = Counter((e["type"], e["id"]) for e in events if e["id"] is not None)
        expect(set(announced.values()) <= {1}, "a deposit announced twice")
        kinds = Counter(kind for kind, _ in announced)
        expect(kinds["deposit.pending"] == kinds["deposit.confirmed"] == len(self.transfers), kinds)
        return len(self.transfers)


@dataclass(frozen=True)
class Range:
    start: int
    end: int
    epoch: int
    worker: str


def ranges(cluster: Cluster, since_block: int) -> list[Range]:
    """The ranges every worker logged (after committing them) from `since_block` on."""
    found = []
    for process in cluster.worker_processes:
        for line in process.text().splitlines():
            if '"range scanned"' not in line:
                continue
            try:
                entry = json.loads(line)
            except ValueError:
                continue  # the line being written right now
            if entry["block_from"] >= since_block:
                found.append(
                    Range(entry["block_from"], entry["block_to"], entry["epoch"], process.name)
                )
    return sorted(set(found), key=lambda r: (r.start, r.epoch))


def check_one_writer(cluster: Cluster, since_block: int, killed: str | None = None) -> int:
    """From `since_block` to the head, each block in exactly one committed range, epochs never
    going down along the chain; returns how many epochs wrote.

    A worker killed between a commit and its log line (`killed`) leaves one hole in the logs,
    not in the chain: allowed once, no longer than a range, where its epoch gives way to the next.
    """
    written = ranges(cluster, since_block)
    expect(written, "no range written")
    holes = 0
    for before, after in zip(written, written[1:], strict=False):
        expect(after.epoch >= before.epoch, f"an old epoch wrote after a new one: {before} {after}")
        if after.start == before.end + 1:
            continue
        lost_line = (
            before.worker == killed
            and after.epoch > before.epoch
            and 0 < after.start - before.end - 1 <= cluster.max_block_range
        )
        expect(lost_line and holes == 0, f"two writers or a gap: {before} then {after}")
        holes += 1
    return len({r.epoch for r in written})


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
                self._bind(http, reference)
                i += 1

    def _bind(self, http: httpx.Client, reference: str) -> None:
        body = {"depositReference": reference, "protocol": "evm"}
        while True:
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
            if answer.status_code < 500:
                raise AssertionError(f"bind answered {answer.status_code}: {answer.text}")

    def _failed(self, what: str) -> None:
        with self._lock:
            self.errors.append((time.monotonic(), what))
            self.retries += 1
        time.sleep(0.1)

    def check(self) -> dict[str, int]:
        """Every reference got one address, however often retried; no address went to two."""
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


# -- the faults -----------------------------------------------------------------------------


def kill_the_watcher_mid_catch_up(
    cluster: Cluster, truth: ChainTruth, *, transfers: int = 40, blocks_between: int = 50
) -> dict[str, Any]:
    """1. kill -9 the leading watcher while it catches up a backlog: the standby takes over."""
    since = cursor(cluster) + 1
    recipients = bound_addresses(cluster, f"catchup{since}", 5)
    for n in range(transfers):  # a backlog: transfers spread over thousands of blocks
        truth.send(cluster, recipients[n % len(recipients)], (n + 1) * UNIT)
        anvil.mine(cluster.rpc_url, blocks_between)
    head = anvil.block_number(cluster.rpc_url)
    epoch, pid = _current_leader(cluster)
    wait_for(lambda: cursor(cluster) >= since + (head - since) // 3, "a third of the catch-up")
    at_kill = cursor(cluster)
    killed = worker_of(cluster, pid)
    killed.kill()
    killed_at = time.monotonic()
    takeover = wait_for(lambda: (leader(cluster) or (0, 0))[0] > epoch, "a new leader")
    resumed = wait_for(lambda: cursor(cluster) > at_kill, "the cursor to move again")
    truth.wait_settled(cluster)
    figures = {
        "fault": "kill -9 the watcher mid catch-up",
        "backlog_blocks": head - since + 1,
        "killed_at_block": at_kill,
        "takeover_s": round(takeover, 2),
        "cursor_moving_again_s": round(resumed + takeover, 2),
        "total_s": round(time.monotonic() - killed_at, 1),
        "epochs": check_one_writer(cluster, since, killed=killed.name),
        "deposits_checked": truth.check(cluster),
    }
    cluster.start_worker(cluster.worker_processes.index(killed))
    return figures


def kill_a_worker_mid_webhook_burst(
    cluster: Cluster, truth: ChainTruth, *, deposits: int = 150
) -> dict[str, Any]:
    """2. kill -9 a worker while a burst of webhooks goes out: every event delivered at least
    once."""
    receiver = Receiver(delay=0.02)
    try:
        headers = {"Authorization": f"Bearer {cluster.api_key}"}
        created = httpx.post(
            f"{cluster.base_url}/api/v1/webhooks/endpoints",
            json={"url": receiver.url, "events": ["deposit.pending", "deposit.confirmed"]},
            headers=headers,
            timeout=30,
        )
        created.raise_for_status()
        endpoint = created.json()["data"]["id"]
        since = cursor(cluster) + 1
        recipients = bound_addresses(cluster, f"burst{since}", 10)
        already = len(truth.transfers)
        for n in range(deposits):
            truth.send(cluster, recipients[n % len(recipients)], (n % 50 + 1) * UNIT)
        anvil.mine(cluster.rpc_url, CONFIRMATIONS)
        expected = 2 * (len(truth.transfers) - already)
        wait_for(lambda: len(receiver.received) >= expected // 4, "a quarter of the burst")
        # The worker sending the most: the one whose death leaves the most in flight.
        victim = max(cluster.worker_processes, key=lambda w: w.text().count('"webhook attempt"'))
        victim.kill()
        killed_at = time.monotonic()
        in_flight = in_flight_deliveries(cluster, endpoint)
        truth.wait_settled(cluster)  # every event of the burst written (the leader may be dead)
        wanted = {
            r["id"]
            for r in query(
                cluster,
                "SELECT e.id FROM event e JOIN delivery d ON d.event_seq = e.seq"
                " WHERE d.endpoint_id = $1",
                endpoint,
            )
        }
        expect(len(wanted) == expected, (len(wanted), expected))
        wait_for(lambda: wanted <= set(receiver.received), "every event", 180)
        delivered_after = time.monotonic() - killed_at
        counts = Counter(receiver.received)
        duplicates = sum(n - 1 for n in counts.values())
        # At least once: only what was leased (claimed, not yet recorded: being sent, or sent
        # and waiting to be written) when the worker died may come twice.
        expect(duplicates <= in_flight, (duplicates, in_flight))
        figures = {
            "fault": "kill -9 a worker mid webhook burst",
            "events": expected,
            "in_flight_when_killed": in_flight,
            "duplicates": duplicates,
            "all_delivered_after_kill_s": round(delivered_after, 1),
            "epochs": check_one_writer(cluster, since, killed=victim.name),
            "deposits_checked": truth.check(cluster),
        }
    finally:
        receiver.close()
    cluster.start_worker(cluster.worker_processes.index(victim))
    return figures


def in_flight_deliveries(cluster: Cluster, endpoint: str) -> int:
    """Deliveries leased to a worker and not yet recorded: what a dead worker may send twice."""
    rows = query(
        cluster,
        "SELECT count(*) AS n FROM delivery WHERE endpoint_id = $1 AND status = 'pending'"
        " AND next_attempt_at > now()",
        endpoint,
    )
    return int(rows[0]["n"])


def kill_an_api_under_bind_load(cluster: Cluster, *, seconds: float = 6.0) -> dict[str, Any]:
    """3. kill -9 one API behind the balancer while clients bind through it."""
    load = BindLoad(cluster, tag=f"apikill{time.time_ns()}").start()
    try:
        time.sleep(seconds / 2)
        victim = cluster.api_processes[1]
        victim.kill()
        time.sleep(seconds / 2)
    finally:
        load.stop()
    answered = load.check()
    expect(answered["500"] == 0, answered)
    # No 5xx but from requests the killed API had in hand: at most one per client.
    expect(answered["5xx"] <= load.clients, answered)
    cluster.start_api(1)
    return {"fault": "kill -9 an API under bind load", **answered}


def restart_postgres_under_load(
    cluster: Cluster, truth: ChainTruth, *, seconds: float = 4.0
) -> dict[str, Any]:
    """4. restart PostgreSQL under bind load and deposits: everything reconnects by itself."""
    since = cursor(cluster) + 1
    recipients = bound_addresses(cluster, f"restart{since}", 5)
    load = BindLoad(cluster, tag=f"pgrestart{time.time_ns()}").start()
    payer = Payer(cluster, truth, recipients).start()
    try:
        time.sleep(seconds)
        began = time.monotonic()
        cluster.restart_postgres()
        restarted = time.monotonic() - began
        wait_for(lambda: any(t > began + restarted for t in load.completed), "binds to resume", 10)
        time.sleep(seconds)
    finally:
        load.stop()
        payer.stop()
    truth.wait_settled(cluster)
    for process in [*cluster.api_processes, *cluster.worker_processes]:
        expect(process.alive(), f"{process.name} exited:\n{process.text()[-2000:]}")
    answered = load.check()
    expect(answered["500"] == 0, f"a restart answered 500, not 503: {answered}")
    return {
        "fault": "restart PostgreSQL under load",
        "restart_s": round(restarted, 2),
        "binds_stopped_for_s": round(load.longest_pause(began - 1), 2),
        **answered,
        "epochs": check_one_writer(cluster, since),
        "deposits_checked": truth.check(cluster),
    }


def pause_the_lock_holder(cluster: Cluster, truth: ChainTruth) -> dict[str, Any]:
    """5. SIGSTOP the leader past its lock's idle timeout, then SIGCONT it: it writes nothing."""
    since = cursor(cluster) + 1
    recipients = bound_addresses(cluster, f"pause{since}", 5)
    payer = Payer(cluster, truth, recipients).start()
    try:
        wait_for(lambda: cursor(cluster) > since + 3, "the leader to write")
        epoch, pid = _current_leader(cluster)
        frozen = worker_of(cluster, pid)
        frozen.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        takeover = wait_for(lambda: (leader(cluster) or (0, 0))[0] > epoch, "a new leader", 90)
        at_takeover = cursor(cluster)
        wait_for(lambda: cursor(cluster) > at_takeover + 3, "the new leader to write")
        frozen_for = time.monotonic() - stopped_at
        thawed_at = len(frozen.text())
        frozen.signal(signal.SIGCONT)
        wait_for(lambda: "leadership lost" in frozen.text()[thawed_at:], "the old leader to notice")
        progress = cursor(cluster)
        wait_for(lambda: cursor(cluster) > progress + 3, "the new leader to go on")
    finally:
        payer.stop()
    truth.wait_settled(cluster)
    old_epoch_after_thaw = [
        r
        for r in ranges(cluster, since)
        if r.worker == frozen.name and r.epoch == epoch and r.start > at_takeover
    ]
    expect(
        not old_epoch_after_thaw, f"the paused leader wrote once resumed: {old_epoch_after_thaw}"
    )
    return {
        "fault": "SIGSTOP the lock holder, then SIGCONT",
        "takeover_s": round(takeover, 2),
        "frozen_s": round(frozen_for, 1),
        "epochs": check_one_writer(cluster, since),
        "deposits_checked": truth.check(cluster),
    }


def _current_leader(cluster: Cluster) -> tuple[int, int]:
    wait_for(lambda: leader(cluster) is not None, "a leader")
    held = leader(cluster)
    if held is None:
        raise FaultCheckFailed("the chain's leadership vanished")
    return held


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


SCENARIOS: dict[str, Callable[[Cluster, ChainTruth], dict[str, Any]]] = {
    "watcher-kill": kill_the_watcher_mid_catch_up,
    "worker-kill-webhooks": kill_a_worker_mid_webhook_burst,
    "api-kill": lambda cluster, _truth: kill_an_api_under_bind_load(cluster),
    "postgres-restart": restart_postgres_under_load,
    "leader-pause": pause_the_lock_holder,
}
