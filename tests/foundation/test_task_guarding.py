"""Guarded tasks: restart with backoff, crash-loop detection, readiness and stopping."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from helpers import eventually

from pilothouse.agent.settings import SupervisorSettings
from pilothouse.foundation.aio.supervisor import (
    RestartPolicy,
    Started,
    Supervisor,
    TaskFailure,
    TaskReturnedError,
)
from pilothouse.foundation.errors import CrashLoopError

pytestmark = pytest.mark.anyio


def fast(**overrides: Any) -> RestartPolicy:
    values: dict[str, Any] = {
        "restart_backoff_initial_s": 0.001,
        "restart_backoff_max_s": 0.004,
        "crash_loop_failures": 100,
        "crash_loop_window_s": 60.0,
    }
    return SupervisorSettings(**(values | overrides)).policy()


async def forever() -> None:
    await asyncio.get_running_loop().create_future()


def task_named(name: str) -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == name]


def fails_then_runs(times: int, error: Callable[[int], BaseException]) -> Any:
    """A body that starts, fails ``times`` times, then runs until cancelled."""
    calls: list[int] = []

    async def body(started: Started) -> None:
        calls.append(len(calls) + 1)
        started()
        if len(calls) <= times:
            raise error(len(calls))
        await forever()

    body.calls = calls  # type: ignore[attr-defined]
    return body


async def test_failing_task_is_restarted_and_its_failure_reported() -> None:
    failures: list[TaskFailure] = []
    boom = ValueError("boom")
    body = fails_then_runs(1, lambda _: boom)
    sup = Supervisor(fast(), failures.append)
    await sup.start("intake", body)
    await eventually(lambda: len(body.calls) == 2 and sup.alive() == {"intake": True})
    [failure] = failures
    assert failure.task == "intake"
    assert failure.error is boom
    assert failure.failures_in_window == 1
    assert failure.restart_in_s is not None
    assert 0.0005 <= failure.restart_in_s <= 0.001
    assert sup.restarts["intake"] == 1
    await sup.stop_all()


async def test_restart_delays_follow_the_backoff_schedule() -> None:
    failures: list[TaskFailure] = []
    body = fails_then_runs(4, lambda n: RuntimeError(f"failure {n}"))
    sup = Supervisor(fast(), failures.append)
    await sup.start("writer", body)
    await eventually(lambda: len(body.calls) == 5)
    delays = [f.restart_in_s for f in failures]
    bounds = [(0.0005, 0.001), (0.001, 0.002), (0.002, 0.004), (0.002, 0.004)]
    assert all(d is not None and lo <= d <= hi for d, (lo, hi) in zip(delays, bounds, strict=True))
    assert [f.failures_in_window for f in failures] == [1, 2, 3, 4]
    assert [str(f.error) for f in failures] == [f"failure {n}" for n in range(1, 5)]
    await sup.stop_all()


async def test_task_that_returns_is_treated_as_a_failure() -> None:
    failures: list[TaskFailure] = []
    runs = 0

    async def body(started: Started) -> None:
        nonlocal runs
        runs += 1
        started()
        if runs > 1:
            await forever()

    sup = Supervisor(fast(), failures.append)
    await sup.start("health reporter", body)
    await eventually(lambda: runs == 2)
    [failure] = failures
    assert isinstance(failure.error, TaskReturnedError)
    assert "health reporter" in str(failure.error)
    await sup.stop_all()


async def test_crash_loop_resolves_fatal_and_stops_restarting() -> None:
    failures: list[TaskFailure] = []
    body = fails_then_runs(1000, lambda n: OSError(f"disk full {n}"))
    sup = Supervisor(fast(crash_loop_failures=3), failures.append)
    await sup.start("event writer", body)
    crash = await asyncio.wait_for(sup.fatal(), 10)
    assert isinstance(crash, CrashLoopError)
    assert (crash.task, crash.failures, crash.window_s) == ("event writer", 3, 60.0)
    assert str(crash.last) == "disk full 3"
    assert "event writer" in str(crash)
    await eventually(lambda: not task_named("event writer"))
    assert len(body.calls) == 3
    assert [f.restart_in_s is None for f in failures] == [False, False, True]
    assert failures[-1].failures_in_window == 3
    assert sup.restarts["event writer"] == 2
    assert sup.alive() == {"event writer": False}
    await sup.stop_all()


async def test_failures_spread_beyond_the_window_are_no_crash_loop() -> None:
    now = 0.0

    def clock() -> float:  # every reading is 20 s later: each run "lasts" 20 s
        nonlocal now
        now += 20.0
        return now

    failures: list[TaskFailure] = []
    body = fails_then_runs(6, lambda _: RuntimeError("flaky"))
    settings = fast(crash_loop_failures=2, crash_loop_window_s=10.0)
    sup = Supervisor(settings, failures.append, clock=clock)
    await sup.start("flaky", body)
    await eventually(lambda: len(body.calls) == 7)
    fatal = asyncio.ensure_future(sup.fatal())
    await asyncio.sleep(0)
    assert not fatal.done()
    assert [f.failures_in_window for f in failures] == [1] * 6
    # Each run outlived the window, so the backoff starts over every time.
    assert all(f.restart_in_s is not None and f.restart_in_s <= 0.001 for f in failures)
    fatal.cancel()
    await asyncio.gather(fatal, return_exceptions=True)
    await sup.stop_all()


async def test_cancelled_fatal_waiter_leaves_fatal_usable() -> None:
    sup = Supervisor(fast(crash_loop_failures=1), lambda _: None)
    waiter = asyncio.ensure_future(sup.fatal())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await sup.start("once", fails_then_runs(1, lambda _: RuntimeError("x")))
    crash = await asyncio.wait_for(sup.fatal(), 10)
    assert crash.task == "once"
    await sup.stop_all()


@pytest.mark.parametrize("returns", [False, True], ids=["raises", "returns"])
async def test_failure_before_first_started_is_raised_by_start(returns: bool) -> None:
    failures: list[TaskFailure] = []
    calls = 0

    async def body(started: Started) -> None:
        nonlocal calls
        calls += 1
        if not returns:
            raise PermissionError("port 80 needs root")

    sup = Supervisor(fast(), failures.append)
    expected = TaskReturnedError if returns else PermissionError
    with pytest.raises(expected):
        await sup.start("http", body)
    assert calls == 1
    assert failures == []
    assert sup.alive() == {}
    assert not task_named("http")
    await sup.start("http", fails_then_runs(0, RuntimeError))  # the name is free again
    with pytest.raises(ValueError, match="'http'"):  # but only once
        await sup.start("http", fails_then_runs(0, RuntimeError))
    await sup.stop_all()


async def test_failure_before_started_on_a_restart_is_just_restarted() -> None:
    failures: list[TaskFailure] = []
    runs = 0

    async def body(started: Started) -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            raise ConnectionError("not yet")
        started()
        if runs == 1:
            raise ConnectionError("lost")
        await forever()

    sup = Supervisor(fast(), failures.append)
    await sup.start("intake", body)
    await eventually(lambda: runs == 3 and sup.alive() == {"intake": True})
    assert [str(f.error) for f in failures] == ["lost", "not yet"]
    await sup.stop_all()


async def test_cancelling_start_cancels_the_task_it_started() -> None:
    entered = asyncio.Event()

    async def never_ready(started: Started) -> None:
        entered.set()
        await forever()

    sup = Supervisor(fast(), lambda _: None)
    starting = asyncio.ensure_future(sup.start("slow", never_ready))
    await entered.wait()
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    assert not task_named("slow")
    assert sup.alive() == {}


async def test_stop_cancels_and_awaits_leaving_nothing_pending() -> None:
    before = asyncio.all_tasks()
    cleaned: list[str] = []

    def body_for(name: str) -> Any:
        async def body(started: Started) -> None:
            started()
            try:
                await forever()
            finally:
                cleaned.append(name)

        return body

    sup = Supervisor(fast(), lambda _: None)
    for name in ("first", "second", "third", "fourth"):
        await sup.start(name, body_for(name))
    assert sup.alive() == dict.fromkeys(["first", "second", "third", "fourth"], True)
    await sup.stop(["second", "not supervised"])
    assert cleaned == ["second"]
    assert not task_named("second")
    assert sup.alive() == dict.fromkeys(["first", "third", "fourth"], True)
    await sup.stop_all()
    assert cleaned == ["second", "fourth", "third", "first"]  # reverse order of start
    assert asyncio.all_tasks() == before
    assert sup.alive() == {}


async def test_alive_is_false_while_waiting_out_a_restart_backoff() -> None:
    fail_now, failed = asyncio.Event(), asyncio.Event()
    calls = 0

    async def body(started: Started) -> None:
        nonlocal calls
        calls += 1
        started()
        await fail_now.wait()
        raise RuntimeError("x")

    settings = fast(restart_backoff_initial_s=60.0, restart_backoff_max_s=60.0)
    sup = Supervisor(settings, lambda _: failed.set())
    assert sup.alive() == {}
    await sup.start("slow restart", body)
    assert sup.alive() == {"slow restart": True}
    fail_now.set()
    await asyncio.wait_for(failed.wait(), 10)
    assert sup.alive() == {"slow restart": False}
    before_stop = asyncio.all_tasks()
    await asyncio.wait_for(sup.stop(["slow restart"]), 10)  # cancels the backoff sleep
    assert not task_named("slow restart")
    assert asyncio.all_tasks() < before_stop
    assert calls == 1


@pytest.mark.anyio
async def test_a_policy_without_a_crash_loop_limit_restarts_for_ever() -> None:
    failures: list[TaskFailure] = []
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError(f"run {runs}")

    sup = Supervisor(RestartPolicy(0.001, 0.002, None, 60.0), failures.append)
    await sup.start_eternal("flaky", flaky)
    await eventually(lambda: runs >= 30)
    await sup.stop_all()
    assert all(f.restart_in_s is not None for f in failures)
    assert not task_named("flaky")
