"""No blocking call on the event loop: a whole hub session runs under blockbuster.

blockbuster raises inside the loop's thread at any blocking call it knows —
sqlite3, file and socket I/O, ``time.sleep`` — made from the hub's code. The
scenario starts and stops the hub and touches every kind of endpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from blockbuster import blockbuster_ctx

from pilothouse.foundation.domain.monitoring import Association
from tests.hub.stats_windows import minute, post, window
from tests.hub.support import V1, event, next_message, ok, running, settings

pytestmark = pytest.mark.anyio


async def test_a_full_session_never_blocks_the_loop(tmp_path: Path, anyio_backend: str) -> None:
    hub_settings = settings(tmp_path, admin_token=None)
    with blockbuster_ctx(["hub"]):
        async with running(hub_settings) as hub:
            token = (await _admin_token(tmp_path)).strip()
            admin = hub.session(token)
            pe = await ok(
                admin.post(f"{V1}/prediction-environments", json={"name": "p", "platform": "test"}),
                201,
            )
            from tests.hub.support import package_bytes, upload

            pkg = await ok(upload(admin, package_bytes()), 201)
            await ok(upload(admin, package_bytes()), 200)
            await ok(admin.get(f"{V1}/model-packages/{pkg['id']}/archive"))
            body = {
                "name": "d",
                "prediction_environment_id": pe["id"],
                "model_package_id": pkg["id"],
            }
            dep = await ok(admin.post(f"{V1}/deployments", json=body), 201)
            tok = await ok(admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
            agent = hub.session(tok["token"])
            async with agent.get(
                f"{V1}/prediction-environments/{pe['id']}/watch", headers={"Last-Event-ID": "0"}
            ) as stream:
                await next_message(stream)
                await ok(
                    admin.post(f"{V1}/deployments/{dep['id']}/actions", json={"action": "stop"})
                )
                assert (await next_message(stream)).event == "deployment"
            await ok(agent.post(f"{V1}/prediction-environments/{pe['id']}/heartbeat"), 204)
            await ok(
                agent.post(
                    f"{V1}/events", json={"events": [event(pe["id"], deployment_id=dep["id"])]}
                )
            )
            await ok(
                agent.put(
                    f"{V1}/deployments/{dep['id']}/status", json={"state": "ready", "generation": 2}
                ),
                204,
            )
            await ok(admin.get(f"{V1}/events", params={"q": "ready"}))
            await ok(admin.get(f"{V1}/deployments/{dep['id']}/service-health"))
            await _monitoring(admin, agent, dep["id"], pkg["id"])
            await ok(admin.delete(f"{V1}/deployments/{dep['id']}"), 202)
            await ok(admin.get("/metrics"))
            await ok(admin.get("/readyz"))


async def _monitoring(admin: Any, agent: Any, dep_id: str, pkg_id: str) -> None:
    """Statistics in (drift judged), the series, actuals, a purge that rolls up, promotion."""
    predicted = [Association(request_id="r", predictions=["a", "b"])]
    windows = [window(dep_id, pkg_id, minute(i), associations=predicted if not i else ())
               for i in range(3)]  # fmt: skip
    assert (await post(agent, windows))[0] == 200
    await ok(admin.get(f"{V1}/deployments/{dep_id}/monitoring"))
    actuals = {"actuals": [{"association_id": "r:0", "value": "a"}]}
    await ok(admin.post(f"{V1}/deployments/{dep_id}/actuals", json=actuals))
    await ok(admin.put(f"{V1}/settings/retention", json={"days": 30}))
    rollback = {"from_package_id": pkg_id, "to_package_id": pkg_id, "reason": "test"}
    await ok(admin.post(f"{V1}/deployments/{dep_id}/rollback", json=rollback))


async def _admin_token(tmp_path: Path) -> str:
    import asyncio

    return await asyncio.to_thread((tmp_path / "admin-token").read_text)
