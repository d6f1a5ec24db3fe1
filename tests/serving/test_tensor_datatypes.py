"""JSON tensor data must be of the tensor's datatype: integers for INT*, booleans for BOOL, ...

Before, every numeric tensor was read as float64 whatever its datatype said,
so an ``INT32`` tensor of ``1.5`` or a ``BYTES`` tensor of floats was served.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.modelpkg.factory import SETOSA
from tests.serving.harness import put, server, v2_validator

pytestmark = pytest.mark.anyio

ROW = [*SETOSA.values()]


def tensor(datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "shape": [1, 4], "datatype": datatype, "data": data}]}


REFUSED = {
    "float in INT32": (tensor("INT32", [5, 3, 1.5, 0]), "datatype INT32 takes integers, got 1.5"),
    "integral float in INT64": (tensor("INT64", [5.0, 3, 1, 0]), "takes integers, got 5.0"),
    "float in UINT8": (tensor("UINT8", [5, 3, 1, 0.2]), "takes integers, got 0.2"),
    "floats in BYTES": (tensor("BYTES", ROW), "datatype BYTES takes strings, got 5.1"),
    "number in BYTES": (tensor("BYTES", ["5.1", "3.5", 1, "0.2"]), "takes strings, got 1"),
    "float in BOOL": (tensor("BOOL", [True, False, 0.5, True]), "takes true or false, got 0.5"),
    "integer in BOOL": (tensor("BOOL", [1, 0, 1, 0]), "takes true or false, got 1"),
    "string in FP64": (tensor("FP64", ["5.1", 3.5, 1.4, 0.2]), "takes numbers, got '5.1'"),
    "booleans in FP32": (tensor("FP32", [True, False, True, False]), "takes numbers, got True"),
    "INT8 out of range": (tensor("INT8", [5, 3, 300, 0]), "values must lie in [-128, 127]"),
    "UINT16 negative": (tensor("UINT16", [5, 3, -1, 0]), "values must lie in [0, 65535]"),
    "null among INT32": (tensor("INT32", [5, None, 1.5, 0]), "takes integers, got 1.5"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
async def test_data_not_of_the_datatype_is_a_400(
    case: str, tmp_path: Path, iris: dict[str, Path]
) -> None:
    body, message = REFUSED[case]
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        resp = await client.post("/v2/models/iris/infer", json=body)
        doc = await resp.json()
        assert resp.status == 400, doc
        v2_validator("inference_error_response").validate(doc)
        assert message in doc["error"], doc["error"]
        assert "input 'x'" in doc["error"]


ACCEPTED = {
    "INT64": tensor("INT64", [5, 3, 1, 0]),
    "UINT8": tensor("UINT8", [5, 3, 1, 0]),
    "FP32 with integers": tensor("FP32", [5, 3, 1.4, 0]),
    "FP16": tensor("FP16", ROW),
    "BYTES numeric strings": tensor("BYTES", ["5.1", "3.5", "1.4", "0.2"]),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
async def test_data_of_the_datatype_is_served(
    case: str, tmp_path: Path, iris: dict[str, Path]
) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        resp = await client.post("/v2/models/iris/infer", json=ACCEPTED[case])
        doc = await resp.json()
        assert resp.status == 200, doc
        assert doc["outputs"][0]["shape"] == [1]
