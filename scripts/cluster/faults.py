"""The cluster's faults, each one scripted and checked against chain truth (docs/scaling.md).

Chain truth is the list of token transfers this script itself made on the devnet (their hashes,
recipients and amounts): after every fault the deposit table must hold exactly those, each once,
each announced once as pending and once as confirmed; and the ranges the workers committed (their
"range scanned" lines, with their leadership epoch) must tile the chain with no block written
twice. Each scenario returns its figures; a broken guarantee raises AssertionError.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from scripts.cluster.load import BindLoad, Payer, Receiver, bound_addresses, wait_for
from scripts.cluster.observe import (
    UNIT,
    ChainTruth,
    FaultCheckFailed,
    check_one_writer,
    cursor,
    expect,
    leader,
    query,
    ranges,
    worker_of,
)
from scripts.cluster.topology import CONFIRMATIONS, Cluster
from scripts.devnet import anvil

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


SCENARIOS: dict[str, Callable[[Cluster, ChainTruth], dict[str, Any]]] = {
    "watcher-kill": kill_the_watcher_mid_catch_up,
    "worker-kill-webhooks": kill_a_worker_mid_webhook_burst,
    "api-kill": lambda cluster, _truth: kill_an_api_under_bind_load(cluster),
    "postgres-restart": restart_postgres_under_load,
    "leader-pause": pause_the_lock_holder,
}
