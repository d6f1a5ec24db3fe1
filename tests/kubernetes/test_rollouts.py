"""Replacement is a rolling update that undoes itself when the new model cannot serve."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from pilothouse.foundation.domain.vocabulary import DeploymentState, Status
from tests.kubernetes.conftest import Cluster
from tests.kubernetes.support import packages, spec, started
from tests.modelpkg.factory import SETOSA, python_package
from tests.process.support import traffic

pytestmark = pytest.mark.anyio


def crashing(path: Path) -> Path:
    """A package whose model kills the server process while it loads (a crash loop)."""
    return python_package(
        path,
        name="iris-crash",
        init=(
            "import sys, os; sys.stderr.write('native library missing: libfoo.so\\n'); "
            "sys.stderr.flush(); os._exit(3)"
        ),
    )


async def test_a_crash_looping_model_is_undone_and_the_old_one_serves(
    cluster: Cluster, tmp_path: Path
) -> None:
    pkgs = {**packages(tmp_path), "crash": crashing(tmp_path / "crash")}
    settings = {"packages": {k: str(v) for k, v in pkgs.items()}}
    async with started(cluster, tmp_path / "state", **settings) as s:
        launched = await s.plugin.launch(spec("d1", "rules", replicas=2))
        assert launched.prediction_url
        async with traffic(launched.prediction_url, clients=2) as seen:
            result = await s.plugin.replace_model(spec("d1", "crash", 2, replicas=2))
        assert result.old_model_in_use, result
        assert (result.model_package_id, result.data["reason"]) == ("rules", "CrashLoopBackOff")
        assert "libfoo.so" in result.data["log"], result.data
        assert "undone" in result.message and "'rules' still serving" in result.message
        failed = [r for r in seen if r[0] != 200]
        assert not failed and {m for _, m in seen} == {"rules"}, (len(seen), failed[:3])
        status = await s.plugin.deployment_status("d1")
        assert (status.state, status.status, status.model_package_id) == (
            DeploymentState.READY,
            Status.PASSING,
            "rules",
        )


async def test_a_model_that_never_gets_ready_is_undone_at_the_deadline(
    cluster: Cluster, tmp_path: Path
) -> None:
    settings = {
        "packages": {k: str(v) for k, v in packages(tmp_path).items()},
        "progress_deadline_s": 6,
    }
    async with started(cluster, tmp_path / "state", **settings) as s:
        launched = await s.plugin.launch(spec("d1", "rules"))
        result = await s.plugin.replace_model(spec("d1", "broken", 2))
        assert result.old_model_in_use and result.model_package_id == "rules"
        assert result.data["reason"] in ("ReadinessProbeFailed", "ProgressDeadlineExceeded")
        assert "weights are corrupt" in result.data["log"], result.data
        assert launched.prediction_url
        async with (
            aiohttp.ClientSession() as http,
            http.post(launched.prediction_url, json={"rows": [SETOSA]}) as resp,
        ):
            assert (resp.status, (await resp.json())["model_package_id"]) == (200, "rules")
        # The undo is final: the Deployment runs the old template and carries no rollout mark.
        dep = s.plugin.observer.deployment("d1")
        assert dep is not None
        assert "pilothouse.io/rollout-from" not in dep["metadata"]["annotations"]
        assert dep["metadata"]["annotations"]["pilothouse.io/model-package-id"] == "rules"
