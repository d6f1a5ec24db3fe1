"""``tritonclient.grpc`` unchanged against a real ``pilothouse serve --grpc-port 0``.

Health, metadata, inference in every datatype (raw and typed contents),
errors as gRPC statuses, hostile raw contents, the endpoint reported by the
admin API, and a model replaced under a steady flow of gRPC calls with zero
failures.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from tests.modelpkg.factory import FEATURES, SETOSA, VIRGINICA
from tests.serving.harness import AUTH
from tests.serving.oip_server import Served, serve

ROWS = np.array([[*SETOSA.values()], [*VIRGINICA.values()]])
LABELS = [b"setosa", b"virginica"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, iris: dict[str, Path]) -> Iterator[Served]:
    state = tmp_path_factory.mktemp("triton-grpc")
    with serve(state, "--grpc-port", "0", "--deployment", f"iris={iris['v1']}") as server:
        yield server


@pytest.fixture
def client(served: Served) -> Iterator[grpcclient.InferenceServerClient]:
    assert served.grpc is not None
    triton = grpcclient.InferenceServerClient(served.grpc)
    yield triton
    triton.close()


def admin(served: Served, path: str, body: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://{served.http}/admin/{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={**AUTH, "Content-Type": "application/json"},
        method="GET" if body is None else "PUT",
    )
    with urllib.request.urlopen(request, timeout=60) as resp:
        return resp.status, json.loads(resp.read())


def test_the_admin_api_reports_the_grpc_target(served: Served) -> None:
    status, doc = admin(served, "server")
    assert status == 200 and doc["grpc_target"] == served.grpc and doc["http"] == served.http


def test_health_and_metadata(client: grpcclient.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris") and not client.is_model_ready("nope")
    meta = client.get_server_metadata()
    assert meta.name == "pilothouse" and "binary_tensor_data" in meta.extensions
    model = client.get_model_metadata("iris")
    assert [i.name for i in model.inputs] == FEATURES and model.platform == "sklearn"
    assert {o.name for o in model.outputs} == {"predict", "predict_proba"}
    with pytest.raises(InferenceServerException, match="no deployment 'nope'"):
        client.get_model_metadata("nope")


def rows_input(datatype: str, data: np.ndarray) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput("input-0", list(data.shape), datatype)
    tensor.set_data_from_numpy(data)
    return tensor


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("FP64", ROWS),
        ("FP32", ROWS.astype(np.float32)),
        ("FP16", ROWS.astype(np.float16)),
        ("INT64", np.round(ROWS).astype(np.int64)),
        ("INT8", np.round(ROWS).astype(np.int8)),
        ("UINT32", np.round(ROWS).astype(np.uint32)),
        ("BYTES", ROWS.astype(str).astype(object)),
    ],
)
def test_every_datatype(
    client: grpcclient.InferenceServerClient, datatype: str, data: np.ndarray
) -> None:
    result = client.infer("iris", [rows_input(datatype, data)])
    assert result.as_numpy("predict").shape == (2,)
    if datatype in ("FP64", "FP32", "FP16", "BYTES"):
        assert result.as_numpy("predict").tolist() == LABELS


def test_probabilities_and_per_feature_inputs(client: grpcclient.InferenceServerClient) -> None:
    inputs = []
    for i, name in enumerate(FEATURES):
        tensor = grpcclient.InferInput(name, [2], "FP32")
        tensor.set_data_from_numpy(ROWS[:, i].astype(np.float32))
        inputs.append(tensor)
    outputs = [grpcclient.InferRequestedOutput("predict_proba")]
    result = client.infer("iris", inputs, outputs=outputs, request_id="r-1")
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (2, 3) and np.allclose(proba.sum(axis=1), 1) and proba[1].argmax() == 2
    response = result.get_response()
    assert response.id == "r-1" and response.model_name == "iris"


def test_bad_input_is_invalid_argument(client: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match=r"expected shape \[rows, 4\]") as caught:
        client.infer("iris", [rows_input("FP64", ROWS[:, :3].copy())])
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException) as missing:
        client.infer("nope", [rows_input("FP64", ROWS)])
    assert missing.value.status() == "StatusCode.NOT_FOUND"


# -- hostile messages, built by hand -------------------------------------------------------------


def raw_request(datatype: str, shape: list[int], raw: list[bytes]) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="iris")
    request.inputs.add(name="x", datatype=datatype, shape=shape)
    request.raw_input_contents.extend(raw)
    return request


def typed_request(values: list[float], shape: list[int]) -> service_pb2.ModelInferRequest:
    request = service_pb2.ModelInferRequest(model_name="iris")
    tensor = request.inputs.add(name="x", datatype="FP64", shape=shape)
    tensor.contents.fp64_contents.extend(values)
    return request


def unnamed() -> service_pb2.ModelInferRequest:
    request = raw_request("FP64", [2, 4], [GOOD])
    request.inputs[0].name = ""
    return request


def asking(output: str) -> service_pb2.ModelInferRequest:
    request = raw_request("FP64", [2, 4], [GOOD])
    request.outputs.add(name=output)
    return request


def elements(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(i)) + i for i in items)


GOOD = ROWS.astype("<f8").tobytes()
HOSTILE = {
    "size does not match shape": (raw_request("FP64", [2, 4], [GOOD[:-8]]), "bytes were sent"),
    "shape product overflows": (raw_request("FP64", [2, 2**62, 2**62], [GOOD]), "bytes were sent"),
    "more raw entries than inputs": (raw_request("FP64", [2, 4], [GOOD, GOOD]), "2 entries"),
    "BYTES length past the buffer": (
        raw_request("BYTES", [2, 4], [elements(*[b"1"] * 7) + struct.pack("<I", 2**31)]),
        "claims 2,147,483,648 bytes",
    ),
    "negative dimension": (raw_request("FP64", [-2, 4], [GOOD]), "non-negative"),
    "typed contents too short": (typed_request([1.0, 2.0], [2, 4]), "needs 8 values, got 2"),
    "too many rows": (raw_request("FP64", [2**40, 4], [GOOD]), "too many rows"),
    "no inputs": (service_pb2.ModelInferRequest(model_name="iris"), "non-empty list of tensors"),
    "input without a name": (unnamed(), "inputs[0].name: required"),
    "unknown datatype": (raw_request("FP128", [2, 4], [GOOD]), "inputs[0] (x).datatype: expected"),
    "empty shape": (raw_request("FP64", [], [GOOD]), "inputs[0] (x).shape: expected non-negative"),
    "unknown output": (asking("probabilities"), "unknown output 'probabilities'"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_messages_are_invalid_argument(served: Served, case: str) -> None:
    request, message = HOSTILE[case]
    assert served.grpc is not None
    with grpc.insecure_channel(served.grpc) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.ModelInfer(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (caught.value.details() or "")


# -- replacement under a steady flow of calls ----------------------------------------------------


def test_replacing_the_model_under_steady_grpc_traffic_drops_nothing(
    served: Served, iris: dict[str, Path]
) -> None:
    assert served.grpc is not None
    stop = threading.Event()
    answers: list[str] = []
    failures: list[str] = []

    def caller() -> None:
        triton = grpcclient.InferenceServerClient(served.grpc)
        try:
            while not stop.is_set():
                try:
                    result = triton.infer("iris", [rows_input("FP64", ROWS)])
                    labels = result.as_numpy("predict").tolist()
                    answers.append(result.get_response().model_version)
                    if labels != LABELS:
                        failures.append(f"wrong answer {labels}")
                except InferenceServerException as exc:
                    failures.append(str(exc))
        finally:
            triton.close()

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        versions = ["iris-v2", "iris-v1", "rules", "iris-v1", "iris-v2", "iris-v1"]
        for version in versions:
            time.sleep(0.3)
            source = {"iris-v1": "v1", "iris-v2": "v2", "rules": "rules"}[version]
            status, doc = admin(
                served, "deployments/iris",
                {"model_package_id": version, "package_dir": str(iris[source])},
            )  # fmt: skip
            assert status == 200 and doc["model_package_id"] == version
        time.sleep(0.3)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    assert failures == []
    assert len(answers) > 100
    assert {"iris-v1", "iris-v2", "rules"} <= set(answers)
    # The gRPC calls are in the same statistics as REST's.
    with urllib.request.urlopen(f"http://{served.http}/v1/deployments/iris/stats") as resp:
        stats = json.loads(resp.read())
    assert stats["requests"] >= len(answers) and stats["rows"] >= 2 * len(answers)
