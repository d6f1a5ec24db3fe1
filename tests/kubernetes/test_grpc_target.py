"""gRPC in a cluster: a ``grpc`` port on the server and its Service, reported as ``grpc_target``.

The test kubelet maps each pod's gRPC port to a free local port (its Service
proxy speaks HTTP only), so the ModelInfer goes to the pod itself; what the
plugin reports is the Service's address, as clients in the cluster use it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput

from pilothouse.plugins.kubernetes import names
from tests.kubernetes.conftest import Cluster, emulator_only
from tests.kubernetes.support import packages, spec, started
from tests.modelpkg.factory import SETOSA

pytestmark = [pytest.mark.anyio, emulator_only]


def _service(cluster: Cluster, deployment_id: str) -> dict[str, Any]:
    name = names.object_name(deployment_id)
    (found,) = [
        o
        for o in cluster.emulator.all("v1/services", cluster.namespace)
        if o["metadata"]["name"] == name
    ]
    return found


def _server_container(cluster: Cluster, deployment_id: str) -> tuple[dict[str, Any], int]:
    """The server container of the deployment's pod, and where the kubelet maps its gRPC port."""
    assert cluster.kubelet is not None
    name = names.object_name(deployment_id)
    (pod,) = [p for p in cluster.kubelet.pods.values() if p.deployment == name]
    (server,) = [c.spec for c in pod.main if c.name == "server"]
    return server, pod.grpc_port


async def _infer(target: str, model: str) -> list[str]:
    client = triton_aio.InferenceServerClient(target)
    try:
        tensor = InferInput("input-0", [1, 4], "FP64")
        tensor.set_data_from_numpy(np.array([[*SETOSA.values()]], dtype=np.float64))
        result = await client.infer(model, [tensor])
        return [b.decode() for b in result.as_numpy("predict").tolist()]
    finally:
        await client.close()


async def test_the_service_has_a_grpc_port_and_the_deployment_reports_its_target(
    cluster: Cluster, tmp_path: Path
) -> None:
    settings = {"packages": {k: str(v) for k, v in packages(tmp_path).items()}}
    expected = f"{names.object_name('d1')}.{cluster.namespace}.svc:8701"
    async with started(cluster, tmp_path / "state", grpc_port=8701, **settings) as s:
        launched = await s.plugin.launch(spec("d1", "rules"))
        assert launched.grpc_target == expected, launched
        assert (await s.plugin.deployment_status("d1")).grpc_target == expected

        ports = {p["name"]: p for p in _service(cluster, "d1")["spec"]["ports"]}
        assert ports["grpc"] == {"name": "grpc", "port": 8701, "targetPort": "grpc",
                                 "protocol": "TCP"}  # fmt: skip
        server, mapped = _server_container(cluster, "d1")
        assert {"name": "grpc", "containerPort": 8701, "protocol": "TCP"} in server["ports"]
        assert server["args"][-2:] == ["--grpc-port", "8701"]
        assert await _infer(f"127.0.0.1:{mapped}", "d1") == ["setosa"]

    # A restarted agent learns it from the Service; with gRPC off (the default) it makes none.
    async with started(cluster, tmp_path / "state", **settings) as s:
        assert (await s.plugin.deployment_status("d1")).grpc_target == expected
        launched = await s.plugin.launch(spec("d2", "rules"))
        assert launched.prediction_url and launched.grpc_target is None
        assert [p["name"] for p in _service(cluster, "d2")["spec"]["ports"]] == ["http"]
        server, _ = _server_container(cluster, "d2")
        assert "--grpc-port" not in server["args"]
