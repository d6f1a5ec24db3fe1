"""Pods download their packages from a real hub with a read-only package token kept in a Secret.

A real hub on 127.0.0.1, the plugin with the agent's real hub link pieces (its
package cache and its package tokens), the emulator and the test kubelet,
whose init container downloads from the hub with the token of the Secret. The
Secret holds a package token, never the agent token; the token gets this PE's
package and nothing else; the next agent run replaces it and revokes the old.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.hublink.package_tokens import HubPackageTokens
from pilothouse.agent.hublink.packages import PackageCache
from pilothouse.agent.plugin import PluginContext
from pilothouse.foundation.domain.events import Event
from pilothouse.modelpkg import build_package
from pilothouse.plugins.kubernetes import KubernetesPlugin
from tests.hub.support import V1, Running, answer, ok, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings
from tests.kubernetes.conftest import Cluster, emulator_only
from tests.kubernetes.support import spec
from tests.process.support import RULES

pytestmark = [pytest.mark.anyio, emulator_only]

SECRET = "pilothouse-package-token"


@asynccontextmanager
async def _plugin(
    cluster: Cluster, hub: Running, pe: str, agent_token: str, state: Path
) -> AsyncIterator[KubernetesPlugin]:
    """The plugin as an agent of ``pe`` starts it: packages and package tokens from the hub."""
    client = HubClient(hub.url, agent_token)
    events: list[Event] = []
    ctx = PluginContext(
        pe,
        cluster.settings(hub_url=hub.url),
        state,
        events.append,
        logging.getLogger("pilothouse.plugin.test"),
        fetch_package=PackageCache(client, state / "packages").fetch,
        package_tokens=HubPackageTokens(client, pe),
    )
    plugin = KubernetesPlugin()
    try:
        await plugin.start(ctx)
        yield plugin
    finally:
        await plugin.stop()
        await ctx.stop_tasks()
        await client.close()


def _secret(cluster: Cluster) -> dict[str, str]:
    found = cluster.emulator.get("v1/secrets", cluster.namespace, SECRET)
    assert found is not None, "the plugin made the Secret"
    return {k: base64.b64decode(v).decode() for k, v in found["data"].items()}


async def _upload(hub: Running, directory: Path, tmp: Path) -> str:
    _, archive = build_package(directory, tmp / f"{directory.name}.tar.gz")
    return str((await ok(upload(hub.admin, archive.read_bytes()), 201))["id"])


async def test_the_secret_holds_a_package_token_replaced_and_revoked_by_the_next_run(
    cluster: Cluster, tmp_path: Path
) -> None:
    async with hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe = (await hub.pe("cluster", platform="kubernetes"))["id"]
        agent_token = (
            await ok(hub.admin.post(f"{V1}/prediction-environments/{pe}/agent-tokens"), 201)
        )["token"]
        rules = await _upload(hub, RULES, tmp_path)
        unused = (await hub.package("unused", "1"))["id"]
        d1 = (await hub.deployment(pe, rules, "d1"))["id"]
        d2 = (await hub.deployment(pe, rules, "d2"))["id"]
        tokens = f"{V1}/prediction-environments/{pe}/package-tokens"

        async with _plugin(cluster, hub, pe, agent_token, tmp_path / "state") as plugin:
            launched = await plugin.launch(spec(d1, rules))  # its init container used the token
            assert launched.model_package_id == rules and launched.prediction_url, launched
        first = _secret(cluster)
        assert first["token"].startswith("php_") and first["token"] != agent_token
        reader = hub.session(first["token"])
        status, body = await answer(reader.get(f"{V1}/model-packages/{rules}/archive"))
        assert status == 200 and body == (tmp_path / f"{RULES.name}.tar.gz").read_bytes()
        for forbidden in (f"{V1}/model-packages/{unused}/archive", f"{V1}/events"):
            assert (await answer(reader.get(forbidden)))[0] == 403, forbidden
        listed = (await ok(hub.admin.get(tokens)))["items"]
        assert [(t["id"], t["revoked_at"]) for t in listed] == [(first["token_id"], None)]

        # The next agent run: a new token in the Secret, the previous one revoked.
        async with _plugin(cluster, hub, pe, agent_token, tmp_path / "state") as plugin:
            assert (await plugin.launch(spec(d2, rules))).model_package_id == rules
            assert (await plugin.deployment_status(d1)).prediction_url, "d1 still runs"
        second = _secret(cluster)
        assert second["token_id"] != first["token_id"]
        assert (await answer(reader.get(f"{V1}/model-packages/{rules}/archive")))[0] == 401
        fresh = hub.session(second["token"])
        assert (await answer(fresh.get(f"{V1}/model-packages/{rules}/archive")))[0] == 200
        revoked: dict[str, Any] = {
            t["id"]: t["revoked_at"] for t in (await ok(hub.admin.get(tokens)))["items"]
        }
        assert revoked[first["token_id"]] is not None and revoked[second["token_id"]] is None
