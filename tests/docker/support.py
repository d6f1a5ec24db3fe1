"""Shared pieces of the ``docker`` plugin's tests on the real engine.

Each test gets an ``owner`` of its own (``plugin_settings.owner``, the
``io.pilothouse.owner`` label), so tests running side by side on one engine —
or two checkouts testing at once — never see each other's containers, and
:func:`purge` removes exactly what one test made, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiodocker
import aiohttp
import orjson

from pilothouse.agent.plugin import DeploymentReport, PackageFetcher, PluginContext
from pilothouse.foundation.domain.events import Event
from pilothouse.plugins.docker import DockerPlugin
from tests.modelpkg.factory import SETOSA, VIRGINICA, python_package

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "models"
IRIS_1 = EXAMPLES / "iris-1.0.0"
IRIS_2 = EXAMPLES / "iris-2.0.0"
RULES = EXAMPLES / "iris-rules-1.0.0"
ROWS = [SETOSA, VIRGINICA]
TIMEOUT = 60.0
"""One action on a two-core machine shared with other tests: a container start and a load."""
OWNER_LABEL = "io.pilothouse.owner"


def new_owner() -> str:
    """An owner no other test uses."""
    return "t" + uuid.uuid4().hex[:10]


def settings(image: str, owner: str, **more: Any) -> dict[str, Any]:
    """``plugin_settings`` for a test: its own owner, fast checks, the session's image."""
    base: dict[str, Any] = {
        "image": image,
        "owner": owner,
        "pull": "never",
        "check_interval_s": 0.2,
        "stop_timeout_s": 5,
    }
    return base | more


def rules_2(tmp: Path) -> Path:
    """A second rules package (a replacement for :data:`RULES`)."""
    return python_package(tmp / "rules-2", name="iris-rules-2")


async def owned(owner: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The containers (as listed, all states) and volume names labelled with ``owner``."""
    filters = {"label": [f"{OWNER_LABEL}={owner}"]}
    async with aiodocker.Docker() as client:
        found = await client.containers.list(all=True, filters=orjson.dumps(filters).decode())
        volumes = await client.volumes.list(filters=filters)
    return [dict(c._container) for c in found], [v["Name"] for v in volumes.get("Volumes") or []]


def names(containers: list[dict[str, Any]]) -> list[str]:
    """Container names, sorted."""
    return sorted(str(c["Names"][0]).lstrip("/") for c in containers)


async def purge(owner: str) -> None:
    """Remove every container and volume labelled with ``owner`` (a test's leftovers)."""
    containers, volumes = await owned(owner)
    async with aiodocker.Docker() as client:
        for c in containers:
            with contextlib.suppress(aiodocker.DockerError):
                await client.containers.container(c["Id"]).delete(force=True, v=True)
        for name in volumes:
            with contextlib.suppress(aiodocker.DockerError):
                await aiodocker.volumes.DockerVolume(client, name).delete()


@dataclass
class Loaded:
    """A started plugin with what it emitted and reported."""

    plugin: DockerPlugin
    ctx: PluginContext
    events: list[Event] = field(default_factory=list)
    reports: list[DeploymentReport] = field(default_factory=list)


@contextlib.asynccontextmanager
async def loaded(
    state_dir: Path,
    plugin_settings: dict[str, Any],
    *,
    pe: str = "pe-docker",
    fetch_package: PackageFetcher | None = None,
) -> AsyncIterator[Loaded]:
    """A docker plugin started on a context that records events and reports; unloaded after."""
    events: list[Event] = []
    reports: list[DeploymentReport] = []
    ctx = PluginContext(
        prediction_environment_id=pe,
        settings=plugin_settings,
        state_dir=state_dir,
        emit=events.append,
        logger=logging.getLogger("tests.docker"),
        fetch_package=fetch_package,
        reports=reports.append,
    )
    plugin = DockerPlugin()
    try:
        await plugin.start(ctx)
        yield Loaded(plugin, ctx, events, reports)
    finally:
        try:
            await plugin.stop()
        finally:
            await ctx.stop_tasks()


@dataclass
class Traffic:
    """What each client of a steady stream got: (HTTP status, model package id), in order."""

    clients: list[list[tuple[int, str]]]

    def __len__(self) -> int:
        return sum(len(c) for c in self.clients)

    def failed(self) -> list[tuple[int, str]]:
        """Every answer that was not a 200."""
        return [a for c in self.clients for a in c if a[0] != 200]

    def switches(self) -> list[list[str]]:
        """Per client, the models it was answered by, each run of answers counted once."""
        runs = []
        for answers in self.clients:
            models = [m for _, m in answers]
            runs.append([m for i, m in enumerate(models) if i == 0 or models[i - 1] != m])
        return runs


@contextlib.asynccontextmanager
async def traffic(url: str, clients: int = 4) -> AsyncIterator[Traffic]:
    """A steady stream of predictions to ``url`` from ``clients`` clients, for the block."""
    seen = Traffic([[] for _ in range(clients)])
    stop = asyncio.Event()

    async def client(http: aiohttp.ClientSession, answers: list[tuple[int, str]]) -> None:
        while not stop.is_set():
            try:
                async with http.post(url, json={"rows": ROWS}) as resp:
                    doc = orjson.loads(await resp.read() or b"{}")
                    answers.append((resp.status, str(doc.get("model_package_id", doc))))
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                answers.append((0, f"{type(exc).__name__}: {exc}"))
                await asyncio.sleep(0.01)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
        tasks = [asyncio.create_task(client(http, answers)) for answers in seen.clients]
        try:
            yield seen
        finally:
            stop.set()
            await asyncio.gather(*tasks)


async def until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or predicate}")
        await asyncio.sleep(0.02)
