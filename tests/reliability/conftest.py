"""Fixtures: a real hub on 127.0.0.1 per test (as in tests/hub), no hub settings from the env."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.hub.backends import hub_backend, pytest_generate_tests
from tests.hub.support import Running, running, settings

__all__ = ["hub_backend", "pytest_generate_tests"]


@pytest.fixture(autouse=True)
def _no_hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("PILOTHOUSE_HUB_"):
            monkeypatch.delenv(key)


@pytest.fixture
async def hub(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Running]:
    async with running(settings(tmp_path / "hub")) as serving:
        yield serving
