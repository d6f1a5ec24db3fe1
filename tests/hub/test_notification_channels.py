"""Notification channels: secrets sealed and never shown, test messages to real receivers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.hub.notifications import signing
from tests.hub.receivers import LOCAL_TARGETS, down_url, receiving
from tests.hub.support import V1, Running, answer, ok, running, settings, stored_bytes

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Running]:
    """A hub that may send to the receivers on 127.0.0.1."""
    async with running(settings(tmp_path / "hub", notifications=LOCAL_TARGETS)) as serving:
        yield serving


NCH = f"{V1}/notification-channels"
SECRET = "a-webhook-secret-of-some-length"


async def _channel(hub: Running, **body: Any) -> dict[str, Any]:
    result: dict[str, Any] = await ok(hub.admin.post(NCH, json=body), 201)
    return result


async def test_urls_and_secrets_are_sealed_and_never_shown(hub: Running) -> None:
    slack_url = "https://hooks.slack.com/services/T0AAA/B0BBB/abcdefghijklmnopqrstWXYZ"
    hook_url = "https://receiver.example/hooks/tokenINpath?key=querysecret"
    slack = await _channel(hub, name="oncall", type="slack", url=slack_url)
    hook = await _channel(hub, name="pager", type="webhook", url=hook_url, secret=SECRET)
    assert slack["url"] == "https://hooks.slack.com/…WXYZ" and slack["has_secret"] is False
    assert hook["has_secret"] is True and hook["secret"] is None  # given, so not echoed
    shown = [
        await ok(hub.admin.get(f"{NCH}/{slack['id']}")),
        await ok(hub.admin.get(f"{NCH}/{hook['id']}")),
        *(await ok(hub.admin.get(NCH)))["items"],
    ]
    text = repr(shown)
    for secret in ("abcdefghijklmnop", "tokenINpath", "querysecret", SECRET):
        assert secret not in text
    assert all("secret" not in item for item in shown)
    stored = await stored_bytes(hub.settings)
    for secret in (slack_url, "abcdefghijklmnop", "tokenINpath", "querysecret", SECRET):
        assert secret.encode() not in stored


async def test_a_webhook_without_secret_gets_one_shown_once(hub: Running) -> None:
    async with receiving() as receiver:
        hook = await _channel(hub, name="h", type="webhook", url=receiver.url)
        secret = hook["secret"]
        assert secret.startswith("whsec_") and hook["has_secret"] is True
        assert "secret" not in await ok(hub.admin.get(f"{NCH}/{hook['id']}"))
        await ok(hub.admin.post(f"{NCH}/{hook['id']}/test"))
        (request,) = await receiver.wait_for(1)
        header = request.headers[signing.HEADER]
        assert signing.verify(secret, request.body, header, time.time())


async def test_slack_test_message_is_block_kit_with_the_status_colour(hub: Running) -> None:
    async with receiving() as slack:
        channel = await _channel(hub, name="s", type="slack", url=slack.url)
        delivery = await ok(hub.admin.post(f"{NCH}/{channel['id']}/test"))
        (request,) = await slack.wait_for(1)
    assert request.path == "/services/T000/B000/s3cr3tPATHtoken"
    assert request.headers["Content-Type"] == "application/json"
    assert signing.HEADER not in request.headers
    payload = request.json()
    assert "this channel works" in payload["text"]
    attachment = payload["attachments"][0]
    assert attachment["color"].startswith("#")
    assert [b["type"] for b in attachment["blocks"]][:2] == ["section", "section"]
    assert delivery["kind"] == "test" and delivery["state"] == "delivered"
    assert delivery["attempts"] == 1 and delivery["attempt_log"][0]["http_status"] == 200
    assert request.headers["X-Pilothouse-Delivery"] == delivery["id"]


async def test_webhook_test_message_is_signed_over_timestamp_and_body(hub: Running) -> None:
    async with receiving() as receiver:
        channel = await _channel(hub, name="w", type="webhook", url=receiver.url, secret=SECRET)
        await ok(hub.admin.post(f"{NCH}/{channel['id']}/test"))
        (request,) = await receiver.wait_for(1)
    header = request.headers[signing.HEADER]
    stamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(stamp - time.time()) < 60
    assert signing.verify(SECRET, request.body, header, time.time())
    assert not signing.verify(SECRET, request.body + b" ", header, time.time())
    assert not signing.verify("another-secret-entirely", request.body, header, time.time())
    assert not signing.verify(SECRET, request.body, header, time.time() + 301)
    message = request.json()
    assert message["kind"] == "test" and message["events"] == [] and message["policy"] is None


async def test_a_failed_test_is_in_the_delivery_log_without_the_url(hub: Running) -> None:
    async with receiving(answers=[500]) as receiver:
        broken = await _channel(hub, name="broken", type="webhook", url=receiver.url)
        failed = await ok(hub.admin.post(f"{NCH}/{broken['id']}/test"))
    assert failed["state"] == "failed" and failed["attempts"] == 1
    assert failed["attempt_log"][0]["http_status"] == 500
    assert "500" in failed["last_error"]
    gone = await _channel(hub, name="gone", type="slack", url=down_url())
    refused = await ok(hub.admin.post(f"{NCH}/{gone['id']}/test"))
    assert refused["state"] == "failed" and refused["attempt_log"][0]["http_status"] is None
    assert refused["last_error"] and "s3cr3tPATHtoken" not in refused["last_error"]
    log = await ok(hub.admin.get(f"{V1}/notification-deliveries", params={"kind": "test"}))
    assert {d["id"] for d in log["items"]} == {failed["id"], refused["id"]}


async def test_bad_channels_are_refused_naming_the_field(hub: Running) -> None:
    cases = [
        ({"name": "a", "type": "slack", "url": "https://x.example/a", "secret": SECRET}, "secret"),
        ({"name": "a", "type": "webhook", "url": "ftp://x.example/a"}, "url"),
        ({"name": "a", "type": "email", "url": "https://x.example/a"}, "type"),
        ({"name": "a", "type": "webhook", "url": "https://x", "secret": "short"}, "secret"),
    ]
    for body, field in cases:
        status, error = await answer(hub.admin.post(NCH, json=body))
        assert status == 422 and error["fields"][0]["field"] == field, (body, error)
    await _channel(hub, name="taken", type="slack", url="https://x.example/a")
    status, _ = await answer(
        hub.admin.post(NCH, json={"name": "taken", "type": "slack", "url": "https://x.example/b"})
    )
    assert status == 409


async def test_change_and_delete_a_channel(hub: Running) -> None:
    async with receiving() as first, receiving() as second:
        channel = await _channel(hub, name="c", type="webhook", url=first.url, secret=SECRET)
        changed = await ok(
            hub.admin.patch(f"{NCH}/{channel['id']}", json={"name": "c2", "url": second.url})
        )
        assert changed["name"] == "c2" and changed["has_secret"] is True
        await ok(hub.admin.post(f"{NCH}/{channel['id']}/test"))
        (request,) = await second.wait_for(1)
        assert signing.verify(SECRET, request.body, request.headers[signing.HEADER], time.time())
        assert first.requests == []
    policy = {"name": "p", "channel_id": channel["id"]}
    created = await ok(hub.admin.post(f"{V1}/notification-policies", json=policy), 201)
    status, body = await answer(hub.admin.delete(f"{NCH}/{channel['id']}"))
    assert status == 409 and "'p'" in body["message"]
    await ok(hub.admin.delete(f"{V1}/notification-policies/{created['id']}"), 204)
    await ok(hub.admin.delete(f"{NCH}/{channel['id']}"), 204)
    status, _ = await answer(hub.admin.get(f"{NCH}/{channel['id']}"))
    assert status == 404


async def test_agents_may_not_touch_notifications_or_settings(hub: Running) -> None:
    pe = await hub.pe()
    agent = await hub.agent(pe["id"])
    for method, path in [
        ("GET", NCH),
        ("POST", NCH),
        ("GET", f"{V1}/notification-policies"),
        ("GET", f"{V1}/notification-deliveries"),
        ("GET", f"{V1}/settings/retention"),
        ("PUT", f"{V1}/settings/retention"),
        ("GET", f"{V1}/events/export"),
    ]:
        status, _ = await answer(agent.request(method, path, json={}))
        assert status == 403, (method, path)


async def test_openapi_describes_export_and_the_webhook_message(hub: Running) -> None:
    doc = await ok(hub.session(None).get(f"{V1}/openapi.json"))
    export = doc["paths"][f"{V1}/events/export"]["get"]
    assert set(export["responses"]["200"]["content"]) == {"text/csv", "application/x-ndjson"}
    assert {"format", "q", "since", "until"} <= {p["name"] for p in export["parameters"]}
    hook = doc["webhooks"]["notification"]["post"]
    schema = hook["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/WebhookMessage"}
    assert signing.HEADER in {p["name"] for p in hook["parameters"]}
    assert "409" in doc["paths"][f"{NCH}/{{id}}"]["delete"]["responses"]
