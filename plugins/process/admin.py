"""Calls to one prediction server, and the one place its errors are translated.

Connection problems and 5xx answers become ``TemporaryPluginError`` (retrying
can help); 4xx answers become ``PermanentPluginError`` with the server's own
message, except a refused replacement (``old_model_in_use``), which is
returned as data for the plugin to report.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from pilothouse.agent.errors import PermanentPluginError, TemporaryPluginError


@dataclass(frozen=True, slots=True)
class Refused:
    """A change the server refused; ``old_model_in_use`` tells whether the old model serves."""

    message: str
    old_model_in_use: bool
    model_package_id: str | None


class ServerAPI:
    """The admin and prediction endpoints of one server."""

    def __init__(self, base_url: str, token: str, timeout_s: float) -> None:
        self.base_url = base_url
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
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with self._http().get(
                self.base_url + "/v2/health/ready", timeout=aiohttp.ClientTimeout(total=2)
            ) as resp:
                return resp.status == 200
        return False

    async def deployments(self) -> list[dict[str, Any]]:
        """What the server serves (admin API)."""
        body = await self._call("GET", "/admin/deployments")
        return list(body["deployments"])

    async def put(self, deployment_id: str, body: dict[str, Any]) -> dict[str, Any] | Refused:
        """Load or replace a deployment; a refusal with the old model serving is returned."""
        answer: dict[str, Any] | Refused = await self._call(
            "PUT", f"/admin/deployments/{deployment_id}", body, refusable=True
        )
        return answer

    async def delete(self, deployment_id: str) -> bool:
        """Unload a deployment; False if it was not loaded."""
        try:
            await self._call("DELETE", f"/admin/deployments/{deployment_id}")
        except PermanentPluginError as exc:
            if "404" in str(exc):
                return False
            raise
        return True

    async def predict(self, deployment_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """A real prediction through the public endpoint (the health probe)."""
        body: dict[str, Any] = await self._call(
            "POST", f"/v1/deployments/{deployment_id}/predict", {"rows": rows}, admin=False
        )
        return body

    async def _call(
        self, method: str, path: str, body: Any = None, *, refusable: bool = False,
        admin: bool = True,
    ) -> Any:  # fmt: skip
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} | (self._auth if admin else {})
        try:
            async with self._http().request(
                method, self.base_url + path, data=data, headers=headers, timeout=self._timeout
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TemporaryPluginError(
                f"prediction server at {self.base_url} unreachable: {type(exc).__name__} {exc}"
            ) from None
        answer = _decode(raw)
        if status < 400:
            return answer
        detail = answer.get("message") or answer.get("error") or raw[:300].decode(errors="replace")
        message = f"{method} {path}: server answered {status}: {detail}"
        if status >= 500:
            raise TemporaryPluginError(message)
        if refusable and answer.get("old_model_in_use"):
            return Refused(message, True, answer.get("model_package_id"))
        raise PermanentPluginError(message)


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {"value": value}
