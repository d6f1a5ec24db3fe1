"""The gRPC address of a deployment, from the prediction server through the agent to the hub.

A real hub on 127.0.0.1, real agents with the ``process`` plugin (gRPC on by
default: grpcio is installed here), one real prediction server subprocess.
The server's gRPC target reaches the hub's observed state; a ModelInfer sent
there answers, with the project's own stubs and with ``tritonclient.grpc``
unchanged; a restarted agent learns the target again from the adopted server;
a stopped deployment has none. A plugin with gRPC off reports none.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc.aio as triton_aio
from tritonclient.grpc import InferInput

from pilothouse.agent import DesiredDeployment, DesiredState
from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.modelpkg import build_package
from pilothouse.plugins.process import ProcessPlugin
from tests.helpers import running
from tests.hub.support import V1, Running, ok, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings
from tests.process.support import IRIS_1, ROWS, TIMEOUT, reaped, release, serve_pids

pytestmark = pytest.mark.anyio

FEATURES = [[*row.values()] for row in ROWS]
LABELS = ["setosa", "virginica"]


def _agent_settings(tmp: Path, url: str, pe: str, token: str) -> AgentSettings:
    return AgentSettings.load(None, {
        "prediction_environment": pe,
        "plugin": "process",
        "plugin_settings": {"check_interval_s": 0.2},  # grpc: on by default
        "state_dir": tmp / "agent",
        "hub": {"url": url, "token": token, "poll_interval_s": 0.5,
                "reconnect_backoff_max_s": 0.3},
        "actions": {"backoff_initial_s": 0.05},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 0.5},
        "shutdown": {"grace_period_s": 10},
    })  # fmt: skip


async def _until_observed(hub: Running, dep_id: str, **wanted: Any) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            got = await ok(hub.admin.get(f"{V1}/deployments/{dep_id}"))
            observed: dict[str, Any] = got["observed"]
            if all(observed[k] == v for k, v in wanted.items()):
                return observed
            await asyncio.sleep(0.05)


# Run in a child process: our generated stubs and tritonclient's both define the
# ``inference`` package, and protobuf's default pool takes each symbol only once.
_STUB_CLIENT = """
import sys, json
import grpc
from pilothouse.serving.grpcapi import inference_pb2, inference_pb2_grpc
target, model, rows = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
request = inference_pb2.ModelInferRequest(model_name=model)
tensor = request.inputs.add(name="input-0", datatype="FP64", shape=[len(rows), len(rows[0])])
tensor.contents.fp64_contents.extend(v for row in rows for v in row)
request.outputs.add(name="predict")
with grpc.insecure_channel(target) as channel:
    reply = inference_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(request, timeout=10)
(output,) = reply.outputs
assert reply.model_name == model and output.name == "predict", reply
raw, labels, at = reply.raw_output_contents[0], [], 0
while at < len(raw):  # BYTES: a 4-byte little-endian length, then the bytes
    size = int.from_bytes(raw[at : at + 4], "little")
    labels.append(raw[at + 4 : at + 4 + size].decode())
    at += 4 + size
print(json.dumps(labels))
"""


async def _until_events(hub: Running, type_: str) -> list[dict[str, Any]]:
    """The events of ``type_``, once the agent's shipper has delivered some."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            found = await ok(hub.admin.get(f"{V1}/events", params={"type": type_}))
            if found["items"]:
                return list(found["items"])
            await asyncio.sleep(0.05)


async def _infer_with_stubs(target: str, model: str) -> list[str]:
    """A ModelInfer through the prediction server's own generated stubs."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _STUB_CLIENT, target, model, json.dumps(FEATURES),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(child.communicate(), TIMEOUT)
    assert child.returncode == 0, err.decode()
    labels: list[str] = json.loads(out)
    return labels


async def _infer_with_tritonclient(target: str, model: str) -> list[str]:
    """The same through ``tritonclient.grpc`` (its asyncio client) with its defaults."""
    client = triton_aio.InferenceServerClient(target)
    try:
        assert await client.is_model_ready(model)
        tensor = InferInput("input-0", [len(FEATURES), 4], "FP64")
        tensor.set_data_from_numpy(np.array(FEATURES, dtype=np.float64))
        result = await client.infer(model, [tensor])
        return [b.decode() for b in result.as_numpy("predict").tolist()]
    finally:
        await client.close()


async def test_the_grpc_target_reaches_the_hub_and_answers_model_infer(tmp_path: Path) -> None:
    async with reaped(tmp_path), hub_running(hub_settings(tmp_path / "hub")) as hub:
        pe = await hub.pe("local", platform="process")
        token = await ok(
            hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201
        )
        _, archive = build_package(IRIS_1, tmp_path / "iris.tar.gz")
        package = (await ok(upload(hub.admin, archive.read_bytes()), 201))["id"]
        settings = _agent_settings(tmp_path, hub.url, pe["id"], token["token"])
        first = ProcessPlugin()
        async with running(Agent(settings, plugin=first)):
            dep = (await hub.deployment(pe["id"], package, name="iris"))["id"]
            observed = await _until_observed(hub, dep, state="ready", generation=1)
            target = observed["grpc_target"]
            assert re.fullmatch(r"127\.0\.0\.1:\d+", target or ""), observed
            http_port = observed["prediction_url"].split(":")[2].split("/")[0]
            assert target.split(":")[1] != http_port, "a port of its own"
            (launched,) = await _until_events(hub, "action.launch.succeeded")
            assert launched["data"]["grpc_target"] == target

            assert await _infer_with_stubs(target, dep) == LABELS
            assert await _infer_with_tritonclient(target, dep) == LABELS
        (server_pid,) = serve_pids(tmp_path)  # it outlives the agent, to be adopted

        # The hub forgets the target (a report without one, as the agent's token)...
        agent_http = hub.session(token["token"])
        report = {"state": "ready", "model_package_id": package, "generation": 1,
                  "prediction_url": observed["prediction_url"]}  # fmt: skip
        await ok(agent_http.put(f"{V1}/deployments/{dep}/status", json=report), 204)
        await _until_observed(hub, dep, grpc_target=None)
        # ...and a new agent, adopting the running server, reports it again.
        plugin = ProcessPlugin()
        async with running(Agent(settings, plugin=plugin)):
            await _until_observed(hub, dep, state="ready", grpc_target=target)
            assert serve_pids(tmp_path) == [server_pid], "adopted, not started again"
            assert await _infer_with_stubs(target, dep) == LABELS

            await ok(hub.admin.post(f"{V1}/deployments/{dep}/actions",
                                    json={"action": "stop"}))  # fmt: skip
            await _until_observed(hub, dep, state="stopped", grpc_target=None)
        await release(*first.servers.values())  # its child, still running: reap it


async def test_with_grpc_off_a_deployment_has_no_grpc_target(
    tmp_path: Path, make_settings: Any
) -> None:
    settings = make_settings(
        plugin="process",
        plugin_settings={"packages": {"iris-1": IRIS_1}, "grpc": False,
                         "stop_servers_on_unload": True},
        actions={"timeout_s": TIMEOUT},
    )  # fmt: skip
    async with reaped(tmp_path):
        agent = Agent(settings, plugin=ProcessPlugin())
        async with running(agent):
            agent.apply(
                DesiredState(deployments=(DesiredDeployment(id="d", model_package_id="iris-1"),))
            )
            async with asyncio.timeout(TIMEOUT):
                await agent.wait_settled()
            assert agent.dispatcher is not None
            record = agent.dispatcher.records["d"]
            assert record.prediction_url and record.grpc_target is None
            (pid,) = serve_pids(tmp_path)
            cmdline = (await asyncio.to_thread(Path(f"/proc/{pid}/cmdline").read_bytes)).split(
                b"\0"
            )
            assert b"--grpc-port" not in cmdline
