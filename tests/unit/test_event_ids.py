"""Event ids (ULIDs) and the JSON shape of an event."""

from __future__ import annotations

import itertools
import random
import re
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pilothouse.foundation.domain.events import Event, UlidFactory, _encode, new_id
from pilothouse.foundation.domain.vocabulary import Source, Status

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ULID = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def decode(chars: str) -> int:
    value = 0
    for char in chars:
        value = value * 32 + CROCKFORD.index(char)
    return value


def test_ids_are_26_crockford_base32_characters() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(ULID.match(i) for i in ids), [i for i in ids if not ULID.match(i)][:3]
    assert not set("ILOU").intersection("".join(ids))


def test_time_prefix_encodes_the_millisecond() -> None:
    factory = UlidFactory()
    for ms in (0, 1, 1_700_000_000_123, 2**48 - 1):
        assert decode(factory.new(ms)[:10]) == ms
    before = datetime.now(UTC).timestamp() * 1000
    made = decode(new_id()[:10])
    after = datetime.now(UTC).timestamp() * 1000
    assert before - 1 <= made <= after + 1


def test_ids_in_one_millisecond_strictly_increase() -> None:
    factory = UlidFactory()
    ids = [factory.new(1_700_000_000_000) for _ in range(5000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert {i[:10] for i in ids} == {ids[0][:10]}
    randoms = [decode(i[10:]) for i in ids]
    assert randoms == list(range(randoms[0], randoms[0] + 5000))  # incremented by one


def test_many_ids_strictly_increase_and_are_unique() -> None:
    ids = [new_id() for _ in range(50_000)]
    assert all(a < b for a, b in itertools.pairwise(ids))


def test_ids_sort_by_time_across_factories() -> None:
    stamps = [5_000, 1_000, 3_000_000, 2_000, 1_700_000_000_000]
    ids = {ms: UlidFactory().new(ms) for ms in stamps}
    assert sorted(ids.values()) == [ids[ms] for ms in sorted(stamps)]


def test_random_part_differs_between_milliseconds() -> None:
    factory = UlidFactory()
    randoms = {factory.new(ms)[10:] for ms in range(1, 200)}
    assert len(randoms) == 199


def test_ids_keep_increasing_when_the_clock_goes_back() -> None:
    factory = UlidFactory()
    first = factory.new(2_000)
    second = factory.new(1_000)
    assert second > first


def test_factory_is_thread_safe() -> None:
    factory = UlidFactory()
    made: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        out.extend(factory.new(1_234) for _ in range(2000))

    threads = [threading.Thread(target=work, args=(out,)) for out in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in made for i in out]
    assert len(set(every)) == 8000
    assert all(a < b for out in made for a, b in itertools.pairwise(out))


def make_event(**kwargs: object) -> Event:
    values: dict[str, object] = {
        "type": "deployment.ready",
        "status": Status.PASSING,
        "message": "ready",
        "prediction_environment_id": "pe-1",
    }
    return Event(**(values | kwargs))  # type: ignore[arg-type]


def test_to_dict_has_exactly_the_design_fields() -> None:
    event = make_event(deployment_id="dep-1", data={"replicas": 2}, source=Source.MONITOR)
    assert event.to_dict() == {
        "id": event.id,
        "time": event.to_dict()["time"],
        "prediction_environment_id": "pe-1",
        "deployment_id": "dep-1",
        "source": "monitor",
        "type": "deployment.ready",
        "status": "passing",
        "message": "ready",
        "data": {"replicas": 2},
    }
    assert all(type(v) is str for k, v in event.to_dict().items() if k in {"source", "status"})


def test_to_dict_defaults() -> None:
    rendered = make_event().to_dict()
    assert rendered["deployment_id"] is None
    assert rendered["source"] == "agent"
    assert rendered["data"] == {}
    assert ULID.match(rendered["id"])


@pytest.mark.parametrize(
    "when",
    [
        datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
        None,
    ],
    ids=["micro", "whole-second", "now"],
)
def test_time_is_rfc3339_in_utc_with_z(when: datetime | None) -> None:
    event = make_event() if when is None else make_event(time=when)
    rendered = event.to_dict()["time"]
    assert RFC3339_UTC.match(rendered), rendered
    assert datetime.fromisoformat(rendered) == event.time


def test_time_in_another_zone_is_rendered_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    event = make_event(time=datetime(2024, 5, 6, 9, 8, 9, tzinfo=paris))
    assert event.to_dict()["time"] == "2024-05-06T07:08:09Z"


def test_each_event_gets_a_new_increasing_id() -> None:
    events = [make_event() for _ in range(100)]
    ids = [e.id for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 100


def test_ids_encode_time_then_randomness_digit_by_digit() -> None:
    """The encoding against the definition: 10 digits of the time, 16 of the random part."""
    rng = random.Random(7)
    cases = [(0, 0), (2**48 - 1, 2**80 - 1), (1_700_000_000_123, 1)]
    cases += [(rng.getrandbits(48), rng.getrandbits(80)) for _ in range(2000)]
    for ms, rand in cases:
        digits = "".join(CROCKFORD[ms >> 5 * i & 31] for i in reversed(range(10)))
        digits += "".join(CROCKFORD[rand >> 5 * i & 31] for i in reversed(range(16)))
        assert _encode(ms, rand) == digits, (ms, rand)
