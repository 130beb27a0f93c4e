"""The watcher against a real anvil node and a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from chains.codec import address_parser
from chains.rpc import RpcClient
from pool.addresses.archive import change_archived
from pool.chain_state.repository import load_cursor
from pool.deposits.payloads import deposit_payload
from pool.deposits.repository import deposits_by_ids
from pool.kit.clock import utc_now
from pool.kit.db import Database
from pool.kit.tables import event
from scripts.devnet import anvil
from tests.chains.harness import CONFIRMATIONS, USDT, Harness, chain_config
from tests.fixtures.devnet import Devnet
from tests.fixtures.helpers import load_pool


async def test_usdt_and_usdc_deposits_go_pending_then_confirmed(harness: Harness) -> None:
    address = await harness.bind("user-1")
    tx_usdt = harness.send(address, 5 * USDT)
    tx_usdc = harness.send(address, 7 * USDT, token=harness.devnet.usdc)
    await harness.poll()
    rows = await harness.deposits()
    assert [(r["currency"], r["amount"], r["status"], r["tx_hash"]) for r in rows] == [
        ("USDT", 5 * USDT, "pending", tx_usdt),
        ("USDC", 7 * USDT, "pending", tx_usdc),
    ]
    assert [e[0] for e in await harness.events()] == ["deposit.pending", "deposit.pending"]

    harness.mine(CONFIRMATIONS - 2)  # the USDC block now has 2 confirmations, USDT 3
    await harness.poll()
    assert [r["status"] for r in await harness.deposits()] == ["confirmed", "pending"]
    harness.mine(1)
    await harness.poll()
    await harness.poll()  # nothing new: no event written twice
    assert [r["status"] for r in await harness.deposits()] == ["confirmed", "confirmed"]
    events = await harness.events()
    assert [e[0] for e in events] == [
        "deposit.pending",
        "deposit.pending",
        "deposit.confirmed",
        "deposit.confirmed",
    ]
    assert all(status == kind.split(".")[1] for kind, _, status in events)


async def test_the_api_shows_confirmations_of_real_deposits(
    harness: Harness, client, service_key
) -> None:
    address = await harness.bind("user-api")
    harness.send(address, 12_340_000)
    await harness.poll()
    harness.mine(1)
    await harness.poll()
    headers = {"Authorization": f"Bearer {service_key}"}
    body = (await client.get("/api/v1/deposits?depositReference=user-api", headers=headers)).json()
    [shown] = body["data"]["deposits"]
    assert shown["amount"] == "12.34"
    assert shown["confirmations"] == 2
    assert shown["requiredConfirmations"] == CONFIRMATIONS
    assert shown["status"] == "pending"
    assert shown["from"] == harness.devnet.sender
    one = (await client.get(f"/api/v1/deposits/{shown['depositId']}", headers=headers)).json()
    assert one["data"]["txHash"] == shown["txHash"]
    health = (await client.get("/health")).json()["checks"]["chains"]["devnet"]
    assert health["head"] == anvil.block_number(harness.devnet.url)
    assert health["cursor"] == health["head"]
    assert health["lag"] == 0


async def test_many_transfers_in_one_block_and_in_one_transaction(harness: Harness) -> None:
    first, second, third = harness.pool[:3]
    url = harness.devnet.url
    anvil.rpc(url, "evm_setAutomine", [False])
    try:
        hashes = [
            anvil.transfer(url, harness.devnet.usdt, to, USDT, wait=False) for to in (first, second)
        ]
        anvil.mine(url, 1)
    finally:
        anvil.rpc(url, "evm_setAutomine", [True])
    batch = anvil.batch_transfer(
        url, harness.devnet.usdc, [first, second, third, first], [n * USDT for n in (1, 2, 3, 4)]
    )
    await harness.poll()
    rows = await harness.deposits()
    assert len({r["block_number"] for r in rows[:2]}) == 1
    assert sorted(r["tx_hash"] for r in rows[:2]) == sorted(hashes)
    in_batch = [r for r in rows if r["tx_hash"] == batch]
    assert [(r["log_index"], r["amount"], r["status"]) for r in in_batch] == [
        (0, 1 * USDT, "pending"),
        (1, 2 * USDT, "pending"),
        (2, 3 * USDT, "pending"),
        (3, 4 * USDT, "pending"),
    ]
    assert len({r["id"] for r in rows}) == 6


async def test_a_failed_transfer_is_no_deposit(harness: Harness) -> None:
    address = await harness.bind("user-2")
    url = harness.devnet.url
    poor = anvil.accounts(url)[5]  # holds no tokens: the transfer reverts on chain
    failed = anvil.send_transfer_expect_revert(url, harness.devnet.usdt, address, USDT, sender=poor)
    assert failed.status == 0
    succeeded = harness.send(address, USDT)
    await harness.poll()
    assert [r["tx_hash"] for r in await harness.deposits()] == [succeeded]


async def test_cooling_down_never_bound_and_archived_addresses(harness: Harness) -> None:
    cooling = await harness.bind("leaver")
    await harness.unbind("leaver")
    bound_addresses = {cooling}
    never_bound = next(a for a in harness.pool if a not in bound_addresses)
    archived = next(a for a in harness.pool if a not in {cooling, never_bound})
    async with harness.db.write() as conn:
        await change_archived(
            conn, parsed=address_parser("evm")(archived), archived=True, actor="t", now=utc_now()
        )
    for to in (cooling, never_bound, archived):
        harness.send(to, 3 * USDT)
    await harness.poll()
    rows = {r["tx_hash"]: r for r in await harness.deposits()}
    by_order = list(rows.values())
    late, unbound, in_archive = by_order
    assert late["binding_id"] is not None and late["late"] is True
    assert unbound["binding_id"] is None and in_archive["binding_id"] is None
    # Only the attributed deposit is announced (invariant 12, docs/design.md), pending then confirmed.
    assert {e[1] for e in await harness.events()} == {late["id"]}
    subjects = {a["subject"] for a in await harness.alerts()}
    assert subjects == {
        f"unattributed_deposit:{unbound['id']}",
        f"unattributed_deposit:{in_archive['id']}",
    }
    harness.mine(CONFIRMATIONS)
    await harness.poll()
    assert {r["status"] for r in await harness.deposits()} == {"confirmed"}
    assert await harness.events() == [
        ("deposit.pending", late["id"], "pending"),
        ("deposit.confirmed", late["id"], "confirmed"),
    ]


async def test_zero_and_below_minimum_transfers_are_dust_without_event(harness: Harness) -> None:
    address = await harness.bind("user-3")
    harness.send(address, 0)
    harness.send(address, 9_999)  # below the 0.01 minimum
    harness.send(address, 10_000)  # exactly the minimum: a deposit
    await harness.poll()
    rows = await harness.deposits()
    assert [(r["amount"], r["status"]) for r in rows] == [
        (0, "dust"),
        (9_999, "dust"),
        (10_000, "pending"),
    ]
    assert [e[1] for e in await harness.events()] == [rows[2]["id"]]
    harness.mine(CONFIRMATIONS)
    await harness.poll()
    assert [r["status"] for r in await harness.deposits()] == ["dust", "dust", "confirmed"]


async def test_reorg_of_a_pending_deposit_reverts_it(harness: Harness) -> None:
    address = await harness.bind("user-4")
    harness.send(address, USDT)
    await harness.poll()
    anvil.reorg(harness.devnet.url, 1)  # the transfer's block is replaced; the tx is gone
    report = await harness.poll()
    assert report.reorgs == 1
    [row] = await harness.deposits()
    assert row["status"] == "reverted"
    assert [e[:2] for e in await harness.events()] == [
        ("deposit.pending", row["id"]),
        ("deposit.reverted", row["id"]),
    ]
    assert await harness.alerts() == []


async def test_reorg_of_a_confirmed_deposit_raises_a_critical_alert(harness: Harness) -> None:
    address = await harness.bind("user-5")
    harness.send(address, USDT)
    harness.mine(CONFIRMATIONS)
    await harness.poll()
    assert (await harness.deposits())[0]["status"] == "confirmed"
    anvil.reorg(harness.devnet.url, CONFIRMATIONS + 1)
    await harness.poll()
    [row] = await harness.deposits()
    assert row["status"] == "reverted"
    [raised] = await harness.alerts()
    assert (raised["kind"], raised["severity"], raised["state"]) == (
        "confirmed_deposit_reverted",
        "critical",
        "firing",
    )
    assert [e[0] for e in await harness.events()][-1] == "deposit.reverted"


async def test_a_transaction_reincluded_by_a_reorg_returns_to_pending_then_confirms_once(
    harness: Harness,
) -> None:
    address = await harness.bind("user-6")
    tx = harness.send(address, 2 * USDT)
    harness.mine(1)
    await harness.poll()
    [before] = await harness.deposits()
    # Both blocks replaced; the transaction comes back one block later. (Re-mined at the same
    # height with the same parent and timestamp, anvil can rebuild the identical block.)
    anvil.reorg(harness.devnet.url, 2, [(tx, 1)])
    await harness.poll_to_head()
    [after] = await harness.deposits()
    assert after["id"] == before["id"]
    assert after["block_number"] == before["block_number"] + 1
    assert after["block_hash"] != before["block_hash"]
    assert after["status"] == "pending"
    harness.mine(CONFIRMATIONS)
    await harness.poll()
    await harness.poll()
    assert (await harness.deposits())[0]["status"] == "confirmed"
    assert [e[0] for e in await harness.events()] == [
        "deposit.pending",
        "deposit.reverted",
        "deposit.pending",
        "deposit.confirmed",
    ]


async def test_a_restarted_watcher_resumes_from_its_cursor(
    harness: Harness, devnet: Devnet
) -> None:
    address = await harness.bind("user-7")
    harness.send(address, USDT)
    await harness.poll()
    async with harness.db.read() as conn:
        stopped_at = (await load_cursor(conn, "devnet")).block_number
    harness.send(address, 2 * USDT)
    harness.send(address, 3 * USDT)
    # A new process: fresh address book and client; same database, same chain settings.
    restarted = Harness(harness.db, devnet, harness.pool, harness.chain)
    try:
        report = await restarted.poll()
        await restarted.poll()
    finally:
        await restarted.client.close()
    assert report.blocks == anvil.block_number(devnet.url) - stopped_at
    rows = await harness.deposits()
    assert [r["amount"] for r in rows] == [USDT, 2 * USDT, 3 * USDT]
    events = await harness.events()
    assert len(set(events)) == len(events)  # nothing announced twice
    assert sorted(e[1] for e in events if e[0] == "deposit.pending") == sorted(
        r["id"] for r in rows
    )


async def test_a_rescanned_range_records_nothing_twice(harness: Harness) -> None:
    address = await harness.bind("user-8")
    harness.send(address, USDT)
    await harness.poll()
    rescan = Harness(harness.db, harness.devnet, harness.pool, harness.chain)
    async with harness.db.write() as conn:  # move the cursor back by hand, as a rescan would
        from pool.chain_state.repository import move_cursor

        start = harness.chain.start_block
        assert start is not None
        await move_cursor(
            conn,
            chain_id="devnet",
            block_number=start - 1,
            block_hash=anvil.block_hash(harness.devnet.url, start - 1),
            now=utc_now(),
        )
    try:
        await rescan.poll()
    finally:
        await rescan.client.close()
    assert len(await harness.deposits()) == 1
    assert len(await harness.events()) == 1


async def test_addresses_imported_later_are_watched(harness: Harness) -> None:
    await harness.poll()
    [late_comer] = await load_pool(harness.db, "evm", 1)
    harness.send(late_comer, USDT)
    await harness.poll()
    assert [r["amount"] for r in await harness.deposits()] == [USDT]


class FailingOnce(RpcClient):
    """A node that drops the connection once in the middle of a range (after its logs)."""

    def __init__(self, url: str) -> None:
        super().__init__(url, attempts=1)
        self.logs_read = False
        self.failed = False

    async def call(self, method: str, params: list[Any]) -> Any:
        self.logs_read = self.logs_read or method == "eth_getLogs"
        return await super().call(method, params)

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        if self.logs_read and not self.failed:
            self.failed = True
            from chains.rpc import RpcTransportError

            raise RpcTransportError(self.endpoint, "connection reset")
        return await super().batch(calls)


async def test_a_range_that_fails_midway_leaves_the_cursor_and_loses_nothing(
    db: Database, devnet: Devnet
) -> None:
    from chains.rpc import RpcError

    pool = await load_pool(db, "evm", 5)
    chain = chain_config(devnet)
    harness = Harness(db, devnet, pool, chain, client=FailingOnce(devnet.url))
    for n in range(3):
        harness.send(await harness.bind(f"user-{n}"))
    try:
        with pytest.raises(RpcError, match="connection reset"):
            await harness.poll()
        async with db.read() as conn:
            cursor = await load_cursor(conn, "devnet")
        assert cursor is not None and cursor.block_number == chain.start_block - 1
        assert await harness.deposits() == []
        await harness.poll()
    finally:
        await harness.client.close()
    assert len(await harness.deposits()) == 3
    assert [e[0] for e in await harness.events()].count("deposit.pending") == 3


async def test_a_deposit_first_seen_deep_is_confirmed_at_once_with_both_events(
    harness: Harness,
) -> None:
    """A catch-up records a deposit already at depth as confirmed in the range's transaction;
    receivers still hear `pending` then `confirmed`, and each payload is the deposit object
    as read back from the database at that step."""
    address = await harness.bind("deep-1")
    harness.send(address, 4 * USDT)
    harness.mine(CONFIRMATIONS + 2)
    report = await harness.poll()
    assert (report.deposits, report.confirmed) == (1, 1)
    [row] = await harness.deposits()
    assert row["status"] == "confirmed" and row["confirmed_at"] is not None
    async with harness.db.read() as conn:
        events = (
            await conn.execute(select(event.c.type, event.c.data).order_by(event.c.seq))
        ).all()
        stored = deposit_payload((await deposits_by_ids(conn, [row["id"]]))[row["id"]])
    deposit_events = [(kind, data) for kind, data in events if "depositId" in data]
    assert [kind for kind, _ in deposit_events] == ["deposit.pending", "deposit.confirmed"]
    pending, confirmed = (data for _, data in deposit_events)
    assert confirmed == stored
    assert pending == {**stored, "status": "pending", "confirmedAt": None}
    await harness.poll()  # nothing left for the confirmation pass
    assert len(await harness.events()) == 2


async def test_an_unattributed_deposit_first_seen_deep_is_confirmed_silently(
    harness: Harness,
) -> None:
    spare = harness.pool[-1]
    harness.send(spare, 2 * USDT)
    harness.mine(CONFIRMATIONS + 2)
    await harness.poll()
    [row] = await harness.deposits()
    assert (row["status"], row["binding_id"]) == ("confirmed", None)
    assert await harness.events() == []
    assert [a["kind"] for a in await harness.alerts()] == ["unattributed_deposit"]
