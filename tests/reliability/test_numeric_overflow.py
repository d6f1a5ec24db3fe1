"""Integers beyond 64 bits are refused (422, or ``resync`` for the watch stream), never a 500.

Issue 9, item 4: orjson and SQLite hold at most 64-bit integers, and a larger
one in a request body reached them and answered 500 — for an agent, a batch it
would retry forever. Every JSON body field that reaches orjson or SQLite is
tried here with 2**70 (and the edges of the signed 64-bit range), and the hub
must have counted no 5xx at the end.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.support import V1, Running, answer, event, next_message, ok

pytestmark = pytest.mark.anyio

HUGE = 2**70
INT64_MAX = 2**63 - 1


async def _setup(hub: Running) -> tuple[dict[str, Any], dict[str, Any], Any]:
    pe = await hub.pe()
    dep = await hub.deployment(pe["id"], (await hub.package())["id"])
    return pe, dep, await hub.agent(pe["id"])


async def _refused(request: Any, field: str) -> None:
    status, body = await answer(request)
    assert status == 422, body
    named = [f["field"] for f in body["fields"]]
    assert any(name == field or name.startswith(field + ".") for name in named), body


async def _no_5xx(hub: Running) -> None:
    metrics = (await ok(hub.session(None).get("/metrics"))).decode()
    assert 'status="5' not in metrics


async def test_plugin_settings_on_pe_creation(hub: Running) -> None:
    for value in (HUGE, -HUGE, {"deep": [1, {"n": HUGE}]}, 1e300):
        body = {"name": "p", "platform": "test", "plugin_settings": {"n": value}}
        await _refused(
            hub.admin.post(f"{V1}/prediction-environments", json=body), "plugin_settings"
        )
    edge = {"name": "p", "platform": "test", "plugin_settings": {"max": INT64_MAX, "min": -(2**63)}}
    created = await ok(hub.admin.post(f"{V1}/prediction-environments", json=edge), 201)
    assert created["plugin_settings"] == {"max": INT64_MAX, "min": -(2**63)}
    await _no_5xx(hub)


async def test_event_data_from_an_agent(hub: Running) -> None:
    pe, dep, agent = await _setup(hub)
    bad = event(pe["id"], deployment_id=dep["id"], data={"n": HUGE})
    await _refused(agent.post(f"{V1}/events", json={"events": [bad]}), "events.0.data")
    _, body = await answer(agent.post(f"{V1}/events", json={"events": [bad]}))
    assert "n: 1180591620717411303424 is outside the signed 64-bit range" in body["message"]
    nested = event(pe["id"], data={"list": [0, [INT64_MAX + 1]]})
    await _refused(agent.post(f"{V1}/events", json={"events": [nested]}), "events.0.data")
    fine = event(pe["id"], deployment_id=dep["id"], data={"n": INT64_MAX, "f": 1.5})
    assert (await ok(agent.post(f"{V1}/events", json={"events": [fine]})))["accepted"] == 1
    await _no_5xx(hub)


async def test_generation_of_an_observed_status(hub: Running) -> None:
    _, dep, agent = await _setup(hub)
    for generation in (HUGE, INT64_MAX + 1, -1, False, "1"):
        report = {"state": "ready", "generation": generation}
        await _refused(agent.put(f"{V1}/deployments/{dep['id']}/status", json=report), "generation")
    await _no_5xx(hub)


async def test_heartbeat_deployment_generations(hub: Running) -> None:
    pe, dep, agent = await _setup(hub)
    beat = {"deployments": {dep["id"]: HUGE}}
    await _refused(
        agent.post(f"{V1}/prediction-environments/{pe['id']}/heartbeat", json=beat), "deployments"
    )
    await _no_5xx(hub)


@pytest.mark.parametrize("given", [str(INT64_MAX + 1), str(HUGE), "-1", "1e3", "x"])
async def test_last_event_id_beyond_64_bits_resyncs(hub: Running, given: str) -> None:
    pe, _, agent = await _setup(hub)
    for headers, params in (({"Last-Event-ID": given}, {}), ({}, {"last_event_id": given})):
        async with agent.get(
            f"{V1}/prediction-environments/{pe['id']}/watch", headers=headers, params=params
        ) as resp:
            assert resp.status == 200
            assert (await next_message(resp)).event == "comment"
            assert (await next_message(resp)).event == "resync"
    await _no_5xx(hub)


async def test_a_cursor_beyond_64_bits_is_refused(hub: Running) -> None:
    await _refused(hub.admin.get(f"{V1}/events", params={"cursor": f"{HUGE}.01ABC"}), "cursor")
    await _no_5xx(hub)


async def test_other_integer_fields(hub: Running) -> None:
    pe, dep, _ = await _setup(hub)
    pkg = dep["desired"]["model_package_id"]
    cases = [
        (hub.admin.put(f"{V1}/settings/retention", json={"days": HUGE}), "days"),
        (hub.admin.get(f"{V1}/events", params={"limit": str(HUGE)}), "limit"),
        (
            hub.admin.post(
                f"{V1}/deployments",
                json={
                    "name": "n",
                    "prediction_environment_id": pe["id"],
                    "model_package_id": pkg,
                    "settings": {"replicas": HUGE},
                },
            ),
            "settings.replicas",
        ),
    ]
    for request, field in cases:
        await _refused(request, field)
    await _no_5xx(hub)
