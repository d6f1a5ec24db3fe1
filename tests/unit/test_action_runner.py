"""The action runner: time budget, retries, error translation, cancellation, concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from helpers import eventually

from pilothouse.agent.actions.runner import ActionRunner, Retry
from pilothouse.agent.errors import (
    ActionTimeoutError,
    PermanentPluginError,
    PluginError,
    TemporaryPluginError,
)
from pilothouse.agent.observability.metrics import AgentMetrics
from pilothouse.agent.plugin import ActionResult, DeploymentReport, EnvironmentReport, Plugin
from pilothouse.agent.settings import ActionSettings
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Action, DeploymentState, Status

pytestmark = pytest.mark.anyio

SPEC = DesiredDeployment(id="dep-1", model_package_id="pkg-1")
READY = ActionResult(state=DeploymentState.READY)

Behaviour = Callable[[int], Any]
"""Given the 1-based call number: return a result or a coroutine to await, or raise."""


def script(*steps: Any) -> Behaviour:
    """Call n does step n (the last step repeats): raise an error, call a function, or return."""

    def behaviour(n: int) -> Any:
        step = steps[min(n, len(steps)) - 1]
        if isinstance(step, BaseException):
            raise step
        return step() if callable(step) else step

    return behaviour


class ScriptedPlugin(Plugin):
    """A real plugin whose every action follows ``behaviour``; it counts calls."""

    name = "scripted"

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or script(READY)
        self.calls: list[tuple[str, str]] = []
        self.current = 0
        self.peak = 0

    async def _act(self, action: str, deployment_id: str) -> ActionResult:
        self.calls.append((action, deployment_id))
        self.current += 1
        self.peak = max(self.peak, self.current)
        try:
            outcome = self.behaviour(len(self.calls))
            if asyncio.iscoroutine(outcome):
                outcome = await outcome
            assert isinstance(outcome, ActionResult)
            return outcome
        finally:
            self.current -= 1

    async def launch(self, spec: DesiredDeployment) -> ActionResult:
        return await self._act("launch", spec.id)

    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        return await self._act("replace_model", spec.id)

    async def stop_deployment(self, deployment_id: str) -> ActionResult:
        return await self._act("stop", deployment_id)

    async def deployment_status(self, deployment_id: str) -> DeploymentReport:
        return DeploymentReport(deployment_id, DeploymentState.READY, Status.PASSING)

    async def list_deployments(self) -> list[DeploymentReport]:
        return []

    async def environment_status(self) -> EnvironmentReport:
        return EnvironmentReport(Status.PASSING)


def make_runner(plugin: Plugin, **settings: Any) -> tuple[ActionRunner, AgentMetrics, list[Retry]]:
    values = {
        "timeout_s": 5.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.001,
        "backoff_max_s": 0.002,
    }
    metrics = AgentMetrics()
    return ActionRunner(plugin, ActionSettings(**(values | settings)), metrics), metrics, []


def count(metrics: AgentMetrics, action: str, result: str) -> float:
    labels = {"action": action, "result": result}
    return metrics.registry.get_sample_value("pilothouse_agent_actions_total", labels) or 0.0


async def hang() -> ActionResult:
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("action", "called"),
    [
        (Action.LAUNCH, ["launch"]),
        (Action.REPLACE_MODEL, ["replace_model"]),
        (Action.STOP, ["stop"]),
        (Action.RELAUNCH, ["stop", "launch"]),  # Plugin.relaunch by default
    ],
)
async def test_each_action_calls_its_plugin_method(action: Action, called: list[str]) -> None:
    plugin = ScriptedPlugin()
    runner, metrics, retries = make_runner(plugin)
    assert await runner.run(action, SPEC, retries.append) == READY
    assert plugin.calls == [(name, "dep-1") for name in called]
    assert retries == []
    assert count(metrics, action.value, "succeeded") == 1
    duration = "pilothouse_agent_action_duration_seconds_count"
    assert metrics.registry.get_sample_value(duration, {"action": action.value}) == 1
    assert runner.in_flight == 0


async def test_timeout_becomes_action_timeout_and_is_retried() -> None:
    plugin = ScriptedPlugin(script(hang, READY))
    runner, metrics, retries = make_runner(plugin, timeout_s=0.05)
    assert await runner.run(Action.LAUNCH, SPEC, retries.append) == READY
    [retry] = retries
    assert isinstance(retry.error, ActionTimeoutError)
    assert retry.error.deployment_id == "dep-1"
    assert "0.05s" in str(retry.error)
    assert (retry.action, retry.deployment_id, retry.attempt) == (Action.LAUNCH, "dep-1", 1)
    assert count(metrics, "launch", "succeeded") == 1


async def test_timeouts_on_every_attempt_end_in_action_timeout() -> None:
    plugin = ScriptedPlugin(script(hang))
    runner, metrics, retries = make_runner(plugin, timeout_s=0.02, max_attempts=2)
    with pytest.raises(ActionTimeoutError):
        await runner.run(Action.STOP, SPEC, retries.append)
    assert len(plugin.calls) == 2 and len(retries) == 1
    assert count(metrics, "stop", "failed") == 1


async def test_temporary_errors_are_retried_up_to_max_attempts() -> None:
    errors = [TemporaryPluginError(f"busy {n}") for n in range(1, 5)]
    plugin = ScriptedPlugin(script(*errors))
    runner, metrics, retries = make_runner(plugin, max_attempts=4)
    with pytest.raises(TemporaryPluginError) as info:
        await runner.run(Action.REPLACE_MODEL, SPEC, retries.append)
    assert info.value is errors[3]
    assert len(plugin.calls) == 4
    assert [r.attempt for r in retries] == [1, 2, 3]
    assert [r.error for r in retries] == errors[:3]
    bounds = [(0.0005, 0.001), (0.001, 0.002), (0.001, 0.002)]
    assert all(lo <= r.delay_s <= hi for r, (lo, hi) in zip(retries, bounds, strict=True))
    assert count(metrics, "replace_model", "failed") == 1


async def test_temporary_error_then_success_returns_the_result() -> None:
    rolled_back = ActionResult(state=DeploymentState.READY, old_model_in_use=True)
    plugin = ScriptedPlugin(
        script(TemporaryPluginError("a"), TemporaryPluginError("b"), rolled_back)
    )
    runner, metrics, retries = make_runner(plugin)
    assert await runner.run(Action.REPLACE_MODEL, SPEC, retries.append) is rolled_back
    assert len(retries) == 2
    assert count(metrics, "replace_model", "rolled_back") == 1
    assert count(metrics, "replace_model", "succeeded") == 0


async def test_delay_asked_for_by_the_plugin_is_used() -> None:
    plugin = ScriptedPlugin(script(TemporaryPluginError("x", delay=0), READY))
    runner, _, retries = make_runner(plugin, backoff_initial_s=60, backoff_max_s=60)
    assert await asyncio.wait_for(runner.run(Action.LAUNCH, SPEC, retries.append), 10) == READY
    assert [r.delay_s for r in retries] == [0]


async def test_permanent_error_is_not_retried() -> None:
    error = PermanentPluginError("model does not load", deployment_id="dep-1")
    plugin = ScriptedPlugin(script(error))
    runner, metrics, retries = make_runner(plugin)
    with pytest.raises(PermanentPluginError) as info:
        await runner.run(Action.LAUNCH, SPEC, retries.append)
    assert info.value is error
    assert len(plugin.calls) == 1 and retries == []
    assert count(metrics, "launch", "failed") == 1


async def test_unexpected_exception_becomes_permanent_error_naming_plugin_and_cause() -> None:
    crash = RuntimeError("segfault in client")
    plugin = ScriptedPlugin(script(crash))
    runner, metrics, retries = make_runner(plugin)
    with pytest.raises(PermanentPluginError) as info:
        await runner.run(Action.LAUNCH, SPEC, retries.append)
    message = str(info.value)
    assert "'scripted'" in message
    assert "RuntimeError: segfault in client" in message
    assert "launch" in message
    assert info.value.__cause__ is crash
    assert info.value.deployment_id == "dep-1"
    assert len(plugin.calls) == 1 and retries == []
    assert count(metrics, "launch", "failed") == 1


async def test_cancellation_propagates_and_releases_the_slot() -> None:
    entered = asyncio.Event()

    async def wait_forever() -> ActionResult:
        entered.set()
        return await hang()

    plugin = ScriptedPlugin(script(wait_forever, READY))
    runner, metrics, retries = make_runner(plugin, max_concurrent=1)
    task = asyncio.ensure_future(runner.run(Action.LAUNCH, SPEC, retries.append))
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert retries == [] and runner.in_flight == 0
    assert count(metrics, "launch", "cancelled") == 1
    assert await asyncio.wait_for(runner.run(Action.LAUNCH, SPEC, retries.append), 10) == READY


async def test_cancellation_during_retry_backoff_propagates() -> None:
    plugin = ScriptedPlugin(script(TemporaryPluginError("x")))
    runner, metrics, retries = make_runner(plugin, backoff_initial_s=60, backoff_max_s=60)
    task = asyncio.ensure_future(runner.run(Action.STOP, SPEC, retries.append))
    await eventually(lambda: len(retries) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert count(metrics, "stop", "cancelled") == 1


async def test_concurrency_limit_is_never_exceeded() -> None:
    gate = asyncio.Event()

    async def wait_for_gate() -> ActionResult:
        await gate.wait()
        return READY

    plugin = ScriptedPlugin(script(wait_for_gate))
    runner, metrics, _ = make_runner(plugin, max_concurrent=3)
    specs = [SPEC.model_copy(update={"id": f"dep-{i}"}) for i in range(20)]
    tasks = [asyncio.ensure_future(runner.run(Action.LAUNCH, s, lambda _: None)) for s in specs]
    await eventually(lambda: plugin.current == 3)
    for _ in range(20):
        await asyncio.sleep(0)  # give any extra call every chance to start
    assert plugin.current == 3 and runner.in_flight == 20
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 10) == [READY] * 20
    assert plugin.peak == 3
    assert count(metrics, "launch", "succeeded") == 20


async def test_plugin_errors_are_never_wrapped() -> None:
    error = PluginError("plain plugin error")
    runner, _, _ = make_runner(ScriptedPlugin(script(error)))
    with pytest.raises(PluginError) as info:
        await runner.run(Action.LAUNCH, SPEC, lambda _: None)
    assert info.value is error
