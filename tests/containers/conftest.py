"""The compose stack's tests run against a real Docker engine (see tests/docker_support.py)."""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

import pytest

from tests.docker_support import IMAGE, ROOT, docker_compose, docker_engine, pilothouse_image

__all__ = ["docker_compose", "docker_engine", "pilothouse_image", "postgres_image"]

POSTGRES_IMAGE = "pilothouse-postgres:" + IMAGE.rsplit(":", 1)[1]
"""PostgreSQL's image for the ``postgres`` profile, one tag per checkout like the project's."""
BUILD_TIMEOUT_S = 900.0


@pytest.fixture(scope="session")
def postgres_image(docker_engine: dict[str, Any]) -> str:
    """PostgreSQL's image, built once per session by ``tools/postgres_image.sh`` (cached)."""
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(ROOT / "tools" / "postgres_image.sh")],
        cwd=ROOT,
        env={**os.environ, "POSTGRES_IMAGE": POSTGRES_IMAGE},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"tools/postgres_image.sh failed:\n{result.stderr[-4000:]}", pytrace=False)
    print(f"\nimage {POSTGRES_IMAGE} built in {time.monotonic() - started:.1f} s")
    return POSTGRES_IMAGE
