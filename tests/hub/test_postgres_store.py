"""What only PostgreSQL has: replicas that migrate together, a database it cannot reach."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.errors import StorageError
from pilothouse.hub.settings import DatabaseSettings
from pilothouse.hub.store.postgres import ingest, migrations, search
from pilothouse.hub.store.postgres.store import open_postgres
from tests.hub.support import (
    V1,
    HubSettings,
    Running,
    event,
    next_message,
    ok,
    query,
    until_settled,
)

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
    assert tables == [(20,)]  # the 19 of the migrations and schema_version


async def test_an_unreachable_database_is_a_clear_error() -> None:
    url = "postgresql://hub:pw@127.0.0.1:1/hub"  # nothing listens on port 1
    with pytest.raises(StorageError, match=r"cannot connect .*hub:\*\*\*@127\.0\.0\.1:1/hub"):
        async with open_postgres(url, DatabaseSettings(connect_timeout_s=2), lambda _: None):
            pass


async def test_a_live_stream_neither_misses_nor_repeats_events_of_a_slow_transaction(
    hub: Running,
) -> None:
    """Events committed behind a transaction still running come once, by the stream."""
    import asyncpg

    pe = await hub.pe()
    before = [event(pe["id"], message=f"before {i}") for i in range(3)]
    await ok(hub.admin.post(f"{V1}/events", json={"events": before}))
    params = {"prediction_environment_id": pe["id"], "backlog": "10"}
    await until_settled(hub, params, [e["id"] for e in before[::-1]])
    slow = await asyncpg.connect(hub.settings.database.url)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.fetchval("SELECT pg_current_xact_id()")  # an id older than what follows
        during = [event(pe["id"], message=f"during {i}") for i in range(3)]
        await ok(hub.admin.post(f"{V1}/events", json={"events": during}))
        async with hub.admin.get(f"{V1}/events/stream", params=params) as stream:
            assert (await next_message(stream)).event == "comment"
            snapshot = await next_message(stream)
            shown = [e["id"] for e in snapshot.json()["items"]]
            assert shown == [e["id"] for e in before[::-1]]  # settled ones only, for now
            await tx.commit()  # the slow transaction ends: the others settle
            got = [(await next_message(stream, timeout=5)).json()["id"] for _ in during]
    finally:
        await slow.close()
    assert got == [e["id"] for e in during]


SEARCHED_TEXTS = [
    "Hello World hello",
    "Café crème: drift détectée ✓ 🚀",
    'gpu-worker-7 crashed (exit 137) {"node": "node-12", "ms": 0.25}',
    "Привет мир 日本語 a_b c.d e/f 1e5 0x1F v1.2.3",
    "x" * 3000 + " after the long word",  # too long to index: left out, no position taken
    " ".join(["a", "b", "a", "c"] * 100),  # a word seen more than 255 times
    " ".join(f"w{i}" for i in range(16_390)) + " z z z",  # positions beyond 16383
    "",
]


@pytest.mark.parametrize("text", SEARCHED_TEXTS, ids=range(len(SEARCHED_TEXTS)))
async def test_the_search_vector_the_hub_makes_is_what_to_tsvector_made_of_its_words(
    postgres_url: str, text: str
) -> None:
    """Rows stored with ``to_tsvector('simple', words)`` are found as the new ones are."""
    import asyncpg

    conn = await asyncpg.connect(postgres_url)
    try:
        joined = " ".join(search.words(text[: search.MAX_INDEXED_CHARS]))
        parsed = await conn.fetchval("SELECT to_tsvector('simple', $1)::text", joined)
        given = await conn.fetchval("SELECT $1::tsvector::text", search.document(text, ""))
        await ingest.prepare(conn)  # the binary form, as COPY sends it
        sent = await conn.fetchval("SELECT $1::tsvector::text", search.binary_document(text, ""))
        phrase = search.tsquery('"' + " ".join(search.words(text)[:2]) + '"*')
        if phrase is not None:
            found = await conn.fetchval(
                "SELECT to_tsvector('simple', $1) @@ $2::tsquery", joined, phrase
            )
            assert found, phrase
    finally:
        await conn.close()
    assert given == parsed
    assert sent == parsed


async def test_a_copied_batch_sent_again_is_stored_once_and_health_follows_the_last(
    postgres_url: str,
) -> None:
    """A batch large enough to be copied stores each id once, however often it comes."""
    size = ingest.COPY_FROM * 2
    statuses = ["failing", "passing", "informational"]
    first = [
        EventIn.model_validate(
            event("pe", deployment_id=f"d{i % 3}", status=statuses[i % 3], message=f"m{i}")
        )
        for i in range(size)
    ]
    more = [EventIn.model_validate(event("pe")) for _ in range(size)]
    async with open_postgres(postgres_url, DatabaseSettings(), lambda _: None) as store:
        assert await store.add_events(first + first[:5]) == size  # a repeat within the batch
        assert await store.add_events(first[10:] + more) == len(more)  # partly stored
        assert await store.add_events(first) == 0
        async with store.pool.acquire() as conn:
            stored = await conn.fetch("SELECT id FROM events ORDER BY seq")
            health = await conn.fetch(
                "SELECT deployment_id, status, message FROM health_sources ORDER BY deployment_id"
            )
    assert [row[0] for row in stored] == [e.id for e in first + more]
    last = {f"d{d}": max(i for i in range(size) if i % 3 == d) for d in range(2)}
    assert [tuple(row) for row in health] == [
        (dep, statuses[i % 3], f"m{i}") for dep, i in last.items()
    ]  # the last non-informational event of each deployment and source, by ingest order


async def test_overlapping_copied_batches_on_two_replicas_at_once_store_each_event_once(
    postgres_url: str,
) -> None:
    """Two stores (two replicas' pools) copying overlapping batches at the same moment.

    An agent's retry may reach another replica while the first is still storing: the
    copy that meets the other's ids either waits and falls back to the insert or loses a
    deadlock and runs again; either way every event is stored once and counted once.
    """
    events = [
        EventIn.model_validate(event("pe", deployment_id=f"d{i % 4}", message=f"m{i}"))
        for i in range(ingest.COPY_FROM * 8)
    ]
    quarter = len(events) // 4
    # Each batch has events of its own and events of the other; each goes to both stores.
    batches = [events[: 3 * quarter], events[quarter:]]
    settings = DatabaseSettings()
    async with (
        open_postgres(postgres_url, settings, lambda _: None) as a,
        open_postgres(postgres_url, settings, lambda _: None) as b,
    ):
        accepted = await asyncio.gather(
            *(store.add_events(batch) for batch in batches for store in (a, b))
        )
        async with a.pool.acquire() as conn:
            stored = await conn.fetch("SELECT id FROM events")
    assert sum(accepted) == len(events), accepted  # each new event counted by one store
    assert sorted(row[0] for row in stored) == sorted(e.id for e in events)
