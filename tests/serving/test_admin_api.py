"""The admin API: bearer token, load from a directory or a verified archive, list, unload."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilothouse.modelpkg import build_package
from tests.modelpkg.factory import SETOSA
from tests.serving.harness import AUTH, predict, put, server

pytestmark = pytest.mark.anyio


async def test_admin_needs_the_bearer_token(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic x"}):
            resp = await client.get("/admin/deployments", headers=headers)
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"] == "Bearer"
            assert "Bearer" in (await resp.json())["error"]
        resp = await client.put(
            "/admin/deployments/iris",
            json={"package_dir": str(iris["v1"])},
            headers={"Authorization": "Bearer nope"},
        )
        assert resp.status == 401
        assert (await client.get("/v2/models/iris/ready")).status == 404, "nothing was loaded"


async def test_load_list_get_delete(tmp_path: Path, iris: dict[str, Path]) -> None:
    async with server(tmp_path) as client:
        resp = await put(client, "iris", package_dir=iris["v1"])
        doc = await resp.json()
        assert (
            resp.status == 201
            and doc["model_package_id"] == "iris-1.0.0"
            and doc["replaced"] is None
        )
        champion = doc["champion"]
        assert champion["format"] == "sklearn" and champion["inline_rows_max"] > 0
        listed = await (await client.get("/admin/deployments", headers=AUTH)).json()
        assert [d["id"] for d in listed["deployments"]] == ["iris"]
        one = await (await client.get("/admin/deployments/iris", headers=AUTH)).json()
        assert one["generation"] == 1
        deleted = await client.delete("/admin/deployments/iris", headers=AUTH)
        assert deleted.status == 200 and (await deleted.json())["model_package_id"] == "iris-1.0.0"
        status, _ = await predict(client, "iris", [SETOSA])
        assert status == 404
        assert (await client.delete("/admin/deployments/iris", headers=AUTH)).status == 404


async def test_load_from_a_verified_archive(tmp_path: Path, iris: dict[str, Path]) -> None:
    info, archive = build_package(iris["rules"], tmp_path / "rules.tar.gz")
    async with server(tmp_path) as client:
        bad = await put(client, "rules", archive=archive, sha256="0" * 64)
        doc = await bad.json()
        assert bad.status == 422 and "sha256 mismatch" in doc["error"]
        assert doc["old_model_in_use"] is False
        resp = await put(
            client, "rules", model_package_id="rules-1", archive=archive, sha256=info.sha256
        )
        doc = await resp.json()
        assert resp.status == 201, doc
        assert doc["champion"]["sha256"] == info.sha256
        assert (tmp_path / "state" / "packages" / info.sha256 / "model.py").is_file()
        status, answer = await predict(client, "rules", [SETOSA])
        assert status == 200 and answer["predictions"] == ["setosa"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "give exactly one of package_dir or archive"),
        ({"package_dir": "/x", "archive": "/y"}, "give exactly one"),
        ({"package_dir": "/x", "colour": "red"}, "colour: unknown field"),
        ({"package_dir": "/x", "sha256": "abc"}, "sha256"),
    ],
)
async def test_bad_admin_bodies(tmp_path: Path, body: dict[str, str], message: str) -> None:
    async with server(tmp_path) as client:
        resp = await client.put("/admin/deployments/d1", json=body, headers=AUTH)
        assert resp.status == 400
        assert message in (await resp.json())["error"]
        bad_id = await client.put(
            "/admin/deployments/-bad", json={"package_dir": "/x"}, headers=AUTH
        )
        assert bad_id.status == 400 and "deployment id" in (await bad_id.json())["error"]


async def test_a_package_that_does_not_exist(tmp_path: Path) -> None:
    async with server(tmp_path) as client:
        resp = await put(client, "ghost", package_dir=tmp_path / "nowhere")
        doc = await resp.json()
        assert resp.status == 422 and "is not a directory" in doc["error"]
        assert doc["old_model_in_use"] is False
