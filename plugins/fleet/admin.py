"""Calls to one prediction server: its admin API, its readiness, a real prediction.

Every prediction server a plugin runs — a process, a container, a pod — is the
same ``pilothouse serve``, so one client serves them all. Its errors are
translated by :mod:`pilothouse.plugins.fleet.errors` (no answer and 5xx are
temporary, 4xx permanent with the server's own explanation), except a refused
replacement that left the old model serving (``old_model_in_use``): that is
an outcome, not a failure, and is returned as :class:`Refused` for the plugin
to report.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from pilothouse.plugins.fleet import errors


@dataclass(frozen=True, slots=True)
class Refused:
    """A change the server refused; ``old_model_in_use`` tells whether the old model serves."""

    message: str
    old_model_in_use: bool
    model_package_id: str | None


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: dict[str, Any]
    raw: bytes
    retry_after: float | None


class ServerAPI:
    """The admin and prediction endpoints of one server."""

    def __init__(self, base_url: str, token: str, timeout_s: float) -> None:
        self.base_url = base_url
        self.token = token
        self._auth = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def ready(self) -> bool:
        """Whether /v2/health/ready answers 200 (never raises)."""
        with contextlib.suppress(*errors.NO_ANSWER):
            async with self._http().get(
                self.base_url + "/v2/health/ready", timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                return resp.status == 200
        return False

    async def endpoints(self) -> dict[str, Any]:
        """Where the server listens (``GET /admin/server``: ``grpc_port`` when it serves gRPC).

        A server older than that endpoint answers 404: it is taken as serving no gRPC.
        """
        path = "/admin/server"
        answer = await self._send("GET", path)
        return {} if answer.status == 404 else self._result("GET", path, answer)

    async def deployments(self) -> list[dict[str, Any]]:
        """What the server serves (admin API)."""
        path = "/admin/deployments"
        body = self._result("GET", path, await self._send("GET", path))
        return list(body["deployments"])

    async def put(self, deployment_id: str, body: dict[str, Any]) -> dict[str, Any] | Refused:
        """Load or replace a deployment; a refusal with the old model serving is returned."""
        path = f"/admin/deployments/{deployment_id}"
        answer = await self._send("PUT", path, body)
        if 400 <= answer.status < 500 and answer.body.get("old_model_in_use"):
            message = _message("PUT", path, answer)
            return Refused(message, True, answer.body.get("model_package_id"))
        return self._result("PUT", path, answer)

    async def delete(self, deployment_id: str) -> bool:
        """Unload a deployment; False if it was not loaded."""
        path = f"/admin/deployments/{deployment_id}"
        answer = await self._send("DELETE", path)
        if answer.status == 404:
            return False
        self._result("DELETE", path, answer)
        return True

    async def statistics(
        self, deployment_id: str, server: str | None, associations_after: int | None
    ) -> dict[str, Any] | None:
        """The deployment's cumulative counters (admin API); None if it is not loaded.

        ``associations_after`` None: without associations (counts only).
        """
        path = f"/admin/deployments/{deployment_id}/statistics"
        if associations_after is None:
            path += "?associations=false"
        else:
            path += f"?associations_after={associations_after}"
        if server:
            path += f"&server={server}"
        answer = await self._send("GET", path)
        if answer.status == 404:
            return None
        return self._result("GET", path, answer)

    async def predict(self, deployment_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """A real prediction through the public endpoint (the health probe)."""
        path = f"/v1/deployments/{deployment_id}/predict"
        return self._result("POST", path, await self._send("POST", path, {"rows": rows}, False))

    async def _send(self, method: str, path: str, body: Any = None, admin: bool = True) -> _Answer:
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} | (self._auth if admin else {})
        with errors.translated(f"prediction server at {self.base_url}"):
            async with self._http().request(
                method, self.base_url + path, data=data, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await resp.read()
                retry = errors.parse_retry_after(resp.headers.get("Retry-After"))
                return _Answer(resp.status, _decode(raw), raw, retry)

    def _result(self, method: str, path: str, answer: _Answer) -> dict[str, Any]:
        if answer.status < 400:
            return answer.body
        raise errors.from_status(
            answer.status, _message(method, path, answer), retry_after=answer.retry_after
        )


def _message(method: str, path: str, answer: _Answer) -> str:
    body = answer.body
    detail = body.get("message") or body.get("error") or answer.raw[:300].decode(errors="replace")
    return f"{method} {path}: server answered {answer.status}: {detail}"


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}
