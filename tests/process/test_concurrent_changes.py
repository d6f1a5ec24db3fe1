"""Several deployments changing at once in one shared prediction server.

Different deployments proceed in parallel (DESIGN.md), and in hub mode every
package reaches the server as an archive: these are the conditions of an agent
that starts, or reconciles, a PE with more than one deployment.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.vocabulary import DeploymentState
from pilothouse.modelpkg import build_package
from pilothouse.plugins.process import ProcessPlugin
from tests.helpers import read_events, running
from tests.modelpkg.factory import python_package
from tests.process.support import RULES, TIMEOUT, predict, reaped, until

pytestmark = pytest.mark.anyio


def _settings(make_settings: Any, packages: dict[str, Path]) -> Any:
    return make_settings(
        plugin="process",
        plugin_settings={"packages": packages, "stop_servers_on_unload": True},
        actions={"timeout_s": TIMEOUT, "errored_retry_s": 600, "backoff_max_s": 600},
    )


@pytest.mark.anyio
async def test_a_launch_while_another_package_loads_spoils_nothing(
    tmp_path: Path, make_settings: Any
) -> None:
    """One change's clean-up of unused packages must spare a package another one loads."""
    events = tmp_path / "state" / "events.jsonl"
    async with reaped(tmp_path):
        # Like a framework import followed by reading the weights: it reads its files late.
        slow_dir = python_package(
            tmp_path / "slow",
            name="iris-slow-load",
            init="time.sleep(1.5); (package_dir / 'model.py').read_bytes()",
        )
        slow, slow_archive = build_package(slow_dir, tmp_path / "slow.tar.gz")
        _, rules = build_package(RULES, tmp_path / "rules.tar.gz")
        plugin = ProcessPlugin()
        settings = _settings(make_settings, {"slow": slow_archive, "rules": rules})
        agent = Agent(settings, plugin=plugin)
        async with running(agent), aiohttp.ClientSession() as http:
            a = DesiredDeployment(id="a", model_package_id="slow")
            agent.apply(DesiredState(deployments=(a,)))

            def unpacked() -> bool:
                server = plugin.servers.get("shared")
                return server is not None and (server.state_dir / "packages" / slow.sha256).is_dir()

            await until(unpacked, what="a's package is unpacked, a loads")
            b = DesiredDeployment(id="b", model_package_id="rules")
            agent.apply(DesiredState(deployments=(a, b)))
            assert agent.dispatcher is not None
            records = agent.dispatcher.records

            def done() -> bool:
                finished = (DeploymentState.READY, DeploymentState.ERRORED)
                return len(records) == 2 and all(
                    r.state in finished and not r.busy for r in records.values()
                )

            await until(done, what="both launches finished")
            failed = [e["message"] for e in read_events(events) if e["type"].endswith(".failed")]
            assert not failed, failed
            assert {d: r.state for d, r in records.items()} == {
                "a": DeploymentState.READY, "b": DeploymentState.READY,
            }  # fmt: skip
            for dep_id, package in (("a", "slow"), ("b", "rules")):
                url = records[dep_id].prediction_url
                assert url
                status, doc = await predict(http, url)
                assert status == 200 and doc["model_package_id"] == package, doc


@pytest.mark.anyio
async def test_many_deployments_loaded_at_once_all_succeed(
    tmp_path: Path, make_settings: Any
) -> None:
    """Concurrent saves of the server's deployment list: no 500, and the newest list wins."""
    async with reaped(tmp_path):
        plugin = ProcessPlugin()
        async with running(Agent(_settings(make_settings, {"rules": RULES}), plugin=plugin)):
            await plugin.launch(DesiredDeployment(id="first", model_package_id="rules"))
            ids = [f"d{n:02d}" for n in range(32)]
            errors: list[str] = []
            for _ in range(4):  # loads the first time, then the same package again: saves only
                results = await asyncio.gather(
                    *(
                        plugin.launch(DesiredDeployment(id=d, model_package_id="rules"))
                        for d in ids
                    ),
                    return_exceptions=True,
                )
                errors.extend(str(r) for r in results if isinstance(r, BaseException))
            saved = plugin.servers["shared"].state_dir / "deployments.json"
            listed = sorted(orjson.loads(await asyncio.to_thread(saved.read_bytes)))
        assert not errors, f"{len(errors)} of {4 * len(ids)} launches failed: {errors[:3]}"
        assert listed == sorted(["first", *ids])
