"""An operator attributes an unattributed deposit to a reference, or resolves it as refunded or
ignored (pool.deposits.resolution), on both databases: the events, the alert, the audit
record, and the refusals that write nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from chains.presets import ChainConfig, resolve_chain
from pool.bindings import service as allocation
from pool.deposits import ledger, resolution
from pool.deposits.new_rows import ObservedTransfer, deposit_id
from pool.kit.clock import utc_now
from pool.kit.config import Settings
from pool.kit.db import Database
from pool.kit.errors import AddrpoolError, Conflict, NotFound, ValidationFailed
from pool.kit.secret_box import secret_box
from pool.kit.tables import alert, alert_transition, audit_log, binding, delivery, deposit, event
from pool.reconciliation import repository as recon_repo
from pool.reconciliation.service import check_ledger
from pool.upstream.repository import credited_unannounced
from pool.vocabulary import DEPOSIT_CONFIRMED, DEPOSIT_PENDING
from pool.webhooks import endpoints as webhooks
from tests.fixtures.helpers import load_pool, usdt_transfer
from tests.fixtures.order_rows import add_order, order_events

CHAIN = "devnet"
OPERATOR = "key:ops"
ORDER_TOKEN = "0x" + "33" * 20


async def bind(db: Database, reference: str, protocol: str = "evm") -> str:
    async with db.write() as conn:
        result = await allocation.bind(
            conn, reference=reference, protocol=protocol, metadata=None, actor="t", now=utc_now()
        )
    return result.binding.address


async def record(
    db: Database, transfer: ObservedTransfer, *, confirmed_through: int | None = None
) -> str:
    async with db.write() as conn:
        await ledger.record_transfers(
            conn,
            chain_id=CHAIN,
            protocol="evm",
            transfers=[transfer],
            now=utc_now(),
            confirmed_through=confirmed_through,
        )
    return deposit_id(CHAIN, transfer.tx_hash, transfer.log_index)


async def subscribe(db: Database, settings: Settings) -> None:
    async def work(conn: AsyncConnection) -> None:
        await webhooks.create_endpoint(
            conn,
            secret_box(settings),
            url="https://receiver.example/hook",
            events=[DEPOSIT_PENDING, DEPOSIT_CONFIRMED],
            scheme="body",
            description=None,
            now=utc_now(),
        )

    await db.run_write(work)


async def deposit_events(db: Database) -> list[tuple[str, dict[str, Any], int]]:
    """(type, data, deliveries) of every deposit.pending/confirmed event, oldest first."""
    deliveries = select(func.count()).where(delivery.c.event_seq == event.c.seq).scalar_subquery()
    statement = (
        select(event.c.type, event.c.data, deliveries)
        .where(event.c.type.in_([DEPOSIT_PENDING, DEPOSIT_CONFIRMED]))
        .order_by(event.c.seq)
    )
    async with db.read() as conn:
        return [(row[0], row[1], row[2]) for row in await conn.execute(statement)]


async def snapshot(db: Database, dep: str) -> tuple[Any, ...]:
    """Everything a refused call must leave as it was."""
    async with db.read() as conn:
        counts = [
            await conn.scalar(select(func.count()).select_from(table))
            for table in (event, delivery, audit_log, alert_transition)
        ]
        row = (await conn.execute(select(deposit).where(deposit.c.id == dep))).first()
    return (*counts, None if row is None else tuple(row))


async def alert_state(db: Database, dep: str) -> str:
    async with db.read() as conn:
        states = (
            await conn.execute(
                select(alert.c.state).where(alert.c.subject == f"unattributed_deposit:{dep}")
            )
        ).scalars()
        return ",".join(states)


async def audits(db: Database) -> list[tuple[str, str, str, dict[str, Any]]]:
    """The audit records of deposits (the pool's import wrote its own)."""
    statement = (
        select(audit_log.c.actor, audit_log.c.action, audit_log.c.subject, audit_log.c.details)
        .where(audit_log.c.action.like("deposit.%"))
        .order_by(audit_log.c.id)
    )
    async with db.read() as conn:
        return [tuple(row) for row in await conn.execute(statement)]  # type: ignore[misc]


async def test_a_confirmed_unattributed_deposit_attributed_is_announced_to_its_reference(
    db: Database, settings: Settings
) -> None:
    loaded = await load_pool(db, "evm", 3)
    payer = await bind(db, "payer")
    await subscribe(db, settings)
    spare = next(a for a in loaded if a != payer)
    dep = await record(db, usdt_transfer(spare, "a1"), confirmed_through=10)
    assert await deposit_events(db) == []  # invariant 12: nobody heard of it
    assert await alert_state(db, dep) == "firing"

    done = await resolution.attribute(db, dep, "payer", OPERATOR, "sent to a stale quote")

    assert done.changed and done.events == (DEPOSIT_PENDING, DEPOSIT_CONFIRMED)
    events = await deposit_events(db)
    assert [(t, d["status"], d["depositReference"], n) for t, d, n in events] == [
        (DEPOSIT_PENDING, "pending", "payer", 1),
        (DEPOSIT_CONFIRMED, "confirmed", "payer", 1),
    ]
    confirmed = events[1][1]
    assert confirmed["depositId"] == dep and confirmed["address"] == spare
    assert confirmed["amount"] == "5" and confirmed["late"] is False
    assert confirmed["resolution"]["outcome"] == "attributed"
    assert confirmed["resolution"]["resolvedBy"] == OPERATOR
    assert done.deposit.deposit_reference == "payer" and done.deposit.status == "confirmed"
    assert await alert_state(db, dep) == "resolved"
    [(actor, action, subject, details)] = await audits(db)
    assert (actor, action, subject) == (OPERATOR, "deposit.attribute", dep)
    assert details["depositReference"] == "payer"
    assert details["reason"] == "sent to a stale quote"

    # The same again changes nothing; another reference is refused.
    before = await snapshot(db, dep)
    again = await resolution.attribute(db, dep, "payer", "key:other", "again")
    assert (again.changed, again.events) == (False, ())
    await bind(db, "other")
    before = await snapshot(db, dep)
    with pytest.raises(Conflict) as refused:
        await resolution.attribute(db, dep, "other", OPERATOR, "wrong one")
    assert refused.value.code == "DEPOSIT_ALREADY_ATTRIBUTED"
    assert await snapshot(db, dep) == before


async def test_a_pending_deposit_attributed_is_confirmed_by_the_watcher_once(
    db: Database, settings: Settings
) -> None:
    loaded = await load_pool(db, "evm", 3)
    payer = await bind(db, "payer")
    await subscribe(db, settings)
    spare = next(a for a in loaded if a != payer)
    transfer = usdt_transfer(spare, "b2")
    dep = await record(db, transfer)

    done = await resolution.attribute(db, dep, "payer", OPERATOR, "customer's ticket 7")
    assert done.events == (DEPOSIT_PENDING,) and done.deposit.status == "pending"

    for _ in range(2):  # the watcher's confirmation pass, and a second one that finds nothing
        async with db.write() as conn:
            await ledger.confirm_deposits(conn, verified={dep: transfer.block_hash}, now=utc_now())
    events = await deposit_events(db)
    assert [(t, d["status"], d["depositReference"]) for t, d, _ in events] == [
        (DEPOSIT_PENDING, "pending", "payer"),
        (DEPOSIT_CONFIRMED, "confirmed", "payer"),
    ]
    async with db.read() as conn:
        stored = (await conn.execute(select(deposit).where(deposit.c.id == dep))).one()
        payer_binding = await conn.scalar(
            select(binding.c.id).where(binding.c.deposit_reference == "payer")
        )
    assert (stored.status, stored.binding_id, stored.resolution) == (
        "confirmed",
        payer_binding,
        "attributed",
    )


async def _unattributed(db: Database, tx: str, **changes: Any) -> str:
    loaded = await load_pool(db, "evm", 2)
    payer = await bind(db, "payer")
    spare = next(a for a in loaded if a != payer)
    return await record(db, replace(usdt_transfer(spare, tx), **changes))


async def _refused(
    db: Database, dep: str, call: Any, error: type[AddrpoolError], code: str
) -> None:
    before = await snapshot(db, dep)
    with pytest.raises(error) as refused:
        await call
    assert refused.value.code == code
    assert await snapshot(db, dep) == before


async def test_a_reverted_deposit_is_not_attributed(db: Database) -> None:
    dep = await _unattributed(db, "c3")
    async with db.write() as conn:
        await ledger.revert_above(conn, chain_id=CHAIN, block_number=5, now=utc_now())
    call = resolution.attribute(db, dep, "payer", OPERATOR, "why")
    await _refused(db, dep, call, Conflict, "DEPOSIT_REVERTED")


async def test_dust_is_not_attributed(db: Database) -> None:
    dep = await _unattributed(db, "c4", min_amount=10**9)
    call = resolution.attribute(db, dep, "payer", OPERATOR, "why")
    await _refused(db, dep, call, Conflict, "DEPOSIT_DUST")


async def test_a_reference_without_an_active_binding_on_the_protocol_is_refused(
    db: Database,
) -> None:
    dep = await _unattributed(db, "c5")
    await load_pool(db, "tron", 1)
    await bind(db, "tron-only", "tron")
    for reference in ("nobody", "tron-only"):
        call = resolution.attribute(db, dep, reference, OPERATOR, "why")
        await _refused(db, dep, call, NotFound, "REFERENCE_NOT_BOUND")
    await allocation.unbind_address(db, actor="t", cooldown=timedelta(days=1), reference="payer")
    call = resolution.attribute(db, dep, "payer", OPERATOR, "why")
    await _refused(db, dep, call, NotFound, "REFERENCE_NOT_BOUND")


async def test_a_bound_deposit_is_neither_attributed_nor_resolved(db: Database) -> None:
    await load_pool(db, "evm", 2)
    payer = await bind(db, "payer")
    await bind(db, "other")
    dep = await record(db, usdt_transfer(payer, "c6"))
    for call in (
        resolution.attribute(db, dep, "other", OPERATOR, "why"),
        resolution.attribute(db, dep, "payer", OPERATOR, "why"),
        resolution.resolve(db, dep, "refunded", OPERATOR, "why"),
    ):
        await _refused(db, dep, call, Conflict, "DEPOSIT_ALREADY_ATTRIBUTED")


async def test_unknown_deposits_and_empty_reasons_are_refused(db: Database) -> None:
    dep = await _unattributed(db, "c7")
    call = resolution.attribute(db, "dep_nope", "payer", OPERATOR, "why")
    await _refused(db, dep, call, NotFound, "DEPOSIT_NOT_FOUND")
    call = resolution.attribute(db, dep, "payer", OPERATOR, "   ")
    await _refused(db, dep, call, ValidationFailed, "VALIDATION_FAILED")
    call = resolution.resolve(db, dep, "completed", OPERATOR, "why")
    await _refused(db, dep, call, ValidationFailed, "VALIDATION_FAILED")
    key = "0x" + "4f" * 32  # looks like a private key: never stored
    call = resolution.resolve(db, dep, "ignored", OPERATOR, f"key was {key}")
    await _refused(db, dep, call, ValidationFailed, "PRIVATE_KEY_REFUSED")


async def test_refunded_records_the_note_sends_nothing_and_settles_reconciliation(
    db: Database, settings: Settings
) -> None:
    dep = await _unattributed(db, "d1")
    await subscribe(db, settings)
    since = utc_now() - timedelta(hours=1)
    assert await _findings(db, since) == ["unattributed"]

    done = await resolution.resolve(db, dep, "refunded", OPERATOR, "  sent back in 0xabc  ")

    assert done.changed and done.events == ()
    assert done.deposit.resolution == "refunded"
    assert done.deposit.resolution_note == "sent back in 0xabc"
    assert done.deposit.deposit_reference is None
    assert await deposit_events(db) == []
    assert await alert_state(db, dep) == "resolved"
    [(actor, action, subject, details)] = await audits(db)
    assert (actor, action, subject) == (OPERATOR, "deposit.resolve", dep)
    assert details["outcome"] == "refunded" and details["note"] == "sent back in 0xabc"
    assert await _findings(db, since) == []

    again = await resolution.resolve(db, dep, "refunded", OPERATOR, "twice")
    assert not again.changed and again.deposit.resolution_note == "sent back in 0xabc"
    for call in (
        resolution.resolve(db, dep, "ignored", OPERATOR, "changed my mind"),
        resolution.attribute(db, dep, "payer", OPERATOR, "changed my mind"),
    ):
        await _refused(db, dep, call, Conflict, "DEPOSIT_RESOLVED")


async def test_a_late_deposit_of_a_binding_may_be_ignored_not_attributed(db: Database) -> None:
    await load_pool(db, "evm", 2)
    payer = await bind(db, "payer")
    await allocation.unbind_address(db, actor="t", cooldown=timedelta(days=1), reference="payer")
    await bind(db, "other")
    dep = await record(db, usdt_transfer(payer, "d2"))  # cooling down: the last reference's
    since = utc_now() - timedelta(hours=1)
    assert await _findings(db, since) == ["late"]
    call = resolution.attribute(db, dep, "other", OPERATOR, "why")
    await _refused(db, dep, call, Conflict, "DEPOSIT_ALREADY_ATTRIBUTED")

    done = await resolution.resolve(db, dep, "ignored", OPERATOR, "the customer kept it")

    assert done.deposit.late and done.deposit.deposit_reference == "payer"
    assert done.deposit.resolution == "ignored"
    assert await _findings(db, since) == []


async def _findings(db: Database, since: Any) -> list[str]:
    async with db.read() as conn:
        rows = await recon_repo.deposits_to_check(conn, since=since, chain_ids=None)
    check = check_ledger(
        rows, recon_repo.Announced(), now=utc_now(), grace=timedelta(hours=1), stuck_after={}
    )
    return [f.category for f in check.findings]


def _order_chain() -> ChainConfig:
    """A chain whose USDC the order asks for: `usdt_transfer`'s token is another (a mismatch)."""
    usdc = {"contract": ORDER_TOKEN, "decimals": 6, "min_amount": "0.01"}
    chain = {"protocol": "evm", "rpc_urls": ["http://127.0.0.1:9"], "tokens": {"USDC": usdc}}
    return resolve_chain(CHAIN, Settings(network="testnet", chains={CHAIN: chain}))


async def test_an_orders_mismatched_transfer_attributed_keeps_its_order_notice(
    db: Database, settings: Settings
) -> None:
    await load_pool(db, "evm", 3)
    await bind(db, "payer")
    await subscribe(db, settings)
    chain = _order_chain()
    now = utc_now()
    _, to = await add_order(db, chain, amount=5_000_000, currency="USDC", created_at=now)
    mismatch = replace(usdt_transfer(to, "e1"), block_time=now + timedelta(seconds=5))
    dep = await record(db, mismatch, confirmed_through=10)
    paid = replace(mismatch, tx_hash="0x" + "e2" * 32, token_contract=ORDER_TOKEN)
    payment = await record(db, paid, confirmed_through=10)
    notices = await order_events(db)
    assert [kind for kind, _ in notices] == ["order.payment_mismatch", "order.completed"]

    done = await resolution.attribute(db, dep, "payer", OPERATOR, "the customer's other order")

    assert done.events == (DEPOSIT_PENDING, DEPOSIT_CONFIRMED)
    events = await deposit_events(db)
    assert [(d["depositId"], d["depositReference"]) for _, d, _ in events] == [(dep, "payer")] * 2
    assert await order_events(db) == notices  # the order's side is told once, as it was
    async with db.read() as conn:
        kept = (await conn.execute(select(deposit.c.order_role).where(deposit.c.id == dep))).one()
    assert kept.order_role == "mismatch"
    [(_, _, _, details)] = await audits(db)
    assert details["previousOrderRole"] == "mismatch"
    call = resolution.attribute(db, payment, "payer", OPERATOR, "why")
    await _refused(db, payment, call, Conflict, "DEPOSIT_ORDER_PAYMENT")
    call = resolution.resolve(db, payment, "refunded", OPERATOR, "why")
    await _refused(db, payment, call, Conflict, "DEPOSIT_ORDER_PAYMENT")


async def test_upstream_mode_expects_no_payin_event_for_an_attributed_deposit(
    db: Database,
) -> None:
    """PayIn saw a deposit to an address nobody held: it announces none, so the operator's
    attribution here is no `upstream_unannounced` finding; a bound deposit still is."""
    loaded = await load_pool(db, "evm", 3)
    payer = await bind(db, "payer")
    spare = next(a for a in loaded if a != payer)
    attributed = await record(db, usdt_transfer(spare, "f1"), confirmed_through=10)
    bound = await record(db, usdt_transfer(payer, "f2"), confirmed_through=10)
    await resolution.attribute(db, attributed, "payer", OPERATOR, "ticket 3")
    async with db.read() as conn:
        waiting = await credited_unannounced(
            conn,
            since=utc_now() - timedelta(hours=1),
            confirmed_before=utc_now() + timedelta(hours=1),
            chain_ids=[CHAIN],
        )
    assert [row.id for row in waiting] == [bound]
