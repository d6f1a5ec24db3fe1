"""The fleet kit's one error mapping: an HTTP status or a client error to a plugin error.

The table is the contract every server-running plugin relies on (the action
runner retries only ``TemporaryPluginError``); the admin client is checked
against a real HTTP server on 127.0.0.1 answering each case.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pilothouse.agent.errors import PermanentPluginError, TemporaryPluginError
from pilothouse.plugins.fleet import Refused, ServerAPI, errors

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentPluginError), (401, PermanentPluginError), (403, PermanentPluginError),
        (404, PermanentPluginError), (422, PermanentPluginError),
        (408, TemporaryPluginError), (409, TemporaryPluginError), (425, TemporaryPluginError),
        (429, TemporaryPluginError), (500, TemporaryPluginError), (502, TemporaryPluginError),
        (503, TemporaryPluginError), (504, TemporaryPluginError),
    ],
)  # fmt: skip
def test_status_table(status: int, kind: type[Exception]) -> None:
    error = errors.from_status(status, f"answered {status}", deployment_id="d1")
    assert type(error) is kind
    assert str(error) == f"answered {status}" and error.deployment_id == "d1"


def test_a_success_is_not_an_error() -> None:
    with pytest.raises(ValueError, match="HTTP 204 is not an error"):
        errors.from_status(204, "no content")


def test_retry_after_becomes_the_delay() -> None:
    error = errors.from_status(429, "slow down", retry_after=7.0)
    assert isinstance(error, TemporaryPluginError) and error.delay == 7.0


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert errors.parse_retry_after("3") == 3.0
    assert errors.parse_retry_after("-4") == 0.0
    assert errors.parse_retry_after(None) is None
    assert errors.parse_retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    parsed = errors.parse_retry_after(later)
    assert parsed is not None and 55 < parsed <= 60
    earlier = format_datetime(datetime.now(UTC) - timedelta(seconds=60), usegmt=True)
    assert errors.parse_retry_after(earlier) == 0.0


def _response_error(status: int, headers: dict[str, str]) -> aiohttp.ClientResponseError:
    info = aiohttp.RequestInfo(URL("http://engine/x"), "GET", CIMultiDictProxy(CIMultiDict()))
    return aiohttp.ClientResponseError(
        info, (), status=status, message="Too Many Requests", headers=CIMultiDict(headers)
    )


def test_client_errors_with_an_answer_map_by_status() -> None:
    error = errors.from_client_error(_response_error(429, {"Retry-After": "2"}), "the engine")
    assert isinstance(error, TemporaryPluginError) and error.delay == 2.0
    assert str(error) == "the engine answered 429: Too Many Requests"
    assert isinstance(errors.from_client_error(_response_error(403, {}), "the engine"),
                      PermanentPluginError)  # fmt: skip


def test_client_errors_without_an_answer_are_temporary() -> None:
    for exc in (aiohttp.ServerDisconnectedError(), ConnectionRefusedError(111, "refused"),
                TimeoutError()):  # fmt: skip
        error = errors.from_client_error(exc, "the engine")
        assert isinstance(error, TemporaryPluginError), exc
        assert str(error).startswith("the engine unreachable: " + type(exc).__name__)


def test_translated_raises_from_the_cause() -> None:
    with pytest.raises(TemporaryPluginError) as info, errors.translated("the API server"):
        raise aiohttp.ClientConnectionError("reset by peer")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectionError)
    assert str(info.value) == "the API server unreachable: ClientConnectionError reset by peer"


# --- the admin client against a real server ------------------------------------------------


def _app() -> web.Application:
    async def deployments(_: web.Request) -> web.Response:
        return web.json_response({"error": "busy"}, status=429, headers={"Retry-After": "7"})

    async def put(request: web.Request) -> web.Response:
        if request.match_info["id"] == "refused":
            body = {"error": "warm-up failed; the old model 'm1' is still serving",
                    "old_model_in_use": True, "model_package_id": "m1"}  # fmt: skip
            return web.json_response(body, status=422)
        return web.json_response({"error": "loading deployment 'x' failed"}, status=422)

    async def delete(_: web.Request) -> web.Response:
        return web.json_response({"error": "no deployment 'gone'"}, status=404)

    async def predict(_: web.Request) -> web.Response:
        return web.json_response({"error": "still loading"}, status=503)

    app = web.Application()
    app.router.add_get("/admin/deployments", deployments)
    app.router.add_put("/admin/deployments/{id}", put)
    app.router.add_delete("/admin/deployments/{id}", delete)
    app.router.add_post("/v1/deployments/{id}/predict", predict)
    return app


@pytest.fixture
async def server_api() -> AsyncIterator[ServerAPI]:
    runner = web.AppRunner(_app(), handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api = ServerAPI(f"http://127.0.0.1:{port}", "token", timeout_s=5)
    try:
        yield api
    finally:
        await api.close()
        await runner.cleanup()


async def test_admin_client_maps_each_answer(server_api: ServerAPI) -> None:
    with pytest.raises(TemporaryPluginError) as busy:
        await server_api.deployments()
    assert busy.value.delay == 7.0
    assert str(busy.value) == "GET /admin/deployments: server answered 429: busy"
    refused = await server_api.put("refused", {})
    assert refused == Refused(
        "PUT /admin/deployments/refused: server answered 422: warm-up failed; "
        "the old model 'm1' is still serving", True, "m1",
    )  # fmt: skip
    with pytest.raises(PermanentPluginError, match="answered 422: loading deployment 'x' failed"):
        await server_api.put("x", {})
    assert await server_api.delete("gone") is False
    with pytest.raises(TemporaryPluginError, match="answered 503: still loading"):
        await server_api.predict("x", [{}])


async def test_admin_client_without_a_server_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = ServerAPI(f"http://127.0.0.1:{port}", "token", timeout_s=5)
    try:
        assert await api.ready() is False
        with pytest.raises(TemporaryPluginError, match=f"prediction server at .*:{port} unreach"):
            await api.deployments()
    finally:
        await api.close()
