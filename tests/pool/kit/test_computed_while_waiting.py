"""Python work beside a statement in flight (pool.kit.db.computed_while_waiting)."""

from __future__ import annotations

import asyncio

import pytest

from pool.kit.db import computed_while_waiting


class Statement:
    """A stand-in for a database call: sent at once, answered when released."""

    def __init__(self) -> None:
        self.sent = False
        self.answer = asyncio.Event()
        self.cancelled = False

    async def run(self) -> str:
        self.sent = True
        try:
            await self.answer.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return "inserted"


async def test_the_computation_runs_after_the_statement_is_sent_and_before_its_answer() -> None:
    statement = Statement()
    seen: list[tuple[bool, bool]] = []

    def compute() -> str:
        seen.append((statement.sent, statement.answer.is_set()))
        statement.answer.set()  # the database answers once the Python is done
        return "payloads"

    assert await computed_while_waiting(statement.run(), compute) == ("inserted", "payloads")
    assert seen == [(True, False)]


async def test_a_failing_computation_does_not_leave_the_statement_running() -> None:
    statement = Statement()

    def compute() -> str:
        raise ValueError("a bug while building payloads")

    with pytest.raises(ValueError, match="building payloads"):
        await computed_while_waiting(statement.run(), compute)
    assert statement.cancelled


async def test_a_failing_statement_is_raised_after_the_computation() -> None:
    async def refused() -> str:
        await asyncio.sleep(0)
        raise RuntimeError("unique violation")

    computed: list[str] = []
    with pytest.raises(RuntimeError, match="unique violation"):
        await computed_while_waiting(refused(), lambda: computed.append("done"))
    assert computed == ["done"]
