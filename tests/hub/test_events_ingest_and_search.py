"""Events: idempotent batches, every filter, full-text search, cursor pages newest first."""

from __future__ import annotations

from typing import Any

import pytest

from tests.hub.support import V1, Running, answer, at, event, ok, rows

pytestmark = pytest.mark.anyio


async def _post(hub: Running, events: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = await ok(hub.admin.post(f"{V1}/events", json={"events": events}))
    return result


async def _ids(hub: Running, **params: str) -> list[str]:
    page = await ok(hub.admin.get(f"{V1}/events", params=params))
    return [e["id"] for e in page["items"]]


async def test_a_retried_batch_never_duplicates(hub: Running) -> None:
    pe = await hub.pe()
    batch = [event(pe["id"], time=at(i)) for i in range(10)]
    assert await _post(hub, batch) == {"accepted": 10, "duplicates": 0}
    assert await _post(hub, batch) == {"accepted": 0, "duplicates": 10}
    more = [*batch[:3], event(pe["id"], time=at(99)), batch[0]]
    assert await _post(hub, more) == {"accepted": 1, "duplicates": 4}
    assert await rows(hub, "events") == 11


async def test_events_read_back_exactly_newest_first(hub: Running) -> None:
    pe = await hub.pe()
    posted = [
        event(pe["id"], time=at(i), deployment_id="d1", data={"i": i, "nested": {"a": [1]}})
        for i in range(5)
    ]
    await _post(hub, posted)
    page = await ok(hub.admin.get(f"{V1}/events"))
    assert page["items"] == [p | {"time": p["time"].replace("+00:00", "Z")} for p in posted[::-1]]


async def test_every_filter(hub: Running) -> None:
    pe, other = await hub.pe("a"), await hub.pe("b")
    evs = {
        "base": event(pe["id"], time=at(1), deployment_id="d1"),
        "other_pe": event(other["id"], time=at(2)),
        "failing": event(pe["id"], time=at(3), status="failing", deployment_id="d2"),
        "monitor": event(pe["id"], time=at(4), source="monitor", type="drift.detected"),
        "late": event(pe["id"], time=at(100)),
    }
    await _post(hub, list(evs.values()))
    id_of = {k: v["id"] for k, v in evs.items()}

    async def which(**params: str) -> set[str]:
        found = set(await _ids(hub, **params))
        return {k for k, v in id_of.items() if v in found}

    assert await which(prediction_environment_id=other["id"]) == {"other_pe"}
    assert await which(deployment_id="d1") == {"base"}
    assert await which(status="failing") == {"failing"}
    assert await which(type="drift.detected") == {"monitor"}
    assert await which(source="monitor") == {"monitor"}
    assert await which(since=at(3).isoformat()) == {"failing", "monitor", "late"}
    assert await which(until=at(3).isoformat()) == {"base", "other_pe"}
    assert await which(
        prediction_environment_id=pe["id"], status="passing", since=at(0).isoformat(),
        until=at(50).isoformat(),
    ) == {"base", "monitor"}  # fmt: skip


async def test_full_text_search_over_message_and_data(hub: Running) -> None:
    pe = await hub.pe()
    a = event(pe["id"], time=at(1), message="model server crashed with OOM")
    b = event(pe["id"], time=at(2), message="ready", data={"node": "gpu-worker-7"})
    c = event(pe["id"], time=at(3), message='odd "quotes" and AND OR NOT(')
    await _post(hub, [a, b, c])
    assert await _ids(hub, q="crashed") == [a["id"]]
    assert await _ids(hub, q="CRASHED oom") == [a["id"]]
    assert await _ids(hub, q="crashed ready") == []
    assert await _ids(hub, q="gpu-worker-7") == [b["id"]]
    assert await _ids(hub, q="cras*") == [a["id"]]
    assert await _ids(hub, q='"quotes" NOT(') == [c["id"]]  # no FTS syntax gets through
    assert await _ids(hub, q="*") == []


async def test_cursor_pages_cover_everything_once_in_order(hub: Running) -> None:
    pe = await hub.pe()
    same_time = [event(pe["id"], time=at(5)) for _ in range(4)]  # ties broken by id
    others = [event(pe["id"], time=at(i)) for i in range(10)]
    await _post(hub, same_time + others)
    expected = [e["id"] for e in sorted(same_time + others, key=lambda e: (e["time"], e["id"]))]
    seen: list[str] = []
    params = {"limit": "3"}
    while True:
        page = await ok(hub.admin.get(f"{V1}/events", params=params))
        seen += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        params = {"limit": "3", "cursor": page["next_cursor"]}
    assert seen == expected[::-1]


async def test_batch_refused_whole_for_an_unknown_pe(hub: Running) -> None:
    pe = await hub.pe()
    batch = [event(pe["id"]), event("pe-nope")]
    status, body = await answer(hub.admin.post(f"{V1}/events", json={"events": batch}))
    assert status == 404  # as an unknown PE is everywhere else (POST /deployments)
    assert body["fields"][0]["field"] == "events.1.prediction_environment_id"
    assert await rows(hub, "events") == 0


async def test_invalid_event_names_the_field(hub: Running) -> None:
    pe = await hub.pe()
    bad = event(pe["id"], status="green")
    status, body = await answer(
        hub.admin.post(f"{V1}/events", json={"events": [event(pe["id"]), bad]})
    )
    assert status == 422 and body["fields"][0]["field"] == "events.1.status"
    status, body = await answer(hub.admin.get(f"{V1}/events", params={"limit": "5000"}))
    assert status == 422 and body["fields"][0]["field"] == "limit"
    status, body = await answer(hub.admin.get(f"{V1}/events", params={"cursor": "!!"}))
    assert status == 422 and body["fields"][0]["field"] == "cursor"
    assert await rows(hub, "events") == 0


@pytest.mark.backends("sqlite")  # the two plans are SQLite's (FTS5 by rowid or by index walk)
@pytest.mark.parametrize("few_matches", [1, 10_000])
async def test_search_plans_agree_on_order_and_pages(
    hub: Running, monkeypatch: pytest.MonkeyPatch, few_matches: int
) -> None:
    from pilothouse.hub.store.sqlite import events as event_sql

    monkeypatch.setattr(event_sql, "_FEW_MATCHES", few_matches)  # walk the index, or fetch by rowid
    # The plan each search chose, so the test fails if the tuning above stops applying (a
    # moved or re-exported module) instead of silently testing one plan twice.
    plans: list[str] = []
    choose = event_sql._matching

    def recording(conn: Any, match: str) -> str:
        clause = choose(conn, match)
        plans.append(clause.split()[0])
        return clause

    monkeypatch.setattr(event_sql, "_matching", recording)
    pe = await hub.pe()
    posted = [
        event(pe["id"], time=at(i % 7), message="disk full" if i % 3 else "disk ok")
        for i in range(30)
    ]
    await _post(hub, posted)
    expected = [
        e["id"]
        for e in sorted(posted, key=lambda e: (e["time"], e["id"]), reverse=True)
        if e["message"] == "disk full"
    ]
    seen: list[str] = []
    params = {"q": "full", "limit": "4"}
    while True:
        page = await ok(hub.admin.get(f"{V1}/events", params=params))
        seen += [e["id"] for e in page["items"]]
        if page["next_cursor"] is None:
            break
        params |= {"cursor": page["next_cursor"]}
    assert seen == expected
    # 20 events match: fewer than 10 000 (fetch them by rowid), not fewer than 1 (walk the index).
    assert plans and set(plans) == {"seq" if few_matches > 20 else "+seq"}, plans
