"""The one worker loop: step, pause, stop; a failing step is logged and tried again."""

import asyncio
import logging

import pytest

from pool.kit.loop import Backoff, run_every

log = logging.getLogger("addrpool.test.loop")


async def test_a_failing_step_is_logged_and_tried_again(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        stop.set()

    with caplog.at_level(logging.ERROR, logger=log.name):
        await run_every(stop, step, pause=0.001, log=log, failure="step failed", context={"k": 1})
    assert calls == 2
    [record] = caplog.records
    assert record.getMessage() == "step failed" and record.exc_info is not None
    assert record.__dict__["k"] == 1


async def test_without_a_failure_message_the_error_reaches_the_caller() -> None:
    async def step() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await run_every(asyncio.Event(), step, pause=0.001, log=log, failure=None)


async def test_stop_ends_a_long_pause_at_once() -> None:
    stop = asyncio.Event()

    async def step() -> None:
        asyncio.get_running_loop().call_soon(stop.set)

    await asyncio.wait_for(run_every(stop, step, pause=3600, log=log, failure="x"), timeout=5)


async def test_pause_first_waits_before_the_first_step() -> None:
    stop = asyncio.Event()
    stop.set()
    calls: list[int] = []

    async def step() -> None:
        calls.append(1)

    await run_every(stop, step, pause=3600, pause_first=True, log=log, failure="x")
    assert calls == []


async def test_wake_ends_a_pause_early_and_a_result_sets_the_pause() -> None:
    stop, wake = asyncio.Event(), asyncio.Event()
    results = iter([0, 0, 5])
    seen: list[int] = []

    async def step() -> int:
        value = next(results)
        seen.append(value)
        if value:  # a result that asks for no pause: go straight on, then stop
            stop.set()
        else:
            asyncio.get_running_loop().call_later(0.01, wake.set)
        return value

    pauses = lambda sent: 0 if sent else 3600  # noqa: E731
    await asyncio.wait_for(
        run_every(stop, step, pause=pauses, wake=wake, log=log, failure="x"), timeout=5
    )
    assert seen == [0, 0, 5]


def test_backoff_doubles_after_each_failure_up_to_its_ceiling() -> None:
    backoff = Backoff(1.0, ceiling=30.0)
    assert [backoff(False) for _ in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff(True) == 1.0
    assert backoff(None) == 2.0
    pauses = [backoff(False) for _ in range(5000)]  # a long outage never overflows
    assert pauses[:4] == [4.0, 8.0, 16.0, 30.0] and set(pauses[3:]) == {30.0}


async def test_a_zero_pause_still_lets_other_tasks_run() -> None:
    stop = asyncio.Event()
    other_ran = asyncio.Event()
    steps = 0

    async def step() -> None:
        nonlocal steps
        steps += 1
        if other_ran.is_set() or steps == 100:  # without a yield, `other` never gets a turn
            stop.set()

    async def other() -> None:
        other_ran.set()

    task = asyncio.create_task(other())
    await run_every(stop, step, pause=0, log=log, failure="step failed")
    await task
    assert steps == 2  # the first step, one yield in which `other` ran, the step that saw it
