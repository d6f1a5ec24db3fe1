"""Shared fixtures: anyio on asyncio, agent settings in a temporary state directory, PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilothouse.agent.settings import AgentSettings
from tests import postgres_support


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def make_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Build AgentSettings for a test: fast timings, files under tmp_path, no env leakage."""
    for key in list(__import__("os").environ):
        if key.startswith("PILOTHOUSE_") and key != "PILOTHOUSE_REQUIRE_DOCKER":
            monkeypatch.delenv(key)

    def build(**overrides: Any) -> AgentSettings:
        base: dict[str, Any] = {
            "prediction_environment": "pe-test",
            "plugin": "test",
            "state_dir": tmp_path / "state",
            "actions": {
                "backoff_initial_s": 0.01,
                "backoff_max_s": 0.05,
                "errored_retry_s": 0.05,
                "timeout_s": 5,
            },
            "supervisor": {"restart_backoff_initial_s": 0.01, "restart_backoff_max_s": 0.05},
            "health": {"interval_s": 3600, "heartbeat_interval_s": 3600},
            "intake": {"poll_interval_s": 0.05},
            "shutdown": {"grace_period_s": 2},
        }
        for key, value in overrides.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                base[key] = base[key] | value
            else:
                base[key] = value
        return AgentSettings.load(None, base)

    return build


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[postgres_support.Cluster]:
    """A throwaway PostgreSQL cluster for the session (started on first use, removed after)."""
    with postgres_support.cluster() as made:
        yield made


@pytest.fixture(scope="session")
def postgres_databases(
    postgres_cluster: postgres_support.Cluster,
) -> Iterator[postgres_support.Databases]:
    """Fresh databases of the session's cluster, made ahead of need."""
    databases = postgres_support.Databases(postgres_cluster)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def postgres_url(
    postgres_cluster: postgres_support.Cluster, postgres_databases: postgres_support.Databases
) -> Iterator[str]:
    """The URL of a fresh, empty database for this test (dropped after it)."""
    name = postgres_databases.take()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_databases.give_back(name)


@pytest.fixture(scope="session")
def postgres_hub_databases(
    postgres_cluster: postgres_support.Cluster,
) -> Iterator[postgres_support.Databases]:
    """Fresh databases with the hub's schema: copies of one template migrated once."""
    template = postgres_support.hub_template(postgres_cluster)
    databases = postgres_support.Databases(postgres_cluster, template, ahead=3)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture
def postgres_hub_url(
    postgres_cluster: postgres_support.Cluster, postgres_hub_databases: postgres_support.Databases
) -> Iterator[str]:
    """The URL of a fresh database already at the hub's schema (dropped after the test)."""
    name = postgres_hub_databases.take()
    try:
        yield postgres_cluster.url(name)
    finally:
        postgres_hub_databases.give_back(name)
