"""Notification policies: create, read, list, change, delete; refusals name the field."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.support import V1, Running, answer, ok

pytestmark = pytest.mark.anyio

NPO = f"{V1}/notification-policies"


async def _channel(hub: Running, name: str = "c") -> dict[str, Any]:
    body = {"name": name, "type": "slack", "url": "https://hooks.slack.com/services/T/B/x"}
    result: dict[str, Any] = await ok(hub.admin.post(f"{V1}/notification-channels", json=body), 201)
    return result


async def test_policy_lifecycle(hub: Running) -> None:
    channel = await _channel(hub)
    body = {
        "name": "prod outages",
        "channel_id": channel["id"],
        "statuses": ["failing", "at_risk"],
        "event_types": ["deployment.*", "action.*.failed"],
        "prediction_environment_ids": ["pe-1"],
        "deployment_ids": [],
        "group_window_s": 60,
        "repeat_interval_s": 3600,
    }
    created = await ok(hub.admin.post(NPO, json=body), 201)
    assert {k: created[k] for k in body} == body
    assert created["send_resolved"] is True and created["enabled"] is True
    assert await ok(hub.admin.get(f"{NPO}/{created['id']}")) == created
    other = await _channel(hub, "other")
    changed = await ok(
        hub.admin.patch(
            f"{NPO}/{created['id']}",
            json={"channel_id": other["id"], "enabled": False, "statuses": []},
        )
    )
    assert changed["channel_id"] == other["id"] and changed["enabled"] is False
    assert changed["statuses"] == [] and changed["event_types"] == body["event_types"]
    assert changed["updated_at"] >= created["updated_at"]
    listed = await ok(hub.admin.get(NPO))
    assert [p["id"] for p in listed["items"]] == [created["id"]]
    await ok(hub.admin.delete(f"{NPO}/{created['id']}"), 204)
    status, _ = await answer(hub.admin.get(f"{NPO}/{created['id']}"))
    assert status == 404


async def test_bad_policies_are_refused_naming_the_field(hub: Running) -> None:
    channel = await _channel(hub)
    base = {"name": "p", "channel_id": channel["id"]}
    cases = [
        ({"channel_id": "nch-nope"}, 404, "channel_id"),
        ({"statuses": ["red"]}, 422, "statuses.0"),
        ({"event_types": ["Deployment Ready"]}, 422, "event_types.0"),
        ({"group_window_s": -1}, 422, "group_window_s"),
        ({"repeat_interval_s": 0}, 422, "repeat_interval_s"),
        ({"surprise": 1}, 422, "surprise"),
        ({"prediction_environment_ids": ["pe-1", ""]}, 422, "prediction_environment_ids.1"),
        ({"deployment_ids": [""]}, 422, "deployment_ids.0"),
    ]
    for change, status, field in cases:
        got, error = await answer(hub.admin.post(NPO, json=base | change))
        assert got == status and error["fields"][0]["field"] == field, (change, error)
    await ok(hub.admin.post(NPO, json=base), 201)
    status, _ = await answer(hub.admin.post(NPO, json=base))
    assert status == 409
    policy = (await ok(hub.admin.get(NPO)))["items"][0]
    status, error = await answer(
        hub.admin.patch(f"{NPO}/{policy['id']}", json={"channel_id": "nch-nope"})
    )
    assert status == 404 and error["fields"][0]["field"] == "channel_id"
