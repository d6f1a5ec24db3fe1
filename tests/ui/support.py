"""The browser side of the UI tests: Debian's Chromium driven by Playwright, and a stack.

Playwright's own browser download cannot work on these machines, so the tests
drive ``/usr/bin/chromium`` (Debian's ``chromium`` package). Without it they
skip with the reason — unless ``PILOTHOUSE_REQUIRE_BROWSER=1`` (CI sets it),
where a missing browser fails them. Screenshots go to ``.artifacts/ui/`` (git
ignores it), one per page and width, for people to look at.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings
from tests.helpers import running as agent_running
from tests.hub.support import ADMIN, V1, Running, ok, package_bytes, upload
from tests.hub.support import running as hub_running
from tests.hub.support import settings as hub_settings

CHROMIUM = Path(os.environ.get("PILOTHOUSE_CHROMIUM", "/usr/bin/chromium"))
REQUIRED = os.environ.get("PILOTHOUSE_REQUIRE_BROWSER") == "1"  # read at import: fixtures clear env
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "ui"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if not CHROMIUM.is_file():
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)"
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    return None


def need_browser() -> None:
    """Skip (or, with PILOTHOUSE_REQUIRE_BROWSER=1, fail) when no browser can run."""
    reason = missing_browser()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"PILOTHOUSE_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Any]:
    """A headless Chromium for the block."""
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def logged_in(browser: Any, url: str, viewport: dict[str, int] = DESKTOP) -> Any:
    """A page of a fresh browser context already holding the admin token for its session."""
    context = await browser.new_context(viewport=viewport, accept_downloads=True)
    await context.add_init_script(f"sessionStorage.setItem('pilothouse.token', {ADMIN!r});")
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if _an_error(m) else None)
    page.errors = errors  # checked by the tests: the UI logs no error
    await page.goto(url + "/#/deployments")
    return page


def _an_error(message: Any) -> bool:
    # A hub without the agent-token listing answers it 405; the page says so (tested).
    return bool(message.type == "error" and "405 (Method Not Allowed)" not in message.text)


async def shot(page: Any, name: str, *, full: bool = False) -> Path:
    """Save a screenshot (the viewport, or the full page) under .artifacts/ui/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full)
    return path


async def within(seconds: float, check: Callable[[], Awaitable[bool]], step: float = 0.02) -> float:
    """Poll ``check`` until true; return how long it took; fail after ``seconds``."""
    import asyncio

    began = time.perf_counter()
    while not await check():
        if time.perf_counter() - began > seconds:
            raise AssertionError(f"not true within {seconds} s")
        await asyncio.sleep(step)
    return time.perf_counter() - began


@dataclass
class Stack:
    """A real hub, a real agent (simulated infrastructure) and one deployment on it."""

    hub: Running
    pe: dict[str, Any]
    agent_token: str
    packages: list[dict[str, Any]]
    deployment: dict[str, Any]
    plugin: SimulatedPlugin
    agent: Agent

    @property
    def url(self) -> str:
        """The hub's base URL."""
        return self.hub.url

    async def get_deployment(self) -> dict[str, Any]:
        """The deployment as the hub has it now."""
        found: dict[str, Any] = await ok(self.hub.admin.get(f"{V1}/deployments/{self.dep_id}"))
        return found

    @property
    def dep_id(self) -> str:
        """The deployment's id."""
        return str(self.deployment["id"])

    async def until_observed(self, state: str, generation: int, timeout: float = 10) -> None:
        """Wait until the agent reports ``state`` at ``generation`` (or later)."""

        async def seen() -> bool:
            observed = (await self.get_deployment())["observed"]
            return bool(observed["state"] == state and observed["generation"] >= generation)

        await within(timeout, seen, 0.05)


def _agent_settings(state: Path, url: str, pe: str, token: str) -> AgentSettings:
    return AgentSettings.load(None, {
        "prediction_environment": pe,
        "state_dir": state,
        "hub": {"url": url, "token": token, "poll_interval_s": 0.5,
                "reconnect_backoff_max_s": 0.3},
        "actions": {"backoff_initial_s": 0.01, "errored_retry_s": 0.05},
        "health": {"interval_s": 3600, "heartbeat_interval_s": 0.5},
        "shutdown": {"grace_period_s": 5},
    })  # fmt: skip


@contextlib.asynccontextmanager
async def stack(tmp: Path) -> AsyncIterator[Stack]:
    """Hub, agent (test plugin), PE ``prod``, packages iris 1 and 2, deployment ``fraud`` ready."""
    async with hub_running(hub_settings(tmp / "hub")) as hub:
        pe = await hub.pe("prod")
        token = await ok(
            hub.admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"), 201
        )
        packages = [await ok(upload(hub.admin, package_bytes("iris", v)), 201) for v in ("1", "2")]
        plugin = SimulatedPlugin(SimulatedPluginSettings(delays={"launch_s": 0.05}))
        agent = Agent(
            _agent_settings(tmp / "agent", hub.url, pe["id"], token["token"]), plugin=plugin
        )
        async with agent_running(agent):
            deployment = await hub.deployment(pe["id"], packages[0]["id"], name="fraud")
            built = Stack(hub, pe, token["token"], packages, deployment, plugin, agent)
            await built.until_observed("ready", 1)
            yield built
