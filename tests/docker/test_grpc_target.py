"""The ``docker`` plugin with ``grpc``: the server's gRPC port published, reported, answering.

The project's image is built without the ``grpc`` extra (``make image``'s default), so
this test derives one with the grpcio and protobuf this Python has (the same wheels),
then launches a deployment on it and calls ModelInfer at the reported ``grpc_target``.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput

from pilothouse.foundation.domain.desired import DesiredDeployment
from tests.docker.support import RULES, loaded, new_owner, owned, purge, settings
from tests.modelpkg.factory import SETOSA

pytestmark = pytest.mark.anyio

# The image keeps no pip (it served the installation only): the packages, installed for
# this Python on the host, are copied into the image's site-packages.
_DOCKERFILE = """FROM {base}
USER root
COPY site/ /tmp/site/
RUN cp -a /tmp/site/. "$(echo /opt/pilothouse/lib/python3*/site-packages)/" && rm -rf /tmp/site
USER 10001:10001
"""


@pytest.fixture(scope="module")
def grpc_image(pilothouse_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The project's image plus the ``grpc`` extra (the versions installed here)."""
    context = tmp_path_factory.mktemp("grpc-image")
    wanted = [f"{name}=={metadata.version(name)}" for name in ("grpcio", "protobuf")]
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--only-binary=:all:"]
    subprocess.run(
        [*pip, "--disable-pip-version-check", "-q", "--target", str(context / "site"), *wanted],
        check=True,
        timeout=300,
    )
    (context / "Dockerfile").write_text(_DOCKERFILE.format(base=pilothouse_image))
    tag = f"{pilothouse_image}-grpc"
    subprocess.run(
        ["docker", "build", "-q", "-t", tag, str(context)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return tag


async def test_a_server_with_grpc_publishes_and_reports_it(tmp_path: Path, grpc_image: str) -> None:
    owner = new_owner()
    plugin_settings = settings(grpc_image, owner, grpc=True, packages={"rules": RULES})
    try:
        async with loaded(tmp_path, plugin_settings, pe="pe-grpc") as it:
            launched = await it.plugin.launch(
                DesiredDeployment(id="rules", model_package_id="rules")
            )
            target = launched.grpc_target
            assert target is not None and target.startswith("127.0.0.1:"), launched
            assert target.split(":")[1] != launched.prediction_url.split(":")[2].split("/")[0]
            assert (await it.plugin.deployment_status("rules")).grpc_target == target

            client = triton_aio.InferenceServerClient(target)
            try:
                tensor = InferInput("input-0", [1, 4], "FP64")
                tensor.set_data_from_numpy(np.array([[*SETOSA.values()]], dtype=np.float64))
                result = await client.infer("rules", [tensor])
            finally:
                await client.close()
            assert result.as_numpy("predict").tolist() == [b"setosa"]
            (container,) = (await owned(owner))[0]
            published = {p["PrivatePort"] for p in container["Ports"] if p.get("PublicPort")}
            assert published == {8701, 8702}, container["Ports"]
    finally:
        await purge(owner)
