"""Prediction environments: register, read, list with cursors, names are unique, tokens."""

from __future__ import annotations

import pytest

from tests.hub.support import V1, Running, answer, ok, rows, stored_bytes

pytestmark = pytest.mark.anyio


async def test_create_then_read_back(hub: Running) -> None:
    body = {
        "name": "prod eu",
        "platform": "docker",
        "description": "EU",
        "plugin_settings": {"a": 1},
    }
    created = await ok(hub.admin.post(f"{V1}/prediction-environments", json=body), 201)
    assert created["id"].startswith("pe-")
    assert created["agent"] == {"online": False, "last_heartbeat_at": None, "info": {}}
    read = await ok(hub.admin.get(f"{V1}/prediction-environments/{created['id']}"))
    assert read == created
    assert {k: read[k] for k in body} == body


async def test_duplicate_name_is_a_conflict_and_changes_nothing(hub: Running) -> None:
    await hub.pe("prod")
    status, body = await answer(
        hub.admin.post(f"{V1}/prediction-environments", json={"name": "prod", "platform": "test"})
    )
    assert status == 409
    assert body["error"] == "conflict" and "prod" in body["message"]
    assert await rows(hub, "prediction_environments") == 1


async def test_list_pages_newest_first_with_a_cursor(hub: Running) -> None:
    ids = [(await hub.pe(f"pe{i}"))["id"] for i in range(5)]
    first = await ok(hub.admin.get(f"{V1}/prediction-environments", params={"limit": "2"}))
    assert [p["id"] for p in first["items"]] == ids[::-1][:2]
    second = await ok(
        hub.admin.get(
            f"{V1}/prediction-environments", params={"limit": "2", "cursor": first["next_cursor"]}
        )
    )
    third = await ok(
        hub.admin.get(
            f"{V1}/prediction-environments", params={"limit": "2", "cursor": second["next_cursor"]}
        )
    )
    seen = [p["id"] for page in (first, second, third) for p in page["items"]]
    assert seen == ids[::-1]
    assert third["next_cursor"] is None


async def test_agent_token_is_shown_once_and_stored_hashed(hub: Running) -> None:
    pe = await hub.pe()
    token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
    assert set(token) == {"id", "token", "prediction_environment_id", "created_at"}
    assert token["prediction_environment_id"] == pe["id"]
    assert token["token"].encode() not in await stored_bytes(hub.settings)


async def test_unknown_pe_is_404(hub: Running) -> None:
    status, body = await answer(hub.admin.get(f"{V1}/prediction-environments/pe-nope"))
    assert status == 404 and body["error"] == "not_found" and "pe-nope" in body["message"]
    status, _ = await answer(hub.admin.post(f"{V1}/prediction-environments/pe-nope/agent-tokens"))
    assert status == 404
