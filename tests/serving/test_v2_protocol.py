"""The Open Inference Protocol endpoints, checked against the protocol's JSON schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.modelpkg.factory import FEATURES, SETOSA, VIRGINICA
from tests.serving.harness import put, server, v2_validator

pytestmark = pytest.mark.anyio

REQUEST = v2_validator("inference_request")
RESPONSE = v2_validator("inference_response")


async def test_health_and_metadata(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        assert (await client.get("/v2/health/live")).status == 200
        assert (await client.get("/v2/health/ready")).status == 200
        v2_validator("metadata_server_response").validate(await (await client.get("/v2")).json())
        assert (await client.get("/v2/models/iris/ready")).status == 404
        resp = await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        assert resp.status == 201, await resp.text()
        ready = await client.get("/v2/models/iris/ready")
        assert ready.status == 200 and (await ready.json())["ready"] is True
        meta = await (await client.get("/v2/models/iris")).json()
        v2_validator("metadata_model_response").validate(meta)
        assert meta["name"] == "iris" and meta["versions"] == ["iris-v1"]
        assert meta["platform"] == "sklearn"
        assert [i["name"] for i in meta["inputs"]] == FEATURES
        assert {o["name"] for o in meta["outputs"]} == {"predict", "predict_proba"}
        missing = await client.get("/v2/models/nope")
        assert missing.status == 404
        v2_validator("inference_error_response").validate(await missing.json())


async def infer(client: Any, body: dict[str, Any], path: str = "/v2/models/iris/infer") -> Any:
    REQUEST.validate(body)
    resp = await client.post(path, json=body)
    doc = await resp.json()
    return resp.status, doc


async def test_infer_one_tensor_of_rows_by_features(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        body = {
            "id": "req-1",
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "data": [[*SETOSA.values()], [*VIRGINICA.values()]],
                }
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        }
        status, doc = await infer(client, body)
        assert status == 200, doc
        RESPONSE.validate(doc)
        assert (
            doc["model_name"] == "iris"
            and doc["model_version"] == "iris-v1"
            and doc["id"] == "req-1"
        )
        outputs = {o["name"]: o for o in doc["outputs"]}
        assert outputs["predict"] == {
            "name": "predict",
            "shape": [2],
            "datatype": "BYTES",
            "data": ["setosa", "virginica"],
        }
        proba = outputs["predict_proba"]
        assert proba["shape"] == [2, 3] and proba["datatype"] == "FP64" and len(proba["data"]) == 6
        flat = {
            **body["inputs"][0],
            "data": [*SETOSA.values(), *VIRGINICA.values()],
        }  # flat data too
        status, doc = await infer(client, {"inputs": [flat]})
        RESPONSE.validate(doc)
        assert [o["name"] for o in doc["outputs"]] == ["predict"] and doc["id"]


async def test_infer_one_input_per_feature(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        body = {
            "inputs": [
                {
                    "name": name,
                    "shape": [2, 1],
                    "datatype": "FP64",
                    "data": [[SETOSA[name]], [VIRGINICA[name]]],
                }
                for name in reversed(FEATURES)  # order does not matter: names do
            ]
        }
        status, doc = await infer(client, body)
        assert status == 200, doc
        RESPONSE.validate(doc)
        assert doc["outputs"][0]["data"] == ["setosa", "virginica"]


@pytest.mark.parametrize(
    ("inputs", "outputs", "message"),
    [
        (
            [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}],
            None,
            "expected shape [rows, 4]",
        ),
        (
            [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3]}],
            None,
            "needs 4 values, got 3",
        ),
        (
            [{"name": "x", "shape": [1, 4], "datatype": "FP99", "data": [1, 2, 3, 4]}],
            None,
            "datatype",
        ),
        (
            [{"name": "x", "shape": [1, 4], "datatype": "BYTES", "data": ["1", "2", "x", "4"]}],
            None,
            "feature 'petal_length': expected a number, got 'x'",
        ),
        (
            [{"name": f, "shape": [1], "datatype": "FP64", "data": [1.0]} for f in FEATURES[:3]],
            None,
            "missing input for feature 'petal_width'",
        ),
        (
            [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [1, 2, 3, 4]}],
            [{"name": "logits"}],
            "unknown output 'logits'",
        ),
    ],
)
async def test_bad_infer_requests_are_4xx_naming_the_problem(
    tmp_path: Path, iris: dict[str, Path], inputs: list[Any], outputs: Any, message: str
) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        body: dict[str, Any] = {"inputs": inputs}
        if outputs:
            body["outputs"] = outputs
        resp = await client.post("/v2/models/iris/infer", json=body)
        doc = await resp.json()
        assert resp.status == 400, doc
        v2_validator("inference_error_response").validate(doc)
        assert message in doc["error"]


async def test_versions_address_challengers(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        resp = await put(
            client,
            "iris",
            model_package_id="iris-v1",
            package_dir=iris["v1"],
            challengers=[{"model_package_id": "rules", "package_dir": str(iris["rules"])}],
        )
        assert resp.status == 201
        meta = await (await client.get("/v2/models/iris")).json()
        assert meta["versions"] == ["iris-v1", "rules"]
        rules_meta = await (await client.get("/v2/models/iris/versions/rules")).json()
        assert rules_meta["platform"] == "python"
        body = {
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [*SETOSA.values()]}
            ]
        }
        status, doc = await infer(client, body, "/v2/models/iris/versions/rules/infer")
        assert status == 200 and doc["model_version"] == "rules"
        assert (await client.get("/v2/models/iris/versions/nope/ready")).status == 404
