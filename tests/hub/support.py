"""Helpers for hub tests: a real hub on 127.0.0.1, clients, package archives, events.

Every hub test runs on both store backends: :func:`settings` gives the hub the
database of the running backend (:data:`DATABASE`), and the helpers that look
into the database (:func:`rows`, :func:`query`, :func:`stored_bytes`) speak
either.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import sqlite3
import tarfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import orjson

from pilothouse.foundation.domain.events import new_id
from pilothouse.hub import HubSettings, serve_hub
from pilothouse.hub.clock import Clock

ADMIN = "test-admin-token"
V1 = "/api/v1"

BACKENDS = ("sqlite", "postgres")
"""The store backends every hub test runs against (``backends`` marker: fewer)."""
DATABASE: dict[str, str | None] = {"url": None}
"""The database URL :func:`settings` gives a hub: None for SQLite in its state directory,
else the ``postgresql://`` URL of the test's fresh database (set by the ``hub_backend``
fixture of tests/hub and tests/reliability)."""


@dataclass
class Running:
    """A hub serving on 127.0.0.1 and an admin session to it."""

    url: str
    settings: HubSettings
    admin: aiohttp.ClientSession
    _sessions: list[aiohttp.ClientSession] = field(default_factory=list)

    def session(self, token: str | None) -> aiohttp.ClientSession:
        """A session with ``token`` (None: no Authorization header), closed with the hub."""
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        http = aiohttp.ClientSession(self.url, headers=headers)
        self._sessions.append(http)
        return http

    async def pe(self, name: str = "prod", platform: str = "test") -> dict[str, Any]:
        """Register a PE."""
        return await ok(self.admin.post(f"{V1}/prediction-environments", json={
            "name": name, "platform": platform,
        }), 201)  # fmt: skip

    async def agent(self, pe_id: str) -> aiohttp.ClientSession:
        """A session with a fresh agent token of ``pe_id``."""
        token = await ok(self.admin.post(f"{V1}/prediction-environments/{pe_id}/agent-tokens"), 201)
        return self.session(token["token"])

    async def package(self, name: str = "iris", version: str = "1.0") -> dict[str, Any]:
        """Upload a small valid package."""
        return await ok(upload(self.admin, package_bytes(name, version)), 201)

    async def deployment(self, pe_id: str, package_id: str, name: str = "dep") -> dict[str, Any]:
        """Create a deployment."""
        body = {"name": name, "prediction_environment_id": pe_id, "model_package_id": package_id}
        return await ok(self.admin.post(f"{V1}/deployments", json=body), 201)

    async def close(self) -> None:
        """Close every extra session."""
        for http in self._sessions:
            await http.close()


def settings(state_dir: Any, **overrides: Any) -> HubSettings:
    """Hub settings for a test: port 0, fixed admin token, fast timings."""
    base: dict[str, Any] = {
        "state_dir": state_dir,
        "admin_token": ADMIN,
        "listen": {"host": "127.0.0.1", "port": 0},
        "database": {"readers": 2, "mmap_mb": 64, "cache_mb": 8, "url": DATABASE["url"]},
        "agents": {"heartbeat_timeout_s": 3600, "keepalive_interval_s": 3600},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = base[key] | value
        else:
            base[key] = value
    return HubSettings.load(None, base)


@contextlib.asynccontextmanager
async def running(hub_settings: HubSettings, clock: Clock | None = None) -> AsyncIterator[Running]:
    """Serve a hub for the block, with an admin session (``clock``: its background clock)."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with (
        serve_hub(hub_settings, clock=clock) as url,
        aiohttp.ClientSession(url, headers=headers) as s,
    ):
        hub = Running(url, hub_settings, s)
        try:
            yield hub
        finally:
            await hub.close()


async def ok(request: Any, status: int = 200) -> Any:
    """Await a request, assert its status, return its JSON (None for an empty body)."""
    async with request as resp:
        body = await resp.read()
        assert resp.status == status, (resp.status, body[:2000])
        return _decoded(resp.content_type, body)


async def answer(request: Any) -> tuple[int, Any]:
    """Await a request; return (status, JSON body or None)."""
    async with request as resp:
        body = await resp.read()
        return resp.status, _decoded(resp.content_type, body)


def _decoded(content_type: str, body: bytes) -> Any:
    if not body:
        return None
    return orjson.loads(body) if content_type == "application/json" else body


def upload(http: aiohttp.ClientSession, data: bytes, content_type: str = "application/gzip") -> Any:
    """POST an archive."""
    return http.post(f"{V1}/model-packages", data=data, headers={"Content-Type": content_type})


def package_bytes(
    name: str = "iris",
    version: str = "1.0",
    *,
    manifest: str | None = None,
    extra: Iterable[tuple[tarfile.TarInfo, bytes | None]] = (),
) -> bytes:
    """A .tar.gz with ``model.yaml`` (unless ``manifest=""``) and ``extra`` members."""
    text = (
        manifest
        if manifest is not None
        else f"name: {name}\nversion: '{version}'\nformat: sklearn\nartifact: model.joblib\n"
        "target: {type: classification, name: label, classes: [a, b]}\nfeatures: [{name: x}]\n"
    )
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    if text:
        members.append((member("model.yaml"), text.encode()))
    members.append((member("model.joblib"), b"\x80\x04not really a model"))
    members.extend(extra)
    return tar_gz(members)


def member(name: str, kind: bytes = tarfile.REGTYPE, **attrs: Any) -> tarfile.TarInfo:
    """A tar header."""
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def tar_gz(members: Iterable[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    """Pack members (data given for regular files) into a .tar.gz.

    The same members always give the same bytes (the gzip header's time is fixed):
    a package built twice is the same package, whichever second each build fell in.
    """
    buf = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(pe_id: str, **fields: Any) -> dict[str, Any]:
    """An event as an agent posts it."""
    base: dict[str, Any] = {
        "id": new_id(),
        "time": T0.isoformat(),
        "prediction_environment_id": pe_id,
        "deployment_id": None,
        "source": "agent",
        "type": "deployment.ready",
        "status": "passing",
        "message": "ready",
        "data": {},
    }
    if isinstance(fields.get("time"), datetime):
        fields["time"] = fields["time"].isoformat()
    return base | fields


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


async def rows(hub: Running, table: str) -> int:
    """How many rows a table holds (read through a separate connection)."""
    found = await query(hub.settings, f"SELECT count(*) FROM {table}")
    return int(found[0][0])


async def query(
    hub_settings: HubSettings, sql: str, *, setup: Iterable[str] = ()
) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` run on the hub's database, SQLite (in a thread) or PostgreSQL.

    ``setup``: statements run first on the same connection (PostgreSQL: ``SET …``).
    """
    if hub_settings.uses_postgres:
        import asyncpg

        conn = await asyncpg.connect(hub_settings.database.url)
        try:
            for statement in setup:
                await conn.execute(statement)
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    def run() -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(hub_settings.database_path, timeout=10, isolation_level=None)
        try:
            return list(conn.execute(sql).fetchall())
        finally:
            conn.close()

    return await asyncio.to_thread(run)


async def schema_version(hub_settings: HubSettings) -> int:
    """The schema version the hub's database records."""
    sql = (
        "SELECT version FROM schema_version"
        if hub_settings.uses_postgres
        else "PRAGMA user_version"
    )
    return int((await query(hub_settings, sql))[0][0])


async def set_schema_version(hub_settings: HubSettings, version: int) -> None:
    """Record another schema version in the hub's database (as a newer hub would)."""
    sql = (
        f"UPDATE schema_version SET version = {version}"
        if hub_settings.uses_postgres
        else f"PRAGMA user_version = {version}"
    )
    await query(hub_settings, sql)


async def stored_bytes(hub_settings: HubSettings) -> bytes:
    """Everything the database keeps, as bytes: the SQLite files and every row, or a pg_dump."""
    if hub_settings.uses_postgres:
        from tests.postgres_support import bin_dir

        dump = await asyncio.create_subprocess_exec(
            str(bin_dir() / "pg_dump"), "--data-only", "--no-owner", "-d",
            str(hub_settings.database.url), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, _ = await dump.communicate()
        assert dump.returncode == 0, "pg_dump failed"
        return out
    path = hub_settings.database_path
    tables = await query(hub_settings, "SELECT name FROM sqlite_master WHERE type = 'table'")
    every_row = [await query(hub_settings, f"SELECT * FROM {t[0]}") for t in tables]
    files = [path, path.with_name(path.name + "-wal")]
    raw = await asyncio.to_thread(lambda: b"".join(p.read_bytes() for p in files if p.exists()))
    return raw + repr(every_row).encode()


@dataclass(frozen=True)
class Message:
    """One server-sent event, or a comment (``event="comment"``)."""

    event: str
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        """The data as JSON."""
        return orjson.loads(self.data)


async def next_message(resp: aiohttp.ClientResponse, timeout: float = 5.0) -> Message:
    """Read the next event or comment of a text/event-stream response."""
    import asyncio

    fields: dict[str, str] = {}
    async with asyncio.timeout(timeout):
        while True:
            line = (await resp.content.readline()).decode()
            if not line:
                raise EOFError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith(":"):
                await resp.content.readline()  # the blank line after a comment
                return Message("comment", line[1:].strip())
            if not line:
                return Message(
                    fields.get("event", "message"), fields.get("data", ""), fields.get("id")
                )
            name, _, value = line.partition(": ")
            fields[name] = value


async def first_page(hub: Running, params: dict[str, str]) -> list[str]:
    """The ids the live event stream's first page (its snapshot) shows now."""
    async with hub.admin.get(f"{V1}/events/stream", params=params) as stream:
        assert (await next_message(stream)).event == "comment"
        return [e["id"] for e in (await next_message(stream)).json()["items"]]


async def until_settled(hub: Running, params: dict[str, str], ids: list[str]) -> None:
    """Wait until the stream's first page shows ``ids`` (newest first).

    On PostgreSQL the first page holds settled events only: committed before every
    transaction still running began. A background transaction of the hub that happens
    to be open when events are posted (a loaded machine) must end first.
    """
    import asyncio
    import itertools

    async with asyncio.timeout(10):
        for _ in itertools.count():
            if await first_page(hub, params) == ids:
                return
            await asyncio.sleep(0.05)


# A deployment's settings when none are given, as the API shows them (the contract for users).
DEFAULT_SETTINGS: dict[str, Any] = {
    "replicas": 1,
    "resources": {"cpu": None, "memory": None},
    "env": {},
    "challengers": {"mirror_percent": 100.0},
    "rollback": {
        "enabled": True,
        "guard_s": 300.0,
        "max_error_rate_increase": 0.05,
        "max_error_rate_ratio": 2.0,
        "max_p99_ratio": 2.0,
        "min_requests": 20,
    },
    "drift": {"at_risk_psi": 0.1, "failing_psi": 0.25, "min_rows": 100, "window_s": 300.0},
    "retraining": {
        "on_drift_failing": False,
        "accuracy_below": None,
        "every_s": None,
        "webhook_url": None,
        "command": None,
        "cooldown_s": 86400.0,
    },
}
