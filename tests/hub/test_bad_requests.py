"""Bad requests get clear JSON errors (400, 404, 405, 413, 422) and change nothing stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.hub.support import V1, Running, answer, ok, rows, running, settings

pytestmark = pytest.mark.anyio

TABLES = ("prediction_environments", "deployments", "changes", "events", "model_packages")


async def _counts(hub: Running) -> dict[str, int]:
    return {table: await rows(hub, table) for table in TABLES}


async def test_bad_requests_answer_clearly_and_change_nothing(hub: Running) -> None:
    pe = await hub.pe()
    pkg = await hub.package()
    dep = await hub.deployment(pe["id"], pkg["id"])
    before = await _counts(hub)
    snapshot = await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}"))
    admin, pes, deps = hub.admin, f"{V1}/prediction-environments", f"{V1}/deployments"
    not_json = {"data": b"{nope", "headers": {"Content-Type": "application/json"}}
    new_pe = {"name": "x", "platform": "test"}
    new_dep = {"name": "n", "prediction_environment_id": pe["id"], "model_package_id": pkg["id"]}
    stop_with_pkg = {"action": "stop", "model_package_id": pkg["id"]}
    cases = [
        (admin.post(pes, **not_json), 400, None),
        (admin.post(f"{V1}/events", data=b"", headers=not_json["headers"]), 422, "events"),
        (admin.post(pes, json={"platform": "test"}), 422, "name"),
        (admin.post(pes, json=new_pe | {"platform": "vms"}), 422, "platform"),
        (admin.post(pes, json=new_pe | {"extra": 1}), 422, "extra"),
        (admin.post(pes, json=[1, 2]), 422, "(body)"),
        (
            admin.post(deps, json=new_dep | {"settings": {"replicas": "many"}}),
            422,
            "settings.replicas",
        ),
        (admin.post(f"{deps}/{dep['id']}/actions", json=stop_with_pkg), 422, "model_package_id"),
        (admin.post(f"{deps}/dep-nope/actions", json={"action": "stop"}), 404, None),
        (admin.delete(f"{deps}/dep-nope"), 404, None),
        (admin.get(f"{V1}/model-packages/mp-nope"), 404, None),
        (admin.get(f"{V1}/model-packages/mp-nope/archive"), 404, None),
        (admin.get(f"{deps}/dep-nope/service-health"), 404, None),
        (admin.get(f"{V1}/no-such-thing"), 404, None),
        (admin.patch(f"{deps}/{dep['id']}"), 405, None),
        (admin.get(deps, params={"limit": "many"}), 422, "limit"),
        (admin.get(f"{V1}/events", params={"since": "yesterday"}), 422, "since"),
        (admin.get(f"{V1}/events", params={"bogus": "1"}), 422, "bogus"),
    ]
    for request, status, field in cases:
        got, body = await answer(request)
        assert got == status, (got, body)
        assert set(body) == {"error", "message", "fields"} and body["message"]
        if field is not None:
            assert field in [f["field"] for f in body["fields"]], body
    assert await _counts(hub) == before
    assert await ok(hub.admin.get(f"{V1}/deployments/{dep['id']}")) == snapshot


async def test_json_body_over_the_limit_is_413(tmp_path: Path, anyio_backend: str) -> None:
    async with running(settings(tmp_path, limits={"max_request_bytes": 2048})) as hub:
        big = {
            "name": "x",
            "platform": "test",
            "description": "d" * 1900,
            "plugin_settings": {"a": "b" * 500},
        }
        status, body = await answer(hub.admin.post(f"{V1}/prediction-environments", json=big))
        assert status == 413 and body["error"] == "payload_too_large"
        assert await rows(hub, "prediction_environments") == 0


async def test_batch_over_the_configured_limit_is_422(tmp_path: Path, anyio_backend: str) -> None:
    from tests.hub.support import event

    async with running(settings(tmp_path, limits={"max_event_batch": 3})) as hub:
        pe = await hub.pe()
        batch = [event(pe["id"]) for _ in range(4)]
        status, body = await answer(hub.admin.post(f"{V1}/events", json={"events": batch}))
        assert status == 422 and body["fields"][0]["field"] == "events"
        assert await rows(hub, "events") == 0
