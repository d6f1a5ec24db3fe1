"""A typed client of the hub's agent-facing API, and the one place its errors are mapped.

Every request goes through :meth:`HubClient._request`, which turns aiohttp's
exceptions and HTTP error statuses into the ``HubError`` tree of
:mod:`pilothouse.agent.errors`; nothing above this module sees an aiohttp exception.

A hub may run as several replicas over one database, any of which answers
every request. The client is given them all and talks to one at a time; when
that one cannot be reached it moves on to the next, for good (no flapping
back): a request that could not even connect is tried on each replica in turn
before the hub counts as unreachable, and a request cut short, or a watch
stream that broke, fails as before — the caller retries, on the next replica.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from pydantic import ValidationError

from pilothouse.agent.errors import HubAuthError, HubRejectedError, HubUnreachableError
from pilothouse.foundation.domain.desired import DesiredDeployment

API = "/api/v1"

log = logging.getLogger("pilothouse.hublink")


@dataclass(frozen=True, slots=True)
class HubSnapshot:
    """The PE's desired state as the hub holds it, at ``revision``."""

    revision: int
    deployments: list[DesiredDeployment]


@dataclass(frozen=True, slots=True)
class WatchMessage:
    """One Server-Sent Event of the watch stream."""

    event: str
    data: str
    id: str | None


class HubClient:
    """Talks to one hub (one of its replicas at a time) with one agent token."""

    def __init__(
        self, base_url: str | Sequence[str], token: str, *, timeout_s: float = 30.0
    ) -> None:
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        if not urls:
            raise ValueError("a hub client needs at least one hub URL")
        self._bases = [url.rstrip("/") for url in urls]
        self._current = 0
        self._headers = {"Authorization": f"Bearer {token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def _base(self) -> str:
        """The replica in use."""
        return self._bases[self._current]

    def _move_on(self, failed: str, why: object) -> None:
        """``failed`` cannot be reached: use the next replica (unless another call moved)."""
        if len(self._bases) == 1 or self._base != failed:
            return
        self._current = (self._current + 1) % len(self._bases)
        log.warning("hub replica %s unreachable (%s); moving to %s", failed, why, self._base)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                headers=self._headers, json_serialize=lambda o: orjson.dumps(o).decode()
            )
        return self._session

    async def close(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def desired_state(self, pe: str) -> HubSnapshot:
        """Fetch the PE's desired-state snapshot."""
        body = await self._request("GET", f"{API}/prediction-environments/{pe}/desired-state")
        try:
            deployments = [DesiredDeployment.model_validate(d) for d in body["deployments"]]
            return HubSnapshot(int(body["revision"]), deployments)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise HubRejectedError(
                f"hub sent an invalid desired state: {exc}", status=200
            ) from None

    async def post_events(self, events: list[bytes]) -> dict[str, Any]:
        """Post a batch of already-serialized events (JSON objects)."""
        payload = b'{"events":[' + b",".join(events) + b"]}"
        result: dict[str, Any] = await self._request("POST", f"{API}/events", data=payload)
        return result

    async def post_monitoring(self, windows: list[bytes]) -> dict[str, Any]:
        """Post already-serialized statistics windows (``StatsBatch``); accepted, duplicates."""
        payload = b'{"windows":[' + b",".join(windows) + b"]}"
        result = await self._request("POST", f"{API}/agent/monitoring", data=payload)
        return result if isinstance(result, dict) else {}

    async def post_rollback(self, deployment_id: str, body: bytes) -> dict[str, Any]:
        """Tell the hub the agent rolled a deployment back (it records it in the desired state)."""
        result = await self._request(
            "POST", f"{API}/deployments/{deployment_id}/rollback", data=body
        )
        return result if isinstance(result, dict) else {}

    async def heartbeat(self, pe: str, payload: Mapping[str, Any]) -> None:
        """Tell the hub this agent is alive."""
        await self._request(
            "POST",
            f"{API}/prediction-environments/{pe}/heartbeat",
            data=orjson.dumps(dict(payload)),
        )

    async def put_status(self, deployment_id: str, payload: Mapping[str, Any]) -> bool:
        """Report a deployment's observed state; False if the hub no longer knows it."""
        try:
            await self._request(
                "PUT", f"{API}/deployments/{deployment_id}/status", data=orjson.dumps(dict(payload))
            )
        except HubRejectedError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def issue_package_token(self, pe: str) -> dict[str, Any]:
        """A new read-only package token of the PE (``id``, ``token``: the secret)."""
        issued: dict[str, Any] = await self._request(
            "POST", f"{API}/prediction-environments/{pe}/package-tokens"
        )
        return issued

    async def revoke_package_token(self, pe: str, token_id: str) -> bool:
        """Revoke one of the PE's package tokens; False if the hub knows no such token."""
        try:
            await self._request(
                "DELETE", f"{API}/prediction-environments/{pe}/package-tokens/{token_id}"
            )
        except HubRejectedError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def watch(self, pe: str, last_event_id: int | None) -> AsyncIterator[WatchMessage]:
        """Stream the PE's changes (Server-Sent Events) after ``last_event_id``."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        base = self._base
        url = f"{base}{API}/prediction-environments/{pe}/watch"
        try:
            async with self._http().get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=60)
            ) as resp:
                await _raise_for_status(resp)
                async for message in _parse_sse(resp.content):
                    yield message
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._move_on(base, exc)
            raise HubUnreachableError(
                f"watch stream from {base} broke: {type(exc).__name__} {exc}"
            ) from None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> Any:
        """Call any hub endpoint (the CLI uses this); JSON in and out, errors mapped."""
        data = raw if raw is not None else None if body is None else orjson.dumps(body)
        return await self._request(
            method, path, data=data, params=params, content_type=content_type
        )

    @contextlib.asynccontextmanager
    async def stream(self, method: str, path: str) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response to read as a stream (errors mapped; the body is the caller's)."""
        base = self._base
        try:
            async with self._http().request(
                method,
                base + path,
                timeout=aiohttp.ClientTimeout(sock_connect=10, sock_read=60),
            ) as resp:
                await _raise_for_status(resp)
                yield resp
        except aiohttp.ClientError as exc:
            self._move_on(base, exc)
            raise HubUnreachableError(
                f"{method} {path}: hub at {base} unreachable: {exc}"
            ) from None

    async def _request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | None = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> Any:
        headers = {"Content-Type": content_type} if data is not None else None
        for _ in self._bases:
            base = self._base
            try:
                async with self._http().request(
                    method,
                    base + path,
                    data=data,
                    headers=headers,
                    params=params,
                    timeout=self._timeout,
                ) as resp:
                    await _raise_for_status(resp)
                    raw = await resp.read()
            except aiohttp.ClientConnectorError as exc:  # nothing sent yet: the next replica
                self._move_on(base, exc)
                failure = HubUnreachableError(f"{method} {path}: hub at {base} unreachable: {exc}")
                continue
            except aiohttp.ClientError as exc:
                self._move_on(base, exc)
                raise HubUnreachableError(
                    f"{method} {path}: hub at {base} unreachable: {exc}"
                ) from None
            except TimeoutError:
                self._move_on(base, "timed out")
                raise HubUnreachableError(f"{method} {path}: hub at {base} timed out") from None
            return orjson.loads(raw) if raw else None
        raise failure


async def _raise_for_status(resp: aiohttp.ClientResponse) -> None:
    if resp.status < 400:
        return
    body: Any = None
    with contextlib.suppress(Exception):
        body = orjson.loads(await resp.read())
    detail = body.get("message") if isinstance(body, dict) else None
    what = f"{resp.method} {resp.url.path}: hub answered {resp.status}" + (
        f": {detail}" if detail else ""
    )
    if resp.status >= 500:
        raise HubUnreachableError(what)
    if resp.status in (401, 403):
        raise HubAuthError(what, status=resp.status, body=body)
    raise HubRejectedError(what, status=resp.status, body=body)


async def _parse_sse(stream: aiohttp.StreamReader) -> AsyncIterator[WatchMessage]:
    """Parse text/event-stream: fields until a blank line; ':' lines are comments."""
    event, ident = "message", None
    data: list[str] = []
    while line_bytes := await stream.readline():
        line = line_bytes.decode().rstrip("\r\n")
        if not line:
            if data:
                yield WatchMessage(event, "\n".join(data), ident)
            event, data = "message", []
            continue
        if line.startswith(":"):
            yield WatchMessage("keep-alive", "", None)
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            ident = value
