"""Issue 14 end to end: a real hub, a real agent (process plugin), real prediction servers.

The agent's statistics relay and rollback guard (serving + agent half) and the
hub's ingest, series, drift status, rollback/promote and actuals (hub half)
were built apart against one contract; these tests run them together.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sklearn.datasets import load_iris

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.modelpkg import build_package
from pilothouse.plugins.process import ProcessPlugin
from tests.helpers import running
from tests.hub.support import V1, Running, ok, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings
from tests.process.support import (
    EXAMPLES,
    ROWS,
    RULES,
    TIMEOUT,
    free_port,
    iris_rows,
    predict,
    reaped,
    steady,
    until,
)

pytestmark = pytest.mark.anyio


async def local_pe(hub: Running) -> tuple[str, str]:
    """A ``process`` PE on the hub and an agent token for it: (PE id, token)."""
    pe = await hub.pe("local", platform="process")
    token = await ok(hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201)
    return pe["id"], token["token"]


def agent_settings(tmp: Path, url: str, pe: str, token: str, **extra: Any) -> AgentSettings:
    """An agent on the process plugin, reading statistics every half second."""
    base: dict[str, Any] = {
        "prediction_environment": pe,
        "plugin": "process",
        "plugin_settings": {"stop_servers_on_unload": True, "check_interval_s": 0.2},
        "state_dir": tmp / "agent",
        "hub": {"url": url, "token": token, "poll_interval_s": 0.3,
                "reconnect_backoff_max_s": 0.3},
        "actions": {"backoff_initial_s": 0.05, "errored_retry_s": 600, "backoff_max_s": 600},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 0.5},
        "monitoring": {"interval_s": 0.5, "guard_poll_s": 0.3},
        "shutdown": {"grace_period_s": 10},
    }  # fmt: skip
    return AgentSettings.load(None, base | extra)


async def upload_dir(hub: Running, directory: Path, tmp: Path) -> str:
    """Build and upload a package directory; its hub id."""
    _, archive = build_package(directory, tmp / "archives" / f"{directory.name}.tar.gz")
    created = await ok(upload(hub.admin, archive.read_bytes()), 201)
    return str(created["id"])


async def series(hub: Running, dep: str) -> list[dict[str, Any]]:
    """Every point of the last hour, in one-hour steps (one point per package)."""
    now = datetime.now(UTC)
    params = {"from": (now - timedelta(hours=1)).isoformat(),
              "to": (now + timedelta(minutes=5)).isoformat(), "step": "3600"}  # fmt: skip
    got = await ok(hub.admin.get(f"{V1}/deployments/{dep}/monitoring", params=params))
    points: list[dict[str, Any]] = got["points"]
    return points


def total(points: list[dict[str, Any]], key: str, package: str | None = None) -> int:
    """``key`` added over the points (of ``package``)."""
    return sum(p[key] for p in points if package is None or p["package_id"] == package)


async def observed_ready(hub: Running, dep: str, generation: int = 1) -> dict[str, Any]:
    """The deployment's observed state once ready at ``generation``."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            got = await ok(hub.admin.get(f"{V1}/deployments/{dep}"))
            obs: dict[str, Any] = got["observed"]
            if obs["state"] == "ready" and obs["generation"] >= generation:
                return obs
            await asyncio.sleep(0.05)


async def test_windows_reach_the_hub_and_those_made_while_it_is_down_arrive_once(
    tmp_path: Path,
) -> None:
    settings = hub_settings(tmp_path / "hub", listen={"port": free_port()})
    first = contextlib.AsyncExitStack()  # the first hub: stopped in the middle
    async with reaped(tmp_path), first, contextlib.AsyncExitStack() as outer:
        hub = await first.enter_async_context(hub_running(settings))
        pe, token = await local_pe(hub)
        rules = await upload_dir(hub, RULES, tmp_path)
        agent = Agent(agent_settings(tmp_path, hub.url, pe, token),
                      plugin=ProcessPlugin())  # fmt: skip
        await outer.enter_async_context(running(agent))
        http = await outer.enter_async_context(aiohttp.ClientSession())
        dep = (await hub.deployment(pe, rules, name="iris"))["id"]
        url = (await observed_ready(hub, dep))["prediction_url"]
        # The launch's probe is the first request, on the package's samples.
        await until_counted(hub, dep, 1)
        probe_rows = total(await series(hub, dep), "rows")
        for _ in range(7):
            assert (await predict(http, url))[0] == 200
        await until_counted(hub, dep, 1 + 7)
        points = await series(hub, dep)
        assert total(points, "requests") == 1 + 7
        assert total(points, "rows") == probe_rows + 7 * len(ROWS)
        assert [p["latency_p99_s"] > 0 for p in points] == [True], points
        store = agent.monitoring.store if agent.monitoring else None
        assert store is not None
        await first.aclose()  # its HTTP server stops; the database stays on disk
        for _ in range(5):  # windows made while the hub is down
            assert (await predict(http, url))[0] == 200
        await until(lambda: store.size_bytes > 0, what="windows kept for the hub")
        await asyncio.sleep(1.5)  # more windows, and uploads failing against nothing
        async with hub_running(settings) as again:
            assert again.url == hub.url
            await until_counted(again, dep, 1 + 7 + 5)
            await until(lambda: store.size_bytes == 0, what="the store emptied")
            await asyncio.sleep(1.5)  # a duplicate upload would have landed by now
            points = await series(again, dep)
            await outer.aclose()
    assert total(points, "requests") == 1 + 7 + 5, points
    assert total(points, "rows") == probe_rows + 12 * len(ROWS)
    assert total(points, "server_errors") == 0 and total(points, "client_errors") == 0
    assert {p["package_id"] for p in points} == {rules}


async def until_counted(hub: Running, dep: str, requests: int) -> None:
    """Wait until the hub's series counts ``requests`` (fails past it at once)."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            seen = total(await series(hub, dep), "requests")
            if seen >= requests:
                break
            await asyncio.sleep(0.2)
    assert seen == requests, (seen, requests)


IRIS_ROWS = iris_rows()
# Long petals: the same flowers, their petals 2 cm longer and 1 cm wider than ever seen.
SHIFTED = [r | {"petal_length": r["petal_length"] + 2, "petal_width": r["petal_width"] + 1}
           for r in IRIS_ROWS]  # fmt: skip


async def events(hub: Running, **filters: str) -> list[dict[str, Any]]:
    """Every event matching ``filters``, oldest first."""
    params = {"limit": "1000", **filters}
    items: list[dict[str, Any]] = []
    while True:
        page = await ok(hub.admin.get(f"{V1}/events", params=params))
        items.extend(page["items"])
        if not page["next_cursor"]:
            return items[::-1]
        params["cursor"] = page["next_cursor"]


async def until_event(hub: Running, after: int, **filters: str) -> dict[str, Any]:
    """The first event matching ``filters`` past the ``after`` first ones."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            found = await events(hub, **filters)
            if len(found) > after:
                return found[after]
            await asyncio.sleep(0.1)


async def until_status(hub: Running, status: str, after: int, **filters: str) -> dict[str, Any]:
    """The first event of ``status`` matching ``filters`` past the ``after`` first ones."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            found = [e for e in (await events(hub, **filters))[after:] if e["status"] == status]
            if found:
                return found[0]
            await asyncio.sleep(0.1)


@contextlib.asynccontextmanager
async def sending(url: str, rows: list[dict[str, Any]]) -> AsyncIterator[list[int]]:
    """Requests of ``rows`` one after another until the block ends; their statuses."""
    statuses: list[int] = []
    stop = asyncio.Event()

    async def loop(http: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            statuses.append((await predict(http, url, rows))[0])
            await asyncio.sleep(0.02)

    async with aiohttp.ClientSession() as http:
        task = asyncio.create_task(loop(http))
        try:
            yield statuses
        finally:
            stop.set()
            await task


async def test_drift_turns_the_deployment_failing_naming_the_features_and_back(
    tmp_path: Path,
) -> None:
    drift = {"window_s": 1.5, "min_rows": 300, "at_risk_psi": 0.1, "failing_psi": 0.25}
    async with reaped(tmp_path), hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token = await local_pe(hub)
        rules = await upload_dir(hub, RULES, tmp_path)
        agent = Agent(agent_settings(tmp_path, hub.url, pe, token),
                      plugin=ProcessPlugin())  # fmt: skip
        async with running(agent):
            body = {"name": "iris", "prediction_environment_id": pe,
                    "model_package_id": rules, "settings": {"drift": drift}}  # fmt: skip
            dep = (await ok(hub.admin.post(f"{V1}/deployments", json=body), 201))["id"]
            url = (await observed_ready(hub, dep))["prediction_url"]
            kind = {"type": "deployment.drift_changed", "deployment_id": dep}
            async with sending(url, IRIS_ROWS) as normal:
                # Judged for the first time: the iris data itself does not drift.
                first = await until_event(hub, 0, **kind)
            async with sending(url, SHIFTED) as shifted:
                failing = await until_status(hub, "failing", 1, **kind)
                during = await ok(hub.admin.get(f"{V1}/deployments/{dep}"))
            async with sending(url, IRIS_ROWS) as back:
                # The drift window holds both kinds of rows for a moment: at_risk on the
                # way down, maybe, then passing.
                passing = await until_status(hub, "passing", 2, **kind)
            changes = await events(hub, **kind)
            deployment = await ok(hub.admin.get(f"{V1}/deployments/{dep}"))
    assert set(normal) == set(shifted) == set(back) == {200}
    assert (first["status"], first["data"]["previous"]) == ("passing", "unknown"), first
    assert first["data"]["max_psi"] < 0.1 and first["data"]["rows"] >= 300
    assert failing["status"] in ("at_risk", "failing"), failing
    named = failing["data"]["features"]
    assert set(named) == {"petal_length", "petal_width"}, failing
    assert all(psi >= 0.1 for psi in named.values()) and failing["data"]["rows"] >= 300
    assert "petal_length" in failing["message"] and "petal_width" in failing["message"]
    assert during["service_health"]["status"] == failing["status"], "health shows the drift"
    assert passing["status"] == "passing" and passing["data"]["features"] == {}, passing
    statuses = [e["status"] for e in changes]
    assert statuses[0] == "passing" and statuses[-1] == "passing", statuses
    assert set(statuses[1:-1]) <= {"at_risk", "failing"} and "failing" in statuses, statuses
    for change in changes[1:-1]:
        assert set(change["data"]["features"]) <= {"petal_length", "petal_width"}, change
    assert deployment["service_health"]["status"] == "passing", deployment


FLAKY = EXAMPLES / "iris-flaky-2.0.0"


def desired_generation(deployment: dict[str, Any]) -> int:
    """The desired state's revision."""
    generation: int = deployment["desired"]["generation"]
    return generation


async def until_rolled_back(hub: Running, dep: str, champion: str) -> dict[str, Any]:
    """The deployment once the hub recorded a rollback and the agent serves ``champion``."""
    async with asyncio.timeout(TIMEOUT + GUARD_S):
        while True:
            got: dict[str, Any] = await ok(hub.admin.get(f"{V1}/deployments/{dep}"))
            desired, observed = got["desired"], got["observed"]
            if (
                desired["rollback"] is not None
                and observed["state"] == "ready"
                and observed["generation"] >= desired["generation"]
                and observed["model_package_id"] == champion
            ):
                return got
            await asyncio.sleep(0.1)


GUARD_S = 30.0


async def guarded(hub: Running, pe: str, package: str) -> tuple[str, str]:
    """A deployment of ``package`` with a rollback guard of GUARD_S: its id and URL, once ready."""
    body = {"name": "iris", "prediction_environment_id": pe, "model_package_id": package,
            "settings": {"rollback": {"guard_s": GUARD_S}}}  # fmt: skip
    dep = (await ok(hub.admin.post(f"{V1}/deployments", json=body), 201))["id"]
    return dep, (await observed_ready(hub, dep))["prediction_url"]


async def test_a_regressing_replacement_is_rolled_back_and_recorded_at_the_hub(
    tmp_path: Path,
) -> None:
    async with reaped(tmp_path), hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token = await local_pe(hub)
        rules = await upload_dir(hub, RULES, tmp_path)
        flaky = await upload_dir(hub, FLAKY, tmp_path)
        agent = Agent(agent_settings(tmp_path, hub.url, pe, token),
                      plugin=ProcessPlugin())  # fmt: skip
        async with running(agent):
            dep, url = await guarded(hub, pe, rules)
            async with steady(url) as seen:
                await until(lambda: len(seen) > 100, what="the old model's traffic")
                action = {"action": "replace_model", "model_package_id": flaky}
                await ok(hub.admin.post(f"{V1}/deployments/{dep}/actions", json=action))
                got = await until_rolled_back(hub, dep, rules)
                mark = len(seen)
                await until(lambda: len(seen) > mark + 50, what="traffic after the rollback")
                await asyncio.sleep(2.0)  # time to (wrongly) apply the bad package again
            after = seen[mark:]
            again = await ok(hub.admin.get(f"{V1}/deployments/{dep}"))
            assert agent.link is not None
            await until(lambda: agent.link is not None and agent.link.outbox.size_bytes == 0)
            history = await events(hub, deployment_id=dep, source="agent")
            # The user names the bad package again, in a new revision: the agent applies
            # it (the user's choice), and its guard rolls it back once more.
            async with steady(url) as seen_again:
                await until(lambda: len(seen_again) > 20, what="traffic")
                await ok(hub.admin.post(f"{V1}/deployments/{dep}/actions", json=action))
                second = await until_rolled_back(hub, dep, rules)
            await until(lambda: agent.link is not None and agent.link.outbox.size_bytes == 0)
            later = await events(hub, deployment_id=dep, source="agent")
    assert second["desired"]["generation"] > desired_generation(got) + 1
    assert second["desired"]["rollback"]["at"] > got["desired"]["rollback"]["at"]
    assert (500, flaky) in seen_again and seen_again[-1] == (200, rules)
    assert [s for s in seen_again if s[0] != 200 and s != (500, flaky)] == []
    assert [e["data"].get("model_package_id") for e in later
            if e["type"] == "action.replace_model.succeeded"] == [flaky, rules] * 2  # fmt: skip
    desired = got["desired"]
    assert desired["model_package_id"] == rules, desired
    record = desired["rollback"]
    assert (record["from_package_id"], record["to_package_id"]) == (flaky, rules), record
    assert "error rate" in record["reason"] and record["figures"]["new_error_rate"] > 0.05
    assert again["desired"]["generation"] == desired["generation"], "no change since"
    assert again["observed"]["model_package_id"] == rules
    assert {p for s, p in after if s == 200} == {rules}, "the bad package never came back"
    own = [s for s in seen if s == (500, flaky)]
    others = [s for s in seen if s[0] != 200 and s != (500, flaky)]
    assert others == [], f"failed requests besides the bad model's own errors: {others[:5]}"
    assert own, "the bad model did fail on some rows"
    replaced = [e["data"].get("model_package_id") for e in history
                if e["type"] == "action.replace_model.succeeded"]  # fmt: skip
    assert replaced == [flaky, rules], "the bad package was applied once, never again"
    (rolled,) = [e for e in history if e["type"] == "deployment.rolled_back"]
    assert rolled["status"] == "failing"
    assert (rolled["data"]["from_package_id"], rolled["data"]["to_package_id"]) == (flaky, rules)


def stricter_rules(tmp: Path) -> Path:
    """iris-rules 1.1.0: virginica only above a petal width of 1.7 (1.5 in 1.0.0)."""
    directory = tmp / "iris-rules-1.1.0"
    shutil.copytree(RULES, directory)
    manifest = directory / "model.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1.0.0", "version: 1.1.0"))
    cuts = {"petal_length_setosa_below": 2.45, "petal_width_virginica_above": 1.7}
    (directory / "thresholds.json").write_text(json.dumps(cuts))
    return directory


def disagreeing(rows: list[dict[str, Any]]) -> int:
    """Rows the two rule sets label differently: not setosa, petal width in (1.5, 1.7]."""
    return sum(r["petal_length"] >= 2.45 and 1.5 < r["petal_width"] <= 1.7 for r in rows)


async def test_a_challengers_agreement_is_right_and_promoting_it_under_load_drops_nothing(
    tmp_path: Path,
) -> None:
    async with reaped(tmp_path), hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token = await local_pe(hub)
        rules = await upload_dir(hub, RULES, tmp_path)
        stricter = await upload_dir(hub, stricter_rules(tmp_path), tmp_path)
        agent = Agent(agent_settings(tmp_path, hub.url, pe, token),
                      plugin=ProcessPlugin())  # fmt: skip
        async with running(agent), aiohttp.ClientSession() as http:
            body = {"name": "iris", "prediction_environment_id": pe,
                    "model_package_id": rules, "challenger_ids": [stricter]}  # fmt: skip
            dep = (await ok(hub.admin.post(f"{V1}/deployments", json=body), 201))["id"]
            url = (await observed_ready(hub, dep))["prediction_url"]
            await until_counted(hub, dep, 1)  # the launch's probe

            async def compared() -> int:
                return sum(c["compared"] for p in await series(hub, dep)
                           for c in p["challengers"])  # fmt: skip

            # Its mirrored replay (one batch of the samples) may land a window later.
            async with asyncio.timeout(TIMEOUT):
                while True:
                    if await compared() > 0:
                        break
                    await asyncio.sleep(0.1)
            before = await series(hub, dep)
            for _ in range(4):  # one after another: the mirror queue never sheds
                assert (await predict(http, url, IRIS_ROWS))[0] == 200
            await until_counted(hub, dep, 1 + 4)

            probe = sum(c["compared"] for p in before for c in p["challengers"])
            async with asyncio.timeout(TIMEOUT):
                while True:
                    if await compared() >= probe + 4 * len(IRIS_ROWS):
                        break
                    await asyncio.sleep(0.2)
            points = await series(hub, dep)
            async with steady(url, clients=4) as seen:
                await until(lambda: len(seen) > 100, what="traffic before the promotion")
                promoted = await ok(
                    hub.admin.post(f"{V1}/deployments/{dep}/promote",
                                   json={"package_id": stricter})
                )  # fmt: skip
                generation = promoted["desired"]["generation"]
                await observed_ready(hub, dep, generation)
                mark = len(seen)
                await until(lambda: len(seen) > mark + 100, what="traffic after it")
    (point,) = points
    (challenger,) = point["challengers"]
    assert challenger["package_id"] == stricter
    assert challenger["errors"] == 0 and challenger["dropped"] == 0, challenger
    assert challenger["compared"] == challenger["rows"] == probe + 4 * len(IRIS_ROWS)
    # The probe's rows (the package's samples) were compared too: counted before the traffic.
    probe_agreeing = sum(round((c["agreement"] or 0) * c["compared"])
                         for p in before for c in p["challengers"])  # fmt: skip
    assert 0 < disagreeing(IRIS_ROWS) < len(IRIS_ROWS)
    expected = probe_agreeing + 4 * (len(IRIS_ROWS) - disagreeing(IRIS_ROWS))
    assert challenger["agreement"] == pytest.approx(expected / challenger["compared"]), (
        challenger, expected, probe
    )  # fmt: skip
    assert challenger["latency_p99_s"] is not None
    assert promoted["desired"]["model_package_id"] == stricter
    assert promoted["desired"]["challenger_ids"] == []
    failures = [s for s in seen if s[0] != 200]
    assert not failures, failures[:5]
    answered = [package for _, package in seen]
    assert list(dict.fromkeys(answered)) == [rules, stricter], "switches once, never back"


async def test_actuals_for_the_request_ids_the_server_returned_give_exact_accuracy(
    tmp_path: Path,
) -> None:
    truth = [str(load_iris().target_names[t]) for t in load_iris().target]
    async with reaped(tmp_path), hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe, token = await local_pe(hub)
        rules = await upload_dir(hub, RULES, tmp_path)
        agent = Agent(agent_settings(tmp_path, hub.url, pe, token),
                      plugin=ProcessPlugin())  # fmt: skip
        async with running(agent), aiohttp.ClientSession() as http:
            dep = (await hub.deployment(pe, rules, name="iris"))["id"]
            url = (await observed_ready(hub, dep))["prediction_url"]
            actuals: list[dict[str, Any]] = []
            equal = 0
            for start in range(0, 150, 30):  # 5 requests of 30 rows
                async with http.post(url, json={"rows": IRIS_ROWS[start : start + 30]}) as r:
                    assert r.status == 200
                    doc = await r.json()
                    header = r.headers["Pilothouse-Request-Id"]
                assert doc["request_id"] == header
                for row, predicted in enumerate(doc["predictions"]):
                    value = truth[start + row]
                    equal += predicted == value
                    actuals.append({"association_id": f"{header}:{row}", "value": value})
            await until_counted(hub, dep, 1 + 5)
            actuals.append({"association_id": "no-such-request:0", "value": "setosa"})
            result = await ok(hub.admin.post(f"{V1}/deployments/{dep}/actuals",
                                             json={"actuals": actuals}))  # fmt: skip
            points = await series(hub, dep)
    assert result == {"matched": 150, "unmatched": 1}, result
    (point,) = points
    assert point["actuals"] == 150
    assert 0 < equal < 150, "the rules get some of iris wrong"
    assert point["accuracy"] == pytest.approx(equal / 150), (point["accuracy"], equal)


async def test_a_rollback_made_while_the_hub_is_down_yields_to_a_users_later_choice(
    tmp_path: Path,
) -> None:
    port = free_port()
    settings = hub_settings(tmp_path / "hub", listen={"port": port})
    aside = hub_settings(tmp_path / "hub", listen={"port": free_port()})  # same database
    first = contextlib.AsyncExitStack()
    async with reaped(tmp_path), first, contextlib.AsyncExitStack() as outer:
        hub = await first.enter_async_context(hub_running(settings))
        pe, token = await local_pe(hub)
        rules = await upload_dir(hub, RULES, tmp_path)
        flaky = await upload_dir(hub, FLAKY, tmp_path)
        stricter = await upload_dir(hub, stricter_rules(tmp_path), tmp_path)
        agent = Agent(agent_settings(tmp_path, hub.url, pe, token),
                      plugin=ProcessPlugin())  # fmt: skip
        await outer.enter_async_context(running(agent))
        dep, url = await guarded(hub, pe, rules)
        async with steady(url) as seen:
            await until(lambda: len(seen) > 100, what="the old model's traffic")
        action = {"action": "replace_model", "model_package_id": flaky}
        await ok(hub.admin.post(f"{V1}/deployments/{dep}/actions", json=action))
        await observed_ready(hub, dep, 2)
        await first.aclose()  # the hub goes down before the bad model saw any traffic
        guard = agent.monitoring.guard if agent.monitoring else None
        assert guard is not None
        async with steady(url) as seen:
            await until(
                lambda: guard.rollbacks == 1 and seen[-10:] == [(200, rules)] * 10,
                timeout=GUARD_S, what="rolled back locally, the hub down",
            )  # fmt: skip
        assert [s for s in seen if s[0] != 200 and s != (500, flaky)] == []
        # Meanwhile a user picks another package (the hub answers elsewhere for a moment).
        async with hub_running(aside) as elsewhere:
            choice = {"action": "replace_model", "model_package_id": stricter}
            await ok(elsewhere.admin.post(f"{V1}/deployments/{dep}/actions", json=choice))
        async with hub_running(settings) as again:
            superseded = await until_event(
                again, 0, type="deployment.rollback_superseded", deployment_id=dep
            )
            got = await ok(again.admin.get(f"{V1}/deployments/{dep}"))
            observed = await observed_ready(again, dep, got["desired"]["generation"])
            async with steady(url) as after:
                await until(lambda: len(after) > 20, what="traffic")
            final = await ok(again.admin.get(f"{V1}/deployments/{dep}"))
            await outer.aclose()
    assert superseded["status"] == "informational" and superseded["data"]["status"] == 409
    assert got["desired"]["model_package_id"] == stricter and got["desired"]["rollback"] is None
    assert observed["model_package_id"] == stricter, "the agent follows the user's choice"
    assert set(after) == {(200, stricter)}
    assert final["desired"]["generation"] == got["desired"]["generation"]
