"""Status from watches (resumed, re-listed on 410, pushed at once) and typed API errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from pilothouse.agent.errors import PermanentPluginError
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.plugins.kubernetes import names
from pilothouse.plugins.kubernetes.errors import ForbiddenError
from tests.kubernetes.conftest import Cluster, emulator_only
from tests.kubernetes.support import packages, spec, started
from tests.modelpkg.factory import python_package

pytestmark = [pytest.mark.anyio, emulator_only]


async def until(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 - a condition on the plugin's cache
            await asyncio.sleep(0.05)


async def _scale_behind_the_agents_back(cluster: Cluster, replicas: int) -> None:
    api = cluster.emulator
    dep = api.get("apps/v1/deployments", cluster.namespace, names.object_name("d1"))
    assert dep is not None
    dep["spec"]["replicas"] = replicas
    await api.store("apps/v1/deployments", dep)


@pytest.mark.parametrize("compacted", [False, True], ids=["resumed", "410-relisted"])
async def test_an_api_server_restart_mid_watch_misses_no_change(
    cluster: Cluster, tmp_path: Path, compacted: bool
) -> None:
    settings = {"packages": {k: str(v) for k, v in packages(tmp_path).items()}}
    async with started(cluster, tmp_path / "state", **settings) as s:
        await s.plugin.launch(spec("d1", "rules"))
        watchers = s.plugin.observer.watchers
        lists = [w.lists for w in watchers]
        await cluster.api.stop()  # type: ignore[union-attr]
        await _scale_behind_the_agents_back(cluster, 2)  # changes while the agent cannot see
        if compacted:
            cluster.emulator.compact()
        await asyncio.sleep(0.5)
        await cluster.api.start()  # type: ignore[union-attr]
        await until(
            lambda: s.plugin.observer.assess("d1").data.get("available") == 2,
            "the change made while the API server was down is seen",
        )
        assert all(w.reconnects >= 1 for w in watchers[:2]), [w.reconnects for w in watchers]
        relisted = [w.lists - n for w, n in zip(watchers, lists, strict=True)]
        assert relisted[:2] == ([1, 1] if compacted else [0, 0]), relisted
        assert (await s.plugin.environment_status()).status is Status.PASSING


async def test_forbidden_by_rbac_is_a_permanent_error_naming_the_permission(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.emulator.forbid("create", "apps/v1/deployments")
    settings = {"packages": {k: str(v) for k, v in packages(tmp_path).items()}}
    async with started(cluster, tmp_path / "state", **settings) as s:
        with pytest.raises(ForbiddenError) as info:
            await s.plugin.launch(spec("d1", "rules"))
    assert isinstance(info.value, PermanentPluginError)
    message = str(info.value)
    for part in ("'create'", "'deployments'", "'apps'", f"'{cluster.namespace}'", "forbidden"):
        assert part in message, message


async def test_an_oom_killed_pod_is_reported_failing_at_once(
    cluster: Cluster, tmp_path: Path
) -> None:
    flag = tmp_path / "hog"
    hog = python_package(
        tmp_path / "hog-pkg",
        name="iris-hog",
        predict=(
            f"if __import__('os').path.exists({str(flag)!r}):\n"
            "            globals().setdefault('hog', bytearray(600 * 2**20))"
        ),
    )
    settings = {"packages": {"hog": str(hog)}}
    async with started(cluster, tmp_path / "state", **settings) as s:
        await s.plugin.launch(spec("d1", "hog", resources={"memory": "400Mi"}))
        flag.touch()  # the next readiness probe's prediction needs 600 MiB
        await until(
            lambda: any(r.data.get("reason") == "OOMKilled" for r in s.reports),
            "an OOMKilled finding is pushed",
        )
        report = next(r for r in s.reports if r.data.get("reason") == "OOMKilled")
        assert report.status is Status.FAILING and "out of memory" in report.message
        status = await s.plugin.deployment_status("d1")
        assert status.status is Status.FAILING and status.data["reason"] in (
            "OOMKilled",
            "CrashLoopBackOff",
        )
