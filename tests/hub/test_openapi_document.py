"""The OpenAPI document is valid OpenAPI 3.1 and describes every route the hub serves."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from pilothouse.hub.api.routes import ROUTES
from pilothouse.hub.ui import assets
from tests.hub.support import V1, Running, ok

pytestmark = [pytest.mark.anyio, pytest.mark.backends("sqlite")]  # the document only


async def test_document_is_valid_and_complete(hub: Running) -> None:
    doc = await ok(hub.session(None).get(f"{V1}/openapi.json"))
    validate(doc)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in _app_routes(hub)
        if route.resource is not None and route.method != "HEAD" and not _ui(route)
    }
    described = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert served == described
    assert len(described) == len(ROUTES) == 52
    events = doc["paths"][f"{V1}/events"]
    assert events["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EventBatch"
    }
    names = {p["name"] for p in events["get"]["parameters"]}
    assert {"prediction_environment_id", "status", "since", "until", "q", "cursor"} <= names
    assert doc["paths"][f"{V1}/deployments/{{id}}"]["get"]["security"] == [{"bearer": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []


def _ui(route: Any) -> bool:
    """The web UI's page and files: served beside the API, not part of it."""
    path = route.resource.canonical
    return bool(path == "/" or path.startswith(assets.PREFIX))


def _app_routes(hub: Running) -> list:  # type: ignore[type-arg]
    from pilothouse.hub.api.app import create_app

    return list(create_app(hub.settings).router.routes())
