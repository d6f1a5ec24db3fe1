"""The Use Management Agent switch: while off, the PE's agent receives no desired-state change.

Its snapshot, its revision and its watch stream stay where they were when the
switch went off (a deployment changed meanwhile is shown as it was, not as it
is now); changes are still recorded; turning it on sends what changed. Each
switch is one ``user`` event of the PE, and survives a restart of the hub.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.hub.support import V1, Running, next_message, ok, running, settings

pytestmark = pytest.mark.anyio


async def _switch(hub: Running, pe_id: str, on: bool) -> dict[str, Any]:
    body = {"use_management_agent": on}
    found: dict[str, Any] = await ok(
        hub.admin.patch(f"{V1}/prediction-environments/{pe_id}", json=body)
    )
    return found


async def _message(stream: aiohttp.ClientResponse, timeout: float = 5.0) -> Any:
    while (message := await next_message(stream, timeout)).event == "comment":
        pass
    return message


async def test_off_freezes_what_the_agent_sees_and_on_sends_what_changed(hub: Running) -> None:
    pe = await hub.pe()
    pkg, pkg2 = await hub.package("iris", "1"), await hub.package("iris", "2")
    agent = await hub.agent(pe["id"])
    kept = await hub.deployment(pe["id"], pkg["id"], "kept")
    changed = await hub.deployment(pe["id"], pkg["id"], "changed")
    desired = f"{V1}/prediction-environments/{pe['id']}/desired-state"
    before = await ok(agent.get(desired))
    assert before["revision"] == 2

    off = await _switch(hub, pe["id"], False)
    assert off["use_management_agent"] is False
    watch = await agent.get(f"{V1}/prediction-environments/{pe['id']}/watch",
                            headers={"Last-Event-ID": "1"})  # fmt: skip
    # An agent one change behind still gets that change, as it was when frozen.
    caught_up = await _message(watch)
    assert (caught_up.id, caught_up.json()["id"], caught_up.json()["generation"]) == (
        "2", changed["id"], 1,
    )  # fmt: skip

    act = f"{V1}/deployments/{changed['id']}/actions"
    await ok(hub.admin.post(act, json={"action": "replace_model", "model_package_id": pkg2["id"]}))
    await ok(hub.admin.post(act, json={"action": "stop"}))
    late = await hub.deployment(pe["id"], pkg["id"], "late")
    await ok(hub.admin.delete(f"{V1}/deployments/{kept['id']}"), 202)
    assert await ok(agent.get(desired)) == before  # frozen
    with pytest.raises(TimeoutError):
        await _message(watch, timeout=0.5)  # nothing reaches the agent
    got = await ok(hub.admin.get(f"{V1}/deployments/{changed['id']}"))
    assert got["desired"]["generation"] == 3  # recorded all the same
    # A stream resumed at the frozen revision, or replaying from 0, shows the frozen state.
    async with agent.get(f"{V1}/prediction-environments/{pe['id']}/watch",
                         headers={"Last-Event-ID": "0"}) as fresh:  # fmt: skip
        replayed = {(m.json()["id"], m.json()["generation"]) for m in
                    [await _message(fresh), await _message(fresh)]}  # fmt: skip
        assert replayed == {(kept["id"], 1), (changed["id"], 1)}
        with pytest.raises(TimeoutError):
            await _message(fresh, timeout=0.3)

    on = await _switch(hub, pe["id"], True)
    assert on["use_management_agent"] is True
    after = [await _message(watch) for _ in range(3)]
    by_id = {m.json()["id"]: m for m in after}
    assert by_id[changed["id"]].json()["state"] == "stopped"
    assert by_id[changed["id"]].json()["model_package_id"] == pkg2["id"]
    assert by_id[late["id"]].event == "deployment"
    assert by_id[kept["id"]].event == "removed"
    watch.close()
    now = await ok(agent.get(desired))
    assert {d["id"] for d in now["deployments"]} == {changed["id"], late["id"]}

    events = await ok(hub.admin.get(f"{V1}/events", params={"source": "user", "q": "Management"}))
    kinds = [e["type"] for e in events["items"]]
    assert kinds == [
        "environment.management_agent_enabled",
        "environment.management_agent_disabled",
    ]
    assert all(
        e["deployment_id"] is None and e["status"] == "informational" for e in events["items"]
    )


async def test_switching_to_the_state_it_is_in_changes_and_records_nothing(hub: Running) -> None:
    pe = await hub.pe()
    assert (await _switch(hub, pe["id"], True))["use_management_agent"] is True
    await _switch(hub, pe["id"], False)
    await _switch(hub, pe["id"], False)
    empty = await ok(hub.admin.patch(f"{V1}/prediction-environments/{pe['id']}", json={}))
    assert empty["use_management_agent"] is False
    events = await ok(hub.admin.get(f"{V1}/events", params={"prediction_environment_id": pe["id"]}))
    assert [e["type"] for e in events["items"]] == ["environment.management_agent_disabled"]
    listed = await ok(hub.admin.get(f"{V1}/prediction-environments"))
    assert listed["items"][0]["use_management_agent"] is False


async def test_bad_requests_are_named_and_agents_may_not_switch(hub: Running) -> None:
    pe = await hub.pe()
    agent = await hub.agent(pe["id"])
    path = f"{V1}/prediction-environments/{pe['id']}"
    async with agent.patch(path, json={"use_management_agent": False}) as refused:
        assert refused.status == 403
    async with hub.admin.patch(path, json={"use_management_agent": "maybe"}) as bad:
        assert bad.status == 422
        assert (await bad.json())["fields"][0]["field"] == "use_management_agent"
    async with hub.admin.patch(path, json={"name": "other"}) as unknown:
        assert unknown.status == 422
    async with hub.admin.patch(f"{V1}/prediction-environments/pe-nope", json={}) as missing:
        assert missing.status == 404


async def test_the_switch_survives_a_restart(tmp_path: Path, anyio_backend: str) -> None:
    hub_settings = settings(tmp_path)
    async with running(hub_settings) as hub:
        pe = await hub.pe()
        await _switch(hub, pe["id"], False)
    async with running(hub_settings) as hub:
        got = await ok(hub.admin.get(f"{V1}/prediction-environments/{pe['id']}"))
        assert got["use_management_agent"] is False
