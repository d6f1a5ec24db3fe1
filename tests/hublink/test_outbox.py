"""The durable outbox keeps events in order across restarts, and stays within its bound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from pilothouse.agent.hublink.outbox import Outbox
from pilothouse.foundation.domain.events import Event
from pilothouse.foundation.domain.vocabulary import Status


def _events(n: int, start: int = 0) -> list[Event]:
    return [
        Event(
            type="test.event",
            status=Status.INFORMATIONAL,
            message=f"event {i}",
            prediction_environment_id="pe",
        )
        for i in range(start, start + n)
    ]


@pytest.mark.anyio
async def test_events_come_out_in_order_and_ack_removes_them(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.db", 10 * 1024 * 1024)
    await outbox.open()
    await outbox.write(_events(5))
    await outbox.write(_events(5, start=5))
    first = await outbox.peek(3)
    assert first is not None
    assert [orjson.loads(b)["message"] for b in first.bodies] == ["event 0", "event 1", "event 2"]
    await outbox.ack(first)
    rest = await outbox.peek(100)
    assert rest is not None
    assert [orjson.loads(b)["message"] for b in rest.bodies] == [f"event {i}" for i in range(3, 10)]
    await outbox.ack(rest)
    assert await outbox.peek(100) is None
    assert outbox.size_bytes == 0
    await outbox.close()


@pytest.mark.anyio
async def test_unacknowledged_events_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, 10 * 1024 * 1024)
    await outbox.open()
    events = _events(20)
    await outbox.write(events)
    pending = await outbox.peek(5)
    assert pending is not None
    await outbox.ack(pending)
    await outbox.close()

    reopened = Outbox(path, 10 * 1024 * 1024)
    await reopened.open()
    assert reopened.appended.is_set()
    left = await reopened.peek(100)
    assert left is not None
    assert [orjson.loads(b)["id"] for b in left.bodies] == [e.id for e in events[5:]]
    assert reopened.size_bytes == sum(len(b) for b in left.bodies)
    await reopened.close()


@pytest.mark.anyio
async def test_bound_drops_oldest_and_reports_pressure(tmp_path: Path) -> None:
    reports: list[tuple[str, dict[str, Any]]] = []
    outbox = Outbox(tmp_path / "o.db", 1024 * 1024, on_pressure=lambda t, d: reports.append((t, d)))
    await outbox.open()
    batch = 1000
    written = 0
    while outbox.dropped == 0:
        await outbox.write(_events(batch, start=written))
        written += batch
    assert outbox.size_bytes <= 1024 * 1024
    kinds = [t for t, _ in reports]
    assert "agent.outbox_near_full" in kinds
    assert "agent.outbox_overflow" in kinds
    oldest = await outbox.peek(1)
    assert oldest is not None
    # The oldest events went first: what remains is the newest, still in order.
    assert orjson.loads(oldest.bodies[0])["message"] != "event 0"
    await outbox.close()
