"""What only PostgreSQL has: replicas that migrate together, a database it cannot reach."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pilothouse.hub.errors import StorageError
from pilothouse.hub.settings import DatabaseSettings
from pilothouse.hub.store.postgres import migrations
from pilothouse.hub.store.postgres.store import open_postgres
from tests.hub.support import HubSettings, query

pytestmark = [pytest.mark.anyio, pytest.mark.backends("postgres")]


async def test_replicas_starting_together_migrate_an_empty_database_once(
    postgres_url: str,
) -> None:
    async with contextlib.AsyncExitStack() as stack:

        async def start() -> None:
            await stack.enter_async_context(
                open_postgres(postgres_url, DatabaseSettings(), lambda _: None)
            )

        await asyncio.gather(*(start() for _ in range(4)))  # none trips over another's tables
    hub = HubSettings.load(None, {"database": {"url": postgres_url}})
    assert await query(hub, "SELECT version FROM schema_version") == [(len(migrations.MIGRATIONS),)]
    tables = await query(hub, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    assert tables == [(16,)]  # the 15 of the migrations and schema_version


async def test_an_unreachable_database_is_a_clear_error() -> None:
    url = "postgresql://hub:pw@127.0.0.1:1/hub"  # nothing listens on port 1
    with pytest.raises(StorageError, match=r"cannot connect .*hub:\*\*\*@127\.0\.0\.1:1/hub"):
        async with open_postgres(url, DatabaseSettings(connect_timeout_s=2), lambda _: None):
            pass
