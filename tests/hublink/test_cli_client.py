"""The ``pilothouse`` client commands against a real hub (and a real agent for --wait)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.plugins.simulated import SimulatedPlugin
from tests.helpers import running
from tests.hub.support import ADMIN, Running, package_bytes, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings


async def cli(hub: Running, *args: str, token: str = ADMIN) -> tuple[int, str, str]:
    env = {**os.environ, "PILOTHOUSE_HUB_URL": hub.url, "PILOTHOUSE_TOKEN": token}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def cli_json(hub: Running, *args: str) -> Any:
    code, out, err = await cli(hub, *args, "--json")
    assert code == 0, err
    return orjson.loads(out)


@pytest.mark.anyio
async def test_a_user_deploys_and_replaces_with_the_cli(tmp_path: Path) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe = await cli_json(hub, "pe", "create", "prod", "--platform", "test")
        code, token, _ = await cli(hub, "pe", "token", "issue", pe["id"])
        assert code == 0 and len(token.strip()) > 20
        async with upload(hub.admin, package_bytes("iris", "1")) as r1:
            p1 = (await r1.json())["id"]
        async with upload(hub.admin, package_bytes("iris", "2")) as r2:
            p2 = (await r2.json())["id"]
        agent = Agent(AgentSettings.load(None, {
            "prediction_environment": pe["id"], "state_dir": tmp_path / "agent",
            "hub": {"url": hub.url, "token": token.strip()},
        }), plugin=SimulatedPlugin())  # fmt: skip
        async with running(agent):
            code, out, err = await cli(hub, "deployment", "create", "--name", "fraud", "--pe",
                                       pe["id"], "--package", p1, "--wait")  # fmt: skip
            assert code == 0, err
            assert "ready (generation 1" in out
            # Every state the agent went through is shown, in order, even a fast one.
            assert out.index("deployment.launching") < out.index("deployment.ready")
            listed = await cli_json(hub, "deployment", "list", "--pe", pe["id"])
            dep = listed[0]
            assert dep["observed"]["state"] == "ready"
            code, out, err = await cli(hub, "deployment", "action", dep["id"], "replace_model",
                                       "--package", p2, "--wait")  # fmt: skip
            assert code == 0, err
            assert f"ready (generation 2, model {p2})" in out
            assert out.index("deployment.replacing_model") < out.index(
                "action.replace_model.succeeded"
            )
            code, table, _ = await cli(hub, "deployment", "list")
            assert "SERVICE_HEALTH.STATUS" in table and "passing" in table
        events = await cli_json(hub, "events", "list", "--deployment", dep["id"],
                                "--type", "action.replace_model.succeeded")  # fmt: skip
        assert len(events) == 1
        code, table, _ = await cli(hub, "events", "list", "-q", "replace_model")
        assert code == 0 and "action.replace_model.succeeded" in table


@pytest.mark.anyio
async def test_cli_errors_are_messages_not_tracebacks(tmp_path: Path) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        code, _, err = await cli(hub, "deployment", "get", "no-such-deployment")
        assert code == 1 and "404" in err and "Traceback" not in err
        code, _, err = await cli(hub, "pe", "list", token="wrong")
        assert code == 1 and "401" in err and "Traceback" not in err
        code, _, err = await cli(hub, "deployment", "create", "--name", "x", "--pe", "nope",
                                 "--package", "nope")  # fmt: skip
        assert code == 1 and "Traceback" not in err
    async with hub_running(hub_settings(tmp_path / "hub2")) as hub:
        pass
    code, _, err = await cli(hub, "pe", "list")  # the hub is gone now
    assert code == 1 and "unreachable" in err and "Traceback" not in err
