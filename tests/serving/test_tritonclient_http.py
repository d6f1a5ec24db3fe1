"""``tritonclient.http`` — the reference V2 client — unchanged, against a real ``pilothouse serve``.

Its defaults send and ask for binary tensors (the binary tensor data
extension); before, the server answered them ``400 the body is not valid JSON``.
"""

from __future__ import annotations

import json
import struct
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.modelpkg.factory import FEATURES, SETOSA, VIRGINICA
from tests.serving.oip_server import Served, serve

ROWS = np.array([[*SETOSA.values()], [*VIRGINICA.values()]])
LABELS = [b"setosa", b"virginica"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, iris: dict[str, Path]) -> Iterator[Served]:
    state = tmp_path_factory.mktemp("triton-http")
    with serve(state, "--deployment", f"iris={iris['v1']}") as server:
        yield server


@pytest.fixture
def client(served: Served) -> Iterator[httpclient.InferenceServerClient]:
    triton = httpclient.InferenceServerClient(served.http)
    yield triton
    triton.close()


def test_health_and_metadata(client: httpclient.InferenceServerClient) -> None:
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("iris")
    assert not client.is_model_ready("nope")
    meta = client.get_server_metadata()
    assert meta["name"] == "pilothouse" and "binary_tensor_data" in meta["extensions"]
    model = client.get_model_metadata("iris")
    assert [i["name"] for i in model["inputs"]] == FEATURES
    assert client.get_model_metadata("iris", model_version=model["versions"][0])


def rows_input(datatype: str, data: np.ndarray, *, binary: bool = True) -> httpclient.InferInput:
    tensor = httpclient.InferInput("input-0", list(data.shape), datatype)
    tensor.set_data_from_numpy(data, binary_data=binary)
    return tensor


def test_infer_with_defaults_is_binary_both_ways(client: httpclient.InferenceServerClient) -> None:
    result = client.infer("iris", [rows_input("FP32", ROWS.astype(np.float32))])
    assert result.get_response()["outputs"][0]["parameters"]["binary_data_size"] > 0
    assert result.as_numpy("predict").tolist() == LABELS


@pytest.mark.parametrize(
    ("binary_in", "binary_out"), [(True, False), (False, True), (False, False)]
)
def test_infer_json_and_binary_in_any_combination(
    client: httpclient.InferenceServerClient, binary_in: bool, binary_out: bool
) -> None:
    outputs = [
        httpclient.InferRequestedOutput("predict", binary_data=binary_out),
        httpclient.InferRequestedOutput("predict_proba", binary_data=binary_out),
    ]
    result = client.infer("iris", [rows_input("FP64", ROWS, binary=binary_in)], outputs=outputs)
    labels = result.as_numpy("predict").tolist()
    assert [x.encode() if isinstance(x, str) else x for x in labels] == LABELS
    proba = result.as_numpy("predict_proba")
    assert proba.shape == (2, 3) and proba.dtype == np.float64
    assert np.allclose(proba.sum(axis=1), 1.0) and proba[0].argmax() == 0


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("FP64", ROWS),
        ("FP32", ROWS.astype(np.float32)),
        ("FP16", ROWS.astype(np.float16)),
        ("INT64", np.round(ROWS).astype(np.int64)),
        ("INT32", np.round(ROWS).astype(np.int32)),
        ("INT8", np.round(ROWS).astype(np.int8)),
        ("UINT16", np.round(ROWS).astype(np.uint16)),
        ("UINT8", np.round(ROWS).astype(np.uint8)),
        ("BYTES", ROWS.astype(str).astype(object)),
    ],
)
@pytest.mark.parametrize("binary", [True, False])
def test_every_datatype(
    client: httpclient.InferenceServerClient, datatype: str, data: np.ndarray, binary: bool
) -> None:
    result = client.infer("iris", [rows_input(datatype, data, binary=binary)])
    assert result.as_numpy("predict").shape == (2,)
    if datatype in ("FP64", "FP32", "FP16", "BYTES"):
        assert result.as_numpy("predict").tolist() == LABELS


def test_one_input_per_feature_mixing_datatypes(client: httpclient.InferenceServerClient) -> None:
    inputs = []
    for i, name in enumerate(FEATURES):
        column = ROWS[:, i]
        datatype, values = ("FP32", column.astype(np.float32)) if i % 2 else ("FP64", column)
        tensor = httpclient.InferInput(name, [2], datatype)
        tensor.set_data_from_numpy(values, binary_data=i != 3)
        inputs.append(tensor)
    assert client.infer("iris", inputs).as_numpy("predict").tolist() == LABELS


def test_client_sees_bad_input_as_an_error(client: httpclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match=r"expected shape \[rows, 4\]"):
        client.infer("iris", [rows_input("FP64", ROWS[:, :3].copy())])


# -- hostile binary bodies, sent by hand --------------------------------------------------------


def post(served: Served, body: bytes, header_length: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/octet-stream"}
    if header_length is not None:
        headers["Inference-Header-Content-Length"] = header_length
    request = urllib.request.Request(
        f"http://{served.http}/v2/models/iris/infer", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def binary_body(
    shape: list[int], datatype: str, raw: bytes, size: int | None = None
) -> tuple[bytes, str]:
    doc = {
        "inputs": [
            {
                "name": "x",
                "shape": shape,
                "datatype": datatype,
                "parameters": {"binary_data_size": len(raw) if size is None else size},
            }
        ]
    }
    header = json.dumps(doc).encode()
    return header + raw, str(len(header))


GOOD = ROWS.astype("<f8").tobytes()


def bytes_elements(*items: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(i)) + i for i in items)


def hostile(case: str) -> tuple[bytes, str | None]:
    if case == "header length 2^31":
        body, _ = binary_body([2, 4], "FP64", GOOD)
        return body, str(2**31)
    if case == "header length negative":
        body, _ = binary_body([2, 4], "FP64", GOOD)
        return body, "-1"
    if case == "header length not a number":
        body, _ = binary_body([2, 4], "FP64", GOOD)
        return body, "12abc"
    if case == "binary size overflows":
        return binary_body([2, 4], "FP64", GOOD, size=2**64 + 64)
    if case == "binary size 2^63":
        return binary_body([2, 4], "FP64", GOOD, size=2**63)
    if case == "binary size past the body (truncated)":
        return binary_body([2, 4], "FP64", GOOD[:-8], size=len(GOOD))
    if case == "size does not match shape and datatype":
        return binary_body([2, 4], "FP32", GOOD)
    if case == "shape product overflows":
        return binary_body([2, 2**62, 2**62], "FP64", GOOD)
    if case == "bytes beyond the tensors":
        body, length = binary_body([2, 4], "FP64", GOOD)
        return body + b"junk", length
    if case == "BYTES length prefix past the buffer":
        raw = bytes_elements(*[b"5.1"] * 7) + struct.pack("<I", 1000) + b"0.2"
        return binary_body([2, 4], "BYTES", raw)
    if case == "BYTES length prefix cut":
        raw = bytes_elements(*[b"5.1"] * 7) + b"\x03\x00"
        return binary_body([2, 4], "BYTES", raw)
    if case == "BYTES count beyond shape":
        return binary_body([2, 4], "BYTES", bytes_elements(*[b"5.1"] * 9))
    if case == "BOOL byte not 0/1":
        return binary_body([2, 4], "BOOL", bytes([1, 0, 2, 1, 0, 1, 1, 0]))
    if case == "binary size without the header":
        body, _ = binary_body([2, 4], "FP64", GOOD)
        return body[: -len(GOOD)], None
    if case == "header cut inside the JSON":
        body, _ = binary_body([2, 4], "FP64", GOOD)
        return body, "20"
    raise AssertionError(case)


HOSTILE = {
    "header length 2^31": "Inference-Header-Content-Length",
    "header length negative": "Inference-Header-Content-Length",
    "header length not a number": "Inference-Header-Content-Length",
    "binary size overflows": "expected a non-negative integer",
    "binary size 2^63": "runs past the end of the body",
    "binary size past the body (truncated)": "runs past the end of the body",
    "size does not match shape and datatype": "bytes were sent",
    "shape product overflows": "bytes were sent",
    "bytes beyond the tensors": "beyond the inputs' binary_data_size",
    "BYTES length prefix past the buffer": "claims 1,000 bytes",
    "BYTES length prefix cut": "cut length",
    "BYTES count beyond shape": "left after the 8 BYTES elements",
    "BOOL byte not 0/1": "BOOL bytes must be 0 or 1",
    "binary size without the header": "needs the Inference-Header-Content-Length header",
    "header cut inside the JSON": "not valid JSON",
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_malformed_binary_bodies_are_400(served: Served, case: str) -> None:
    body, header_length = hostile(case)
    status, doc = post(served, body, header_length)
    assert status == 400, doc
    assert HOSTILE[case] in doc["error"], doc["error"]


def test_the_server_still_serves_after_hostile_bodies(
    client: httpclient.InferenceServerClient,
) -> None:
    assert client.infer("iris", [rows_input("FP64", ROWS)]).as_numpy("predict").tolist() == LABELS
