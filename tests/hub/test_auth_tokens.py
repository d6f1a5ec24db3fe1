"""Auth: 401 without a known token, 403 outside an agent's PE, the admin token file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pilothouse.foundation.errors import ConfigError
from tests.hub.support import (
    V1,
    Running,
    answer,
    event,
    ok,
    package_bytes,
    running,
    settings,
    upload,
)

pytestmark = pytest.mark.anyio


async def test_missing_malformed_or_unknown_token_is_401(hub: Running) -> None:
    for token in (None, "", "wrong"):
        http = hub.session(token)
        status, body = await answer(http.get(f"{V1}/prediction-environments"))
        assert status == 401 and body["error"] == "unauthorized"
    basic = hub.session(None)
    status, _ = await answer(
        basic.get(f"{V1}/events", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    )
    assert status == 401


async def test_public_routes_need_no_token(hub: Running) -> None:
    anonymous = hub.session(None)
    for path in ("/healthz", "/readyz", "/metrics", f"{V1}/openapi.json"):
        status, _ = await answer(anonymous.get(path))
        assert status == 200, path


async def test_agent_token_reaches_only_its_own_pe(hub: Running) -> None:
    mine, theirs = await hub.pe("mine"), await hub.pe("theirs")
    pkg = await hub.package()
    my_dep = await hub.deployment(mine["id"], pkg["id"], "a")
    their_dep = await hub.deployment(theirs["id"], pkg["id"], "b")
    agent = await hub.agent(mine["id"])
    report = {"state": "ready", "generation": 1}
    allowed = [
        agent.get(f"{V1}/prediction-environments/{mine['id']}"),
        agent.get(f"{V1}/prediction-environments/{mine['id']}/desired-state"),
        agent.post(f"{V1}/prediction-environments/{mine['id']}/heartbeat", json={}),
        agent.post(f"{V1}/events", json={"events": [event(mine["id"])]}),
        agent.put(f"{V1}/deployments/{my_dep['id']}/status", json=report),
        agent.get(f"{V1}/model-packages/{pkg['id']}"),
    ]
    for request in allowed:
        status, body = await answer(request)
        assert status in (200, 204), body
    forbidden = [
        agent.get(f"{V1}/prediction-environments/{theirs['id']}"),
        agent.get(f"{V1}/prediction-environments/{theirs['id']}/desired-state"),
        agent.get(f"{V1}/prediction-environments/{theirs['id']}/watch"),
        agent.post(f"{V1}/prediction-environments/{theirs['id']}/heartbeat", json={}),
        agent.post(f"{V1}/events", json={"events": [event(mine["id"]), event(theirs["id"])]}),
        agent.put(f"{V1}/deployments/{their_dep['id']}/status", json=report),
        agent.get(f"{V1}/prediction-environments"),
        agent.post(f"{V1}/prediction-environments", json={"name": "x", "platform": "test"}),
        agent.post(f"{V1}/prediction-environments/{mine['id']}/agent-tokens"),
        agent.get(f"{V1}/deployments"),
        agent.get(f"{V1}/deployments/{my_dep['id']}"),
        agent.post(f"{V1}/deployments/{my_dep['id']}/actions", json={"action": "stop"}),
        agent.delete(f"{V1}/deployments/{my_dep['id']}"),
        agent.get(f"{V1}/events"),
        upload(agent, package_bytes("x", "1")),
    ]
    for request in forbidden:
        status, body = await answer(request)
        assert status == 403 and body["error"] == "forbidden", body
    theirs_now = await ok(hub.admin.get(f"{V1}/deployments/{their_dep['id']}"))
    assert theirs_now["observed"]["state"] == "unknown"


async def test_generated_admin_token_file_is_private_and_reused(
    tmp_path: Path, anyio_backend: str
) -> None:
    hub_settings = settings(tmp_path, admin_token=None)
    path = tmp_path / "admin-token"
    async with running(hub_settings) as hub:
        token = path.read_text().strip()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        await ok(hub.session(token).get(f"{V1}/prediction-environments"))
    async with running(hub_settings) as hub:
        assert path.read_text().strip() == token
        await ok(hub.session(token).get(f"{V1}/prediction-environments"))


@pytest.mark.backends("sqlite")  # the files are read before any store is opened
async def test_secrets_from_shared_files_must_be_readable_and_long_enough(
    tmp_path: Path, anyio_backend: str
) -> None:
    missing = tmp_path / "no-such-file"
    with pytest.raises(ConfigError, match="admin_token_file: cannot read"):
        async with running(settings(tmp_path, admin_token=None, admin_token_file=missing)):
            pass
    short = tmp_path / "short-key"
    short.write_text("too short\n")
    with pytest.raises(ConfigError, match=r"secret_key_file: .* at least 32"):
        async with running(settings(tmp_path, secret_key_file=short)):
            pass
