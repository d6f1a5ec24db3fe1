"""Rollbacks recorded in the desired state (the agent's or the admin's); promoting a challenger."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.hub.stats_windows import minute, post, window
from tests.hub.support import ADMIN, V1, Running, answer, next_message, ok, running, settings

pytestmark = pytest.mark.anyio


async def _world(hub: Running) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], Any]:
    pe = await hub.pe()
    old, new = await hub.package("m", "1"), await hub.package("m", "2")
    dep = await hub.deployment(pe["id"], old["id"])
    body = {"action": "replace_model", "model_package_id": new["id"]}
    await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json=body))
    return dep, old, new, await hub.agent(pe["id"])


async def test_an_agents_rollback_is_recorded_and_pushed_to_the_agent(hub: Running) -> None:
    dep, old, new, agent = await _world(hub)
    pe_id = dep["prediction_environment_id"]
    rollback = {
        "from_package_id": new["id"], "to_package_id": old["id"],
        "reason": "error rate 0.21 > 0.05 + old 0.01",
        "figures": {"error_rate": 0.21, "p99_s": None},
    }  # fmt: skip
    watch = agent.get(f"{V1}/prediction-environments/{pe_id}/watch", headers={"Last-Event-ID": "2"})
    async with watch as stream:
        assert (await next_message(stream)).data == "connected"
        done = await ok(agent.post(f"{V1}/deployments/{dep['id']}/rollback", json=rollback))
        while (pushed := await next_message(stream)).event == "comment":
            pass
    assert done["desired"]["model_package_id"] == old["id"] and done["desired"]["generation"] == 3
    record = done["desired"]["rollback"]
    assert (record["from_package_id"], record["to_package_id"]) == (new["id"], old["id"])
    assert record["reason"] == rollback["reason"] and record["figures"] == rollback["figures"]
    assert (pushed.event, pushed.id) == ("deployment", "3")
    assert pushed.json()["rollback"]["to_package_id"] == old["id"]
    assert pushed.json()["model_package_id"] == old["id"]
    page = await ok(hub.admin.get(f"{V1}/events", params={"type": "deployment.rollback_recorded"}))
    (recorded,) = page["items"]
    assert recorded["source"] == "agent" and recorded["data"]["reason"] == rollback["reason"]
    # delivered again (the agent's outbox is at least once): the same answer, nothing new
    again = await ok(agent.post(f"{V1}/deployments/{dep['id']}/rollback", json=rollback))
    assert again["desired"]["generation"] == 3
    # a user replaces the model again: the rollback no longer stands
    body = {"action": "replace_model", "model_package_id": new["id"]}
    replaced = await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json=body))
    assert replaced["desired"]["rollback"] is None and replaced["desired"]["generation"] == 4


async def test_a_rollback_of_a_champion_changed_since_is_refused(hub: Running) -> None:
    dep, old, new, agent = await _world(hub)
    other = await hub.package("m", "3")
    body = {"action": "replace_model", "model_package_id": other["id"]}
    await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json=body))
    rollback = {"from_package_id": new["id"], "to_package_id": old["id"], "reason": "p99 x3"}
    status, answer_body = await answer(
        agent.post(f"{V1}/deployments/{dep['id']}/rollback", json=rollback)
    )
    assert status == 409 and answer_body["fields"][0]["field"] == "from_package_id"
    current = await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}"))
    assert current["desired"]["model_package_id"] == other["id"]
    assert current["desired"]["generation"] == 3 and current["desired"]["rollback"] is None


async def test_only_the_agent_of_the_deployments_pe_or_the_admin_may_roll_back(
    hub: Running,
) -> None:
    dep, old, new, _ = await _world(hub)
    stranger = await hub.agent((await hub.pe("other"))["id"])
    rollback = {"from_package_id": new["id"], "to_package_id": old["id"], "reason": "bad"}
    path = f"{V1}/deployments/{dep['id']}/rollback"
    assert (await answer(stranger.post(path, json=rollback)))[0] == 403
    status, body = await answer(hub.admin.post(path, json=rollback | {"to_package_id": "nope"}))
    assert status == 404 and body["fields"][0]["field"] == "to_package_id"
    done = await ok(hub.admin.post(path, json=rollback))
    assert done["desired"]["model_package_id"] == old["id"]
    page = await ok(hub.admin.get(f"{V1}/events", params={"type": "deployment.rollback_recorded"}))
    assert page["items"][0]["source"] == "user"


async def _cli(hub: Running, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "PILOTHOUSE_HUB_URL": hub.url, "PILOTHOUSE_TOKEN": ADMIN}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_promote_makes_a_challenger_the_champion_with_the_cli(tmp_path: Path) -> None:
    async with running(settings(tmp_path / "hub")) as hub:
        pe = await hub.pe()
        champion, first, second = [await hub.package("m", v) for v in ("1", "2", "3")]
        body = {
            "name": "dep",
            "prediction_environment_id": pe["id"],
            "model_package_id": champion["id"],
            "challenger_ids": [first["id"], second["id"]],
        }
        dep = await ok(hub.admin.post(f"{V1}/deployments", json=body), 201)
        code, out, err = await _cli(hub, "deployment", "promote", dep["id"], second["id"], "--json")
        assert code == 0, err
        promoted = orjson.loads(out)["desired"]
        assert promoted["model_package_id"] == second["id"]
        assert promoted["challenger_ids"] == [first["id"]] and promoted["generation"] == 2
        code, out, err = await _cli(hub, "deployment", "promote", dep["id"], champion["id"])
        assert code != 0 and "not a challenger" in err
        events = await ok(hub.admin.get(f"{V1}/events", params={"type": "deployment.promoted"}))
        assert events["items"][0]["data"]["previous_model_package_id"] == champion["id"]
        # the monitoring table of the same CLI
        agent = await hub.agent(pe["id"])
        assert (await post(agent, [window(dep["id"], second["id"], minute(0))]))[0] == 200
        code, out, err = await _cli(hub, "deployment", "monitoring", dep["id"])
        assert code == 0, err
        header, row = out.splitlines()[1:3]
        assert header.split()[:4] == ["START", "PACKAGE", "REQUESTS", "ERROR_RATE"]
        assert second["id"] in row and " 100 " in row
        code, out, err = await _cli(hub, "deployment", "monitoring", dep["id"], "--json")
        assert code == 0 and orjson.loads(out)["points"][0]["requests"] == 100
