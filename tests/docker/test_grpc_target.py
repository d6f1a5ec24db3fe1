"""The ``docker`` plugin with ``grpc``: the server's gRPC port published, reported, answering.

The project's image has the ``grpc`` extra (``make image``'s default extras), so this runs
on it as built: a deployment launched with ``grpc`` answers ModelInfer at its ``grpc_target``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput

from pilothouse.foundation.domain.desired import DesiredDeployment
from tests.docker.support import RULES, loaded, new_owner, owned, purge, settings
from tests.modelpkg.factory import SETOSA

pytestmark = pytest.mark.anyio


async def test_a_server_with_grpc_publishes_and_reports_it(
    tmp_path: Path, pilothouse_image: str
) -> None:
    owner = new_owner()
    plugin_settings = settings(pilothouse_image, owner, grpc=True, packages={"rules": RULES})
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
