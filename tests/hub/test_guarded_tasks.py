"""Guarded background tasks restart after a failure and end only when cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pilothouse.hub.service import tasks

pytestmark = pytest.mark.anyio


async def test_a_failing_body_is_restarted_and_logged(
    anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    runs = 0
    third = asyncio.Event()

    async def body() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            third.set()
            await asyncio.Event().wait()
        raise RuntimeError(f"failure {runs}")

    guarded = asyncio.create_task(tasks.guarded("flaky", body, initial_delay_s=0.01))
    await asyncio.wait_for(third.wait(), 5)
    await tasks.cancel_and_wait(guarded)
    assert guarded.cancelled() and runs == 3
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert ["flaky" in r.getMessage() for r in failures] == [True, True]
    assert failures[0].exc_info is not None
