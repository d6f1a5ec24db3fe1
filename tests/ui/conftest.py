"""Fixtures of the browser tests: one Chromium per test module, a hub and an agent per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.support import Stack, chromium, need_browser, stack


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def browser(anyio_backend: str) -> AsyncIterator[Any]:
    need_browser()
    async with chromium() as launched:
        yield launched


@pytest.fixture
async def running_stack(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Stack]:
    async with stack(tmp_path) as built:
        yield built


@pytest.fixture
async def hub(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Any]:
    from tests.hub.support import running, settings

    async with running(settings(tmp_path / "hub")) as serving:
        yield serving
