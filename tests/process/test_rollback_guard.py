"""Health-gated automatic rollback: a real agent, the process plugin, real prediction servers.

A deployment serves the good rules model under a steady stream of single-row
requests drawn from the iris data; it is replaced by ``iris-flaky`` (the
README's bad example package, which fails on rows with a narrow sepal, about
one in five). The agent's guard must see the error rate jump and roll back by
itself, within the guard window, through the ordinary zero-downtime
replacement: the client sees no failure other than the bad model's own
errors, the ``deployment.rolled_back`` event carries the figures, and
re-sending the same desired state never applies the bad package again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.desired import DeploymentSettings, RollbackSettings
from pilothouse.plugins.process import ProcessPlugin
from tests.helpers import read_events, running, written_through
from tests.process.support import EXAMPLES, RULES, TIMEOUT, reaped, steady, until

pytestmark = pytest.mark.anyio

FLAKY = EXAMPLES / "iris-flaky-2.0.0"
GUARD_S = 30.0


def state(champion: str) -> DesiredState:
    rules = RollbackSettings(guard_s=GUARD_S)  # thresholds at their defaults
    return DesiredState(
        deployments=(
            DesiredDeployment(
                id="iris", model_package_id=champion, settings=DeploymentSettings(rollback=rules)
            ),
        )
    )


async def test_a_regressing_replacement_is_rolled_back_within_the_guard_window(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(
        plugin="process",
        plugin_settings={"packages": {"rules": RULES, "iris-flaky": FLAKY}},
        actions={"timeout_s": TIMEOUT},
        monitoring={"interval_s": 1.0, "guard_poll_s": 0.5},
    )
    agent = Agent(settings, plugin=ProcessPlugin())
    async with reaped(tmp_path):
        async with running(agent):
            agent.apply(state("rules"))
            await agent.wait_settled()
            assert agent.dispatcher is not None
            record = agent.dispatcher.records["iris"]
            assert record.prediction_url is not None
            async with steady(record.prediction_url) as seen:
                await until(lambda: len(seen) > 100, what="the old model's traffic")
                agent.apply(state("iris-flaky"))
                await until(
                    lambda: _served(seen[-20:]) == {"rules"} and _rolled_back(agent),
                    timeout=GUARD_S + TIMEOUT, what="rolled back, and serving rules again",
                )  # fmt: skip
            events = await written_through(agent)
            # The same desired state again (a reconnect, a file re-read): no new replacement.
            agent.apply(state("iris-flaky"))
            await agent.wait_settled()
            await asyncio.sleep(2.0)
            again = await written_through(agent)
            assert record.model_package_id == "rules"
        # A new agent on the same state (its servers adopted): the rollback still holds.
        restarted = Agent(settings, plugin=ProcessPlugin())
        earlier = len(read_events(settings.event_log_path))  # the log file is the same
        async with running(restarted):
            restarted.apply(state("iris-flaky"))
            await restarted.wait_settled()
            after_restart = (await written_through(restarted))[earlier:]
            assert restarted.dispatcher is not None
            assert restarted.dispatcher.records["iris"].model_package_id == "rules"
        assert not [e for e in after_restart if e["type"].startswith("action.")], (
            "nothing to do: the rolled-back package is not applied again"
        )
    own = [s for s in seen if s == (500, "iris-flaky")]
    others = [s for s in seen if s[0] != 200 and s != (500, "iris-flaky")]
    assert others == [], f"failed requests besides the bad model's own errors: {others[:5]}"
    assert own, "the bad model did fail on some rows"
    assert {p for s, p in seen if s == 200} == {"rules", "iris-flaky"}
    (rolled,) = [e for e in events if e["type"] == "deployment.rolled_back"]
    assert rolled["status"] == "failing" and rolled["deployment_id"] == "iris"
    data = rolled["data"]
    assert (data["from_package_id"], data["to_package_id"]) == ("iris-flaky", "rules")
    figures = data["figures"]
    assert figures["new_error_rate"] > 0.05 and figures["old_error_rate"] == 0.0
    assert figures["new_requests"] >= 20 and 0 < figures["seconds_after_replacement"] < GUARD_S
    assert "error rate" in data["reason"]
    replaced = [e["data"].get("model_package_id") for e in again
                if e["type"] == "action.replace_model.succeeded"]  # fmt: skip
    assert replaced == ["iris-flaky", "rules"], "the bad package was applied once, never again"
    assert sum(e["type"] == "deployment.rolled_back" for e in again) == 1


def _served(seen: list[tuple[int, str]]) -> set[str]:
    return {package for status, package in seen if status == 200}


def _rolled_back(agent: Agent) -> bool:
    guard = agent.monitoring.guard if agent.monitoring else None
    return guard is not None and guard.rollbacks == 1
