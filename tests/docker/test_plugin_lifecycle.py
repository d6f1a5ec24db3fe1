"""The ``docker`` plugin's whole lifecycle on the real engine, in both modes.

Launch two deployments, predict through the published port, check the labels
the engine holds, replace a model twice under a steady stream of requests
(zero failures, the answers switch once each time), and stop everything:
no container and no volume of the plugin is left.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from pilothouse.foundation.domain.desired import (
    DeploymentSettings,
    DesiredDeployment,
    Resources,
)
from tests.docker.support import (
    IRIS_1,
    IRIS_2,
    RULES,
    TIMEOUT,
    loaded,
    new_owner,
    owned,
    purge,
    settings,
    traffic,
    until,
)
from tests.process.support import ROWS, predict

pytestmark = pytest.mark.anyio

PE = "pe-lifecycle"
REPLACEMENTS = ("iris-2", "iris-1")


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
async def test_launch_predict_replace_under_traffic_and_stop(
    tmp_path: Path, pilothouse_image: str, mode: str
) -> None:
    owner = new_owner()
    packages = {"iris-1": IRIS_1, "iris-2": IRIS_2, "rules": RULES}
    limits = DeploymentSettings(resources=Resources(cpu="1", memory="512Mi"))
    try:
        async with loaded(
            tmp_path, settings(pilothouse_image, owner, mode=mode, packages=packages), pe=PE
        ) as it:
            launched = await it.plugin.launch(
                DesiredDeployment(
                    id="iris", model_package_id="iris-1", settings=limits, generation=1
                )
            )
            await it.plugin.launch(DesiredDeployment(id="rules", model_package_id="rules"))
            url = launched.prediction_url
            assert url is not None
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                status, body = await predict(http, url, ROWS)
            assert (status, body["predictions"]) == (200, ["setosa", "virginica"]), body

            containers, volumes = await owned(owner)
            servers = [c for c in containers if c["Labels"]["io.pilothouse.role"] == "server"]
            assert len(servers) == (1 if mode == "shared" else 2)
            assert sorted(volumes) == sorted(str(c["Names"][0]).lstrip("/") for c in containers)
            for c in containers:
                assert c["Labels"]["io.pilothouse.pe"] == PE
                assert c["Labels"]["io.pilothouse.mode"] == mode
            if mode == "dedicated":
                iris = next(c for c in servers if c["Labels"]["io.pilothouse.key"] == "iris")
                assert iris["Labels"]["io.pilothouse.deployment"] == "iris"
                assert iris["Labels"]["io.pilothouse.generation"] == "1"
                assert iris["Labels"]["io.pilothouse.model-package"] == "iris-1"
                info = await _inspect(iris["Id"])
                assert info["HostConfig"]["NanoCpus"] == 1_000_000_000
                assert info["HostConfig"]["Memory"] == 512 * 1024**2
                assert not any("TOKEN" in e for e in info["Config"]["Env"]), "no token in config"

            async with traffic(url, clients=2) as seen:
                await until(lambda: len(seen) >= 20, TIMEOUT, "requests flow")
                for generation, package in enumerate(REPLACEMENTS, start=2):
                    replaced = await it.plugin.replace_model(
                        DesiredDeployment(
                            id="iris",
                            model_package_id=package,
                            settings=limits,
                            generation=generation,
                        )
                    )
                    assert (replaced.model_package_id, replaced.old_model_in_use) == (
                        package,
                        False,
                    )
                    assert replaced.prediction_url == url, "clients keep their URL"
                    mark = len(seen)
                    await until(lambda m=mark: len(seen) >= m + 20, TIMEOUT, "requests flow")
            failed = seen.failed()
            assert not failed, f"{len(failed)} of {len(seen)} requests failed: {failed[:3]}"
            for answered in seen.switches():  # each client sees each model once, in order
                assert answered == ["iris-1", "iris-2", "iris-1"], answered
            print(f"\n{mode}: {len(seen)} requests, {len(REPLACEMENTS)} replacements, 0 failed")

            if mode == "dedicated":
                containers, _ = await owned(owner)
                iris = [
                    c
                    for c in containers
                    if c["Labels"].get("io.pilothouse.key") == "iris"
                    and c["Labels"]["io.pilothouse.role"] == "server"
                ]
                assert [c["Labels"]["io.pilothouse.generation"] for c in iris] == ["3"]

            for dep_id in ("iris", "rules"):
                await it.plugin.stop_deployment(dep_id)
            assert await owned(owner) == ([], []), "stop leaves no container and no volume"
    finally:
        await purge(owner)


async def _inspect(container_id: str) -> dict[str, object]:
    import aiodocker

    async with aiodocker.Docker() as client:
        return dict(await client.containers.container(container_id).show())
