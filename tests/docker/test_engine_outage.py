"""The engine stopped and started again under a running plugin, over TCP with TLS.

The plugin talks to a private engine (:mod:`tests.docker.private_engine`) at
``tcp://127.0.0.1:PORT`` with client certificates. Stopping that engine is a
``failing`` ``plugin.infrastructure_unreachable`` event and a failing
environment status, with no restart of anything; when the engine is back the
plugin reconnects by itself, re-reads the engine's state, reconciles (the
server container serves again, its deployment is probed) and reports
``plugin.infrastructure_reachable``, passing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from tests.docker.private_engine import PrivateEngine, private_engine
from tests.docker.support import ROWS, RULES, TIMEOUT, loaded, new_owner, settings, until
from tests.process.support import predict

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def engine(pilothouse_image: str) -> Iterator[PrivateEngine]:
    """A private engine holding the project's image, for this module."""
    with private_engine(pilothouse_image) as started:
        yield started


async def test_the_engine_going_away_and_coming_back(
    tmp_path: Path, pilothouse_image: str, engine: PrivateEngine
) -> None:
    plugin_settings = settings(
        pilothouse_image,
        new_owner(),
        packages={"rules": RULES},
        engine={"url": engine.tcp_url, "tls": engine.tls()},
        stop_servers_on_unload=True,
    )
    async with loaded(tmp_path, plugin_settings) as it:
        launched = await it.plugin.launch(DesiredDeployment(id="a", model_package_id="rules"))
        assert launched.prediction_url is not None
        assert (await it.plugin.environment_status()).status is Status.PASSING

        stopped_at = time.monotonic()
        await asyncio.to_thread(engine.stop)
        await until(
            lambda: _types(it) & {"plugin.infrastructure_unreachable"},
            TIMEOUT,
            "the outage reported",
        )
        print(f"\nengine stopped -> failing event after {time.monotonic() - stopped_at:.2f} s")
        down = next(e for e in it.events if e.type == "plugin.infrastructure_unreachable")
        assert down.status is Status.FAILING and engine.tcp_url in down.message, down.message
        environment = await it.plugin.environment_status()
        assert environment.status is Status.FAILING, environment

        await asyncio.to_thread(engine.start)
        await until(
            lambda: _types(it) & {"plugin.infrastructure_reachable"},
            TIMEOUT,
            "the recovery reported",
        )
        up = next(e for e in it.events if e.type == "plugin.infrastructure_reachable")
        assert up.status is Status.PASSING
        await until(lambda: _passing(it, "a"), TIMEOUT, "the deployment passing again")
        assert (await it.plugin.environment_status()).status is Status.PASSING
        report = await it.plugin.deployment_status("a")
        assert (report.state, report.status) == (DeploymentState.READY, Status.PASSING), report
        assert report.prediction_url is not None
        async with aiohttp.ClientSession() as http:
            assert (await predict(http, report.prediction_url, ROWS))[0] == 200
        assert [e.type for e in it.events].count("plugin.infrastructure_unreachable") == 1


def _types(it: object) -> set[str]:
    return {e.type for e in it.events}  # type: ignore[attr-defined]


def _passing(it: object, deployment_id: str) -> bool:
    reports = [r for r in it.reports if r.deployment_id == deployment_id]  # type: ignore[attr-defined]
    return bool(reports) and reports[-1].status is Status.PASSING
