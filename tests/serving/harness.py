"""A real prediction server on 127.0.0.1 for a test, and a few calls to it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from jsonschema import Draft202012Validator

from pilothouse.serving import ServerSettings, create_app

TOKEN = "test-admin-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
_SCHEMA = json.loads((Path(__file__).parent / "data" / "open_inference_v2.schema.json").read_text())


def v2_validator(name: str) -> Draft202012Validator:
    """A validator for one object of the Open Inference Protocol (``inference_request``, ...)."""
    return Draft202012Validator({"$ref": f"#/$defs/{name}", "$defs": _SCHEMA["$defs"]})


@contextlib.asynccontextmanager
async def server(tmp_path: Path, **overrides: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """Serve a fresh app on a free port; yields a client once ``/v2/health/ready`` says so."""
    settings = ServerSettings.load(
        {"admin_token": TOKEN, "port": 0, "state_dir": tmp_path / "state", **overrides}
    )
    async with TestClient(TestServer(create_app(settings), host="127.0.0.1")) as client:
        for _ in range(500):
            resp = await client.get("/v2/health/ready")
            if resp.status == 200:
                break
            await asyncio.sleep(0.01)
        yield client


async def put(client: TestClient[Any, Any], deployment_id: str, **body: Any) -> ClientResponse:
    """``PUT /admin/deployments/{id}`` (paths made strings)."""
    doc = {k: str(v) if isinstance(v, Path) else v for k, v in body.items()}
    return await client.put(f"/admin/deployments/{deployment_id}", json=doc, headers=AUTH)


async def predict(
    client: TestClient[Any, Any], deployment_id: str, rows: list[dict[str, Any]]
) -> Any:
    """``POST /v1/deployments/{id}/predict``; returns (status, body)."""
    resp = await client.post(f"/v1/deployments/{deployment_id}/predict", json={"rows": rows})
    return resp.status, await resp.json()
