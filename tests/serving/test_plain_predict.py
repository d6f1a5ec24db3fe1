"""The plain rows endpoint: JSON or CSV in, predictions (and probabilities) out, clear 4xx."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.modelpkg.factory import SETOSA, VIRGINICA
from tests.serving.harness import predict, put, server

pytestmark = pytest.mark.anyio


async def test_json_rows(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        status, doc = await predict(client, "iris", [SETOSA, {**VIRGINICA, "customer": "c-17"}])
        assert status == 200, doc
        assert doc["predictions"] == ["setosa", "virginica"]
        assert doc["model_package_id"] == "iris-v1" and doc["deployment_id"] == "iris"
        assert doc["classes"] == ["setosa", "versicolor", "virginica"]
        assert len(doc["probabilities"]) == 2 and abs(sum(doc["probabilities"][0]) - 1) < 1e-9


async def test_csv(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        text = (
            "petal_width,petal_length,sepal_width,sepal_length\n0.2,1.4,3.5,5.1\n2.1,6.6,3.0,7.6\n"
        )
        resp = await client.post(
            "/v1/deployments/iris/predict", data=text, headers={"Content-Type": "text/csv"}
        )
        doc = await resp.json()
        assert resp.status == 200, doc
        assert doc["predictions"] == ["setosa", "virginica"]
        bad = await client.post(
            "/v1/deployments/iris/predict",
            data="sepal_length,sepal_width,petal_length\n1,2,3\n",
            headers={"Content-Type": "text/csv"},
        )
        assert bad.status == 400
        assert "CSV header has no column for feature 'petal_width'" in (await bad.json())["error"]


@pytest.mark.parametrize(
    ("body", "feature", "message"),
    [
        (
            {"rows": [{**SETOSA, "petal_width": "wide"}]},
            "petal_width",
            "expected a number, got 'wide'",
        ),
        ({"rows": [{"sepal_length": 1}]}, "sepal_width", "row 0: missing feature 'sepal_width'"),
        (
            {"rows": [SETOSA, {**SETOSA, "sepal_length": None}]},
            "sepal_length",
            "row 1, feature 'sepal_length'",
        ),
        ({"rows": []}, None, "no rows given"),
        ({"data": []}, None, 'expected a JSON object {"rows"'),
    ],
)
async def test_bad_input_is_a_400_naming_the_feature(
    tmp_path: Path, iris: dict[str, Path], body: object, feature: str | None, message: str
) -> None:
    async with server(tmp_path) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        resp = await client.post("/v1/deployments/iris/predict", json=body)
        doc = await resp.json()
        assert resp.status == 400, doc
        assert message in doc["error"]
        assert doc.get("feature") == feature
        not_json = await client.post("/v1/deployments/iris/predict", data=b"{nope")
        assert not_json.status == 400 and "not valid JSON" in (await not_json.json())["error"]


async def test_limits_and_unknown_deployment(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path, max_rows=3, max_body_bytes=4096) as client:
        await put(client, "iris", model_package_id="iris-v1", package_dir=iris["v1"])
        status, doc = await predict(client, "iris", [SETOSA] * 4)
        assert status == 400 and "too many rows in one request: 4 (at most 3)" in doc["error"]
        big = await client.post("/v1/deployments/iris/predict", data=b"x" * 10_000)
        assert big.status == 413
        status, doc = await predict(client, "nope", [SETOSA])
        assert status == 404 and doc["error"] == "no deployment 'nope'"
