"""Event export: CSV and JSON lines, the list endpoint's filters and order, streamed in chunks."""

from __future__ import annotations

import csv
import io
from typing import Any

import aiohttp
import orjson
import pytest

from pilothouse.hub.service import exporting
from tests.hub.support import V1, Running, answer, at, event, ok

pytestmark = pytest.mark.anyio

COLUMNS = [
    "id",
    "time",
    "prediction_environment_id",
    "deployment_id",
    "source",
    "type",
    "status",
    "message",
    "data",
]


async def _post(hub: Running, events: list[dict[str, Any]]) -> None:
    for start in range(0, len(events), 1000):
        body = {"events": events[start : start + 1000]}
        await ok(hub.admin.post(f"{V1}/events", json=body))


async def _listed(hub: Running, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query = params | {"limit": "9"}
    while True:
        page = await ok(hub.admin.get(f"{V1}/events", params=query))
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


async def _export(hub: Running, fmt: str, **params: str) -> tuple[aiohttp.ClientResponse, bytes]:
    async with hub.admin.get(f"{V1}/events/export", params=params | {"format": fmt}) as resp:
        body = await resp.read()
        assert resp.status == 200, body[:500]
        return resp, body


async def _export_chunks(hub: Running, fmt: str, **params: str) -> list[bytes]:
    """The export as the HTTP chunks the hub sent: one per chunk of events it read."""
    chunks: list[bytes] = []
    part = b""
    async with hub.admin.get(f"{V1}/events/export", params=params | {"format": fmt}) as resp:
        assert resp.status == 200, await resp.read()
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        async for data, end_of_chunk in resp.content.iter_chunks():
            part += data
            if end_of_chunk:
                chunks.append(part)
                part = b""
    assert part == b"", "the last chunk was cut"
    return chunks


def _chunk_sizes(chunks: list[bytes], fmt: str) -> list[int]:
    """How many events each chunk holds (the CSV header belongs to the first)."""
    if fmt == "jsonl":
        return [len(_from_jsonl(c)) for c in chunks]
    header = (",".join(COLUMNS) + "\n").encode()
    assert chunks[0].startswith(header)
    return [len(_from_csv(header + c.removeprefix(header))) for c in chunks]


def _assert_chunked_by(sizes: list[int], rows: int, total: int) -> None:
    """The export came in chunks of ``rows`` events: the tuning the test set is in effect."""
    assert sum(sizes) == total
    full, last = sizes[:-1], sizes[-1]
    assert full == [rows] * len(full) and 0 < last <= rows, (rows, sizes)


def _from_csv(body: bytes) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(body.decode(), newline=""))
    assert next(reader) == COLUMNS
    out = []
    for row in reader:
        item: dict[str, Any] = dict(zip(COLUMNS, row, strict=True))
        item["deployment_id"] = item["deployment_id"] or None
        item["data"] = orjson.loads(item["data"])
        out.append(item)
    return out


def _from_jsonl(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n") or not body
    return [orjson.loads(line) for line in body.splitlines()]


async def _events(hub: Running) -> tuple[str, str]:
    pe, other = await hub.pe("a"), await hub.pe("b")
    tricky = [
        'comma, "quotes" and\nnew lines\r\n',
        "unicode: drift détectée ✓ 🚀",
        "=cmd|' /C calc'!A0",
        "",
    ]
    events = [_tricky(i, pe["id"] if i % 3 else other["id"], tricky) for i in range(120)]
    await _post(hub, events)
    return pe["id"], other["id"]


def _tricky(i: int, pe_id: str, texts: list[str]) -> dict[str, Any]:
    return event(
        pe_id,
        time=at(i // 4 + 0.25 * (i % 2)),  # ties in time, some with microseconds
        deployment_id=None if i % 5 == 0 else f"d{i % 4},x" if i % 7 == 0 else f"d{i % 4}",
        status=["passing", "failing", "at_risk", "informational"][i % 4],
        type="deployment.ready" if i % 2 else "action.launch.failed",
        source="monitor" if i % 5 == 1 else "agent",
        message=f"event {i} {texts[i % len(texts)]}" + (" timeout" if i % 8 == 1 else ""),
        data={"i": i, "nested": {"list": [1, 2.5, None, "x,y"]}, "text": texts[i % 4]},
    )


FILTERS = [
    {},
    {"status": "failing"},
    {"deployment_id": "d1", "since": at(3).isoformat(), "until": at(20).isoformat()},
    {"q": "timeout"},
    {"source": "monitor", "type": "action.launch.failed"},
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize("filters", FILTERS, ids=lambda f: ",".join(f) or "all")
async def test_export_equals_the_list(
    hub: Running, fmt: str, filters: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporting, "CHUNK_ROWS", 7)  # many chunks, so every filter meets a cursor
    pe, _ = await _events(hub)
    for params in (filters, filters | {"prediction_environment_id": pe}):
        listed = await _listed(hub, **params)
        chunks = await _export_chunks(hub, fmt, **params)
        body = b"".join(chunks)
        exported = _from_csv(body) if fmt == "csv" else _from_jsonl(body)
        assert exported == listed, params
        assert listed or params.get("q"), "the filter should match something"
        if listed:
            _assert_chunked_by(_chunk_sizes(chunks, fmt), 7, len(listed))


async def test_a_big_export_is_streamed_in_chunks(
    hub: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporting, "CHUNK_ROWS", 100)
    pe = await hub.pe()
    events = [event(pe["id"], time=at(i // 3), data={"i": i}) for i in range(2_345)]
    await _post(hub, events)
    expected = [e["id"] for e in sorted(events, key=lambda e: (e["time"], e["id"]), reverse=True)]
    chunks = await _export_chunks(hub, "jsonl")
    assert [orjson.loads(line)["id"] for line in b"".join(chunks).splitlines()] == expected
    _assert_chunked_by(_chunk_sizes(chunks, "jsonl"), 100, len(expected))


async def test_export_headers(hub: Running) -> None:
    await _events(hub)
    resp, body = await _export(hub, "csv")
    assert resp.content_type == "text/csv" and resp.charset == "utf-8"
    disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="events-') and disposition.endswith('.csv"')
    assert body.startswith(b"id,time,prediction_environment_id,deployment_id,source,type,")
    resp, body = await _export(hub, "jsonl")
    assert resp.content_type == "application/x-ndjson"
    _, empty = await _export(hub, "csv", status="unknown")
    assert empty == (",".join(COLUMNS) + "\n").encode()
    _, nothing = await _export(hub, "jsonl", status="unknown")
    assert nothing == b""


async def test_bad_export_queries_are_refused(hub: Running) -> None:
    for params, field in [
        ({"format": "xml"}, "format"),
        ({"status": "red"}, "status"),
        ({"limit": "5"}, "limit"),
    ]:
        status, body = await answer(hub.admin.get(f"{V1}/events/export", params=params))
        assert status == 422 and body["fields"][0]["field"] == field


async def test_a_client_leaving_midway_harms_nothing(
    hub: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporting, "CHUNK_ROWS", 50)
    pe = await hub.pe()
    await _post(hub, [event(pe["id"], time=at(i), message="x" * 500) for i in range(3000)])
    for _ in range(3):
        async with (
            aiohttp.ClientSession(hub.url, headers=dict(hub.admin.headers)) as http,
            http.get(f"{V1}/events/export", params={"format": "jsonl"}) as resp,
        ):
            first = b""
            async for data, end_of_chunk in resp.content.iter_chunks():
                first += data
                if end_of_chunk:
                    break
            assert len(first.splitlines()) == 50  # it leaves with 59 chunks still to come
    listed = await ok(hub.admin.get(f"{V1}/events", params={"limit": "1"}))
    assert listed["items"]
