"""Package tokens: read-only, PE-scoped, for the archives of the packages the PE's deployments use.

A Kubernetes pod's init container downloads its packages with one. It gets a
package that a live deployment of its PE wants (champion or challenger) or runs
(observed, e.g. after an undone replacement); it is refused (403) any other
package — another PE's, one nobody uses, one that does not exist — and every
other endpoint; once revoked, it is unknown (401).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from pilothouse.hub.api.keys import Access
from pilothouse.hub.api.routes import ROUTES
from tests.hub.support import V1, Running, answer, ok, package_bytes

pytestmark = pytest.mark.anyio


def _tokens(hub: Running, pe_id: str) -> str:
    return f"{V1}/prediction-environments/{pe_id}/package-tokens"


async def _setup(hub: Running) -> dict[str, Any]:
    """PE a: a deployment of p1 with challenger p2; PE b: a deployment of p3; p4 unused."""
    a, b = await hub.pe("a"), await hub.pe("b")
    p = {n: (await hub.package(n, "1"))["id"] for n in ("p1", "p2", "p3", "p4", "p5")}
    dep = await hub.deployment(a["id"], p["p1"], "fraud")
    body = {"action": "relaunch", "challenger_ids": [p["p2"]]}
    await ok(hub.admin.post(f"{V1}/deployments/{dep['id']}/actions", json=body))
    await hub.deployment(b["id"], p["p3"], "churn")
    issued = await ok(hub.admin.post(_tokens(hub, a["id"])), 201)
    return {"a": a, "b": b, "p": p, "dep": dep, "issued": issued}


async def test_it_downloads_only_the_packages_its_pe_uses(hub: Running) -> None:
    s = await _setup(hub)
    issued, p = s["issued"], s["p"]
    assert (
        issued["token"].startswith("php_") and issued["prediction_environment_id"] == s["a"]["id"]
    )
    reader = hub.session(issued["token"])
    for used, name in ((p["p1"], "p1"), (p["p2"], "p2")):  # champion, challenger
        status, body = await answer(reader.get(f"{V1}/model-packages/{used}/archive"))
        assert status == 200 and body == package_bytes(name, "1"), (name, status)
    for refused in (p["p3"], p["p4"], "pkg-does-not-exist"):  # another PE's, unused, unknown
        status, body = await answer(reader.get(f"{V1}/model-packages/{refused}/archive"))
        assert status == 403 and body["error"] == "forbidden", (refused, body)
        assert s["a"]["id"] in body["message"] and refused in body["message"]

    # What the PE's agent observes running counts too (a replacement undone: the old model).
    agent = await hub.agent(s["a"]["id"])
    report = {"state": "ready", "model_package_id": p["p5"], "generation": 2}
    await ok(agent.put(f"{V1}/deployments/{s['dep']['id']}/status", json=report), 204)
    status, _ = await answer(reader.get(f"{V1}/model-packages/{p['p5']}/archive"))
    assert status == 200
    # A deleted deployment uses nothing any more.
    await ok(hub.admin.delete(f"{V1}/deployments/{s['dep']['id']}"), 202)
    status, _ = await answer(reader.get(f"{V1}/model-packages/{p['p1']}/archive"))
    assert status == 403


async def test_every_other_endpoint_is_refused(hub: Running) -> None:
    s = await _setup(hub)
    reader = hub.session(s["issued"]["token"])
    ids = {"id": s["a"]["id"], "token_id": s["issued"]["id"]}
    archive = f"{V1}/model-packages/{{id}}/archive"
    checked = 0
    for route in ROUTES:
        if route.access is Access.PUBLIC or (route.method, route.path) == ("GET", archive):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), "x"), route.path)
        status, body = await answer(reader.request(route.method, path, json={}))
        assert status == 403, (route.method, route.path, status, body)
        checked += 1
    assert checked > 30
    # Other methods on the archive's own path exist for nobody (405), the admin included.
    for method in ("PUT", "POST", "DELETE", "PATCH"):
        url = f"{V1}/model-packages/{s['p']['p1']}/archive"
        assert (await answer(reader.request(method, url)))[0] == 405
        assert (await answer(hub.admin.request(method, url)))[0] == 405


async def test_revoked_it_is_unknown_and_listed_apart_from_agent_tokens(hub: Running) -> None:
    s = await _setup(hub)
    pe, issued = s["a"]["id"], s["issued"]
    reader = hub.session(issued["token"])
    url = f"{V1}/model-packages/{s['p']['p1']}/archive"
    assert (await answer(reader.get(url)))[0] == 200
    listed = await ok(hub.admin.get(_tokens(hub, pe)))
    assert [t["id"] for t in listed["items"]] == [issued["id"]]
    assert "token" not in listed["items"][0]
    agents = await ok(hub.admin.get(f"{V1}/prediction-environments/{pe}/agent-tokens"))
    assert issued["id"] not in [t["id"] for t in agents["items"]]
    # Neither kind is revoked through the other's endpoint.
    status, _ = await answer(
        hub.admin.delete(f"{V1}/prediction-environments/{pe}/agent-tokens/{issued['id']}")
    )
    assert status == 404

    revoked = await ok(hub.admin.delete(f"{_tokens(hub, pe)}/{issued['id']}"))
    assert revoked["revoked_at"] is not None
    status, body = await answer(reader.get(url))
    assert status == 401 and body["error"] == "unauthorized"


async def test_the_pes_agent_may_issue_and_revoke_them_others_may_not(hub: Running) -> None:
    s = await _setup(hub)
    a, b = s["a"]["id"], s["b"]["id"]
    agent_a, agent_b = await hub.agent(a), await hub.agent(b)
    mine = await ok(agent_a.post(_tokens(hub, a)), 201)
    assert (await answer(agent_b.post(_tokens(hub, a))))[0] == 403
    assert (await answer(agent_b.delete(f"{_tokens(hub, a)}/{mine['id']}")))[0] == 403
    assert (await answer(agent_a.get(_tokens(hub, a))))[0] == 403, "listing: admin only"
    reader = hub.session(mine["token"])
    assert (await answer(reader.post(_tokens(hub, a))))[0] == 403, "no token mints another"
    await ok(agent_a.delete(f"{_tokens(hub, a)}/{mine['id']}"))
    status, _ = await answer(reader.get(f"{V1}/model-packages/{s['p']['p1']}/archive"))
    assert status == 401
