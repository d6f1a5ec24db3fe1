"""Deployments: create, actions bump the generation and record a user event, delete, status."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.support import DEFAULT_SETTINGS, V1, Running, answer, ok, rows

pytestmark = pytest.mark.anyio


async def _setup(hub: Running) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    pe = await hub.pe()
    pkg = await hub.package("iris", "1")
    return pe, pkg, await hub.deployment(pe["id"], pkg["id"], "fraud")


async def test_create_reads_back_desired_launched_at_generation_1(hub: Running) -> None:
    _, pkg, dep = await _setup(hub)
    assert set(dep) == {
        "id", "name", "prediction_environment_id", "desired", "observed", "service_health",
        "created_at", "updated_at", "last_event_at",
    }  # fmt: skip
    assert dep["desired"] == {
        "state": "launched",
        "model_package_id": pkg["id"],
        "challenger_ids": [],
        "settings": DEFAULT_SETTINGS,
        "generation": 1,
        "rollback": None,
    }
    assert set(dep["observed"]) == {
        "state", "model_package_id", "prediction_url", "grpc_target", "generation", "updated_at",
    }  # fmt: skip
    assert dep["service_health"] == {
        "status": "unknown",
        "reason": "",
        "event_id": None,
        "source": None,
    }
    assert await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")) == dep


async def test_each_action_bumps_the_generation_and_records_a_user_event(hub: Running) -> None:
    pe, pkg, dep = await _setup(hub)
    newer = await hub.package("iris", "2")
    url = f"{V1}/deployments/{dep['id']}/actions"
    replace = {"model_package_id": newer["id"]}
    challengers = {"challenger_ids": [pkg["id"]]}
    steps: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"action": "stop"}, {"state": "stopped"}),
        ({"action": "launch"}, {"state": "launched"}),
        ({"action": "replace_model"} | replace, replace),
        ({"action": "relaunch"} | challengers, challengers),
    ]
    for generation, (request, expected) in enumerate(steps, start=2):
        after = await ok(hub.admin.post(url, json=request))
        assert after["desired"]["generation"] == generation
        assert {k: after["desired"][k] for k in expected} == expected
    snapshot = await ok(hub.admin.get(f"{V1}/prediction-environments/{pe['id']}/desired-state"))
    assert snapshot["deployments"][0]["relaunch_token"] == 1
    events = await ok(
        hub.admin.get(f"{V1}/events", params={"deployment_id": dep["id"], "source": "user"})
    )
    requested = [e for e in events["items"] if e["type"] == "deployment.action_requested"]
    assert [e["data"]["action"] for e in requested] == [
        "relaunch",
        "replace_model",
        "launch",
        "stop",
    ]
    assert [e["data"]["generation"] for e in requested] == [5, 4, 3, 2]
    assert all(e["status"] == "informational" for e in requested)
    assert requested[1]["data"]["previous_model_package_id"] == pkg["id"]


async def test_replace_model_needs_a_known_package(hub: Running) -> None:
    _, _, dep = await _setup(hub)
    url = f"{V1}/deployments/{dep['id']}/actions"
    status, body = await answer(hub.admin.post(url, json={"action": "replace_model"}))
    assert status == 422 and body["fields"][0]["field"] == "model_package_id"
    status, body = await answer(
        hub.admin.post(url, json={"action": "replace_model", "model_package_id": "mp-nope"})
    )
    assert status == 404 and body["fields"][0]["field"] == "model_package_id"
    status, body = await answer(hub.admin.post(url, json={"action": "explode"}))
    assert status == 422 and body["fields"][0]["field"] == "action"
    assert (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["desired"]["generation"] == 1


async def test_create_refuses_unknown_references_naming_the_field(hub: Running) -> None:
    pe = await hub.pe()
    pkg = await hub.package()
    good = {"prediction_environment_id": pe["id"], "model_package_id": pkg["id"]}
    cases = [
        (good | {"prediction_environment_id": "pe-nope"}, "prediction_environment_id"),
        (good | {"model_package_id": "mp-nope"}, "model_package_id"),
        (good | {"challenger_ids": ["x"]}, "challenger_ids.0"),
    ]
    for body, field in cases:
        status, answer_body = await answer(
            hub.admin.post(f"{V1}/deployments", json={"name": "d"} | body)
        )
        assert status == 404 and answer_body["fields"][0]["field"] == field
    assert await rows(hub, "deployments") == 0


async def test_duplicate_name_in_a_pe_is_a_conflict(hub: Running) -> None:
    pe, pkg, _ = await _setup(hub)
    body = {"name": "fraud", "prediction_environment_id": pe["id"], "model_package_id": pkg["id"]}
    status, _ = await answer(hub.admin.post(f"{V1}/deployments", json=body))
    assert status == 409
    other_pe = await hub.pe("staging")
    await hub.deployment(other_pe["id"], pkg["id"], "fraud")  # another PE: fine


async def test_delete_removes_from_desired_state_and_keeps_a_tombstone(hub: Running) -> None:
    pe, pkg, dep = await _setup(hub)
    status, _ = await answer(hub.admin.delete(f"{V1}/deployments/{dep['id']}"))
    assert status == 202
    status, _ = await answer(hub.admin.get(f"{V1}/deployments/{dep['id']}"))
    assert status == 404
    snapshot = await ok(hub.admin.get(f"{V1}/prediction-environments/{pe['id']}/desired-state"))
    assert snapshot["deployments"] == [] and snapshot["revision"] == 2
    assert (await ok(hub.admin.get(f"{V1}/deployments")))["items"] == []
    assert await rows(hub, "deployments") == 1  # the tombstone
    status, _ = await answer(hub.admin.delete(f"{V1}/deployments/{dep['id']}"))
    assert status == 404
    await hub.deployment(pe["id"], pkg["id"], "fraud")  # the name is free again


async def test_list_filters_by_pe(hub: Running) -> None:
    pe, pkg, dep = await _setup(hub)
    other = await hub.pe("staging")
    dep2 = await hub.deployment(other["id"], pkg["id"], "other")
    everything = await ok(hub.admin.get(f"{V1}/deployments"))
    assert [d["id"] for d in everything["items"]] == [dep2["id"], dep["id"]]
    only = await ok(
        hub.admin.get(f"{V1}/deployments", params={"prediction_environment_id": pe["id"]})
    )
    assert [d["id"] for d in only["items"]] == [dep["id"]]


async def test_agent_reports_observed_status(hub: Running) -> None:
    pe, pkg, dep = await _setup(hub)
    agent = await hub.agent(pe["id"])
    url = f"{V1}/deployments/{dep['id']}/status"
    report = {
        "state": "ready",
        "model_package_id": pkg["id"],
        "prediction_url": "http://x",
        "generation": 1,
    }
    await ok(agent.put(url, json=report), 204)
    observed = (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["observed"]
    assert {k: observed[k] for k in report} == report and observed["updated_at"]
    await ok(agent.put(url, json=report | {"state": "launching", "generation": 0}), 204)
    stale = (await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")))["observed"]
    assert stale["state"] == "ready"  # an older generation does not overwrite a newer one
    status, _ = await answer(agent.put(f"{V1}/deployments/dep-nope/status", json=report))
    assert status == 404
    await ok(hub.admin.delete(f"{V1}/deployments/{dep['id']}"), 202)
    status, _ = await answer(agent.put(url, json=report))
    assert status == 404


async def test_the_observed_grpc_target_is_stored_returned_and_cleared(hub: Running) -> None:
    pe, pkg, dep = await _setup(hub)
    agent = await hub.agent(pe["id"])
    url, read = f"{V1}/deployments/{dep['id']}/status", f"{V1}/deployments/{dep['id']}"
    report = {"state": "ready", "model_package_id": pkg["id"], "generation": 1,
              "prediction_url": "http://10.0.0.7:8080/v1/deployments/x/predict"}  # fmt: skip
    for target in ("10.0.0.7:8081", "[::1]:8001", "iris.models.svc:9000", "dns:///h:1"):
        await ok(agent.put(url, json=report | {"grpc_target": target}), 204)
        observed = (await ok(hub.admin.get(read)))["observed"]
        assert observed["grpc_target"] == target and observed["prediction_url"]
    listed = await ok(hub.admin.get(f"{V1}/deployments"))
    assert listed["items"][0]["observed"]["grpc_target"] == "dns:///h:1"
    # A report without one (a server without gRPC, a stopped deployment) clears it.
    await ok(agent.put(url, json=report | {"state": "stopped"}), 204)
    assert (await ok(hub.admin.get(read)))["observed"]["grpc_target"] is None
    for bad in ("http://h:1", "h", "h:port", "h:1 ; x", "a" * 600 + ":1"):
        status, doc = await answer(agent.put(url, json=report | {"grpc_target": bad}))
        assert status == 422 and "grpc_target" in str(doc), (bad, doc)
