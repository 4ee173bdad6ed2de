"""Shutdown steps end within one shared deadline, and a failing step does not stop the next."""

from __future__ import annotations

import asyncio
import time

import pytest

from camcount.shutdown import ShutdownSteps


async def test_the_steps_share_one_deadline(caplog: pytest.LogCaptureFixture) -> None:
    steps = ShutdownSteps(seconds=0.3)
    finished: list[str] = []

    async def hangs() -> None:  # a flush waiting for a database that is gone
        await asyncio.sleep(60)
        finished.append("hangs")

    async def quick() -> None:
        finished.append("quick")

    started = time.monotonic()
    for step in (
        steps.step("first flush", hangs),
        steps.step("second flush", hangs),
        steps.step("close", quick),
    ):
        await step()
    assert time.monotonic() - started < 1.0  # 0.3 s in all, not 0.3 s per step (nor 60)
    assert finished == ["quick"]  # past the deadline, a step that waits for nothing still completes
    assert "gave up on first flush" in caplog.text and "gave up on second flush" in caplog.text


async def test_a_failing_step_is_logged_and_the_next_one_runs(caplog: pytest.LogCaptureFixture) -> None:
    steps = ShutdownSteps(seconds=5)
    ran: list[str] = []

    async def fails() -> None:
        raise ConnectionError("the database went away")

    async def writes() -> None:
        await asyncio.sleep(0)
        ran.append("writes")

    await steps.step("returning quota leases", fails)()
    await steps.step("writing device-key uses", writes)()
    assert ran == ["writes"]
    assert "returning quota leases failed: ConnectionError: the database went away" in caplog.text
