"""Retry delays: exponential growth, an upper bound, equal jitter."""

from __future__ import annotations

import itertools
import random

import pytest

from pilothouse.foundation.aio.backoff import Backoff


def _ceiling(initial: float, maximum: float, factor: float, attempt: int) -> float:
    return min(maximum, initial * factor**attempt)


@pytest.mark.parametrize("seed", range(5))
def test_each_delay_lies_in_the_upper_half_of_its_ceiling(seed: int) -> None:
    backoff = Backoff(0.1, 10.0, rng=random.Random(seed))
    for attempt in range(20):
        ceiling = _ceiling(0.1, 10.0, 2.0, attempt)
        for _ in range(50):
            assert ceiling / 2 <= backoff.delay(attempt) <= ceiling


def test_delays_grow_until_the_maximum() -> None:
    backoff = Backoff(1.0, 1000.0, rng=random.Random(1))
    # Each attempt's window [c/2, c] starts where the previous attempt's ends.
    lows = [min(backoff.delay(a) for _ in range(200)) for a in range(8)]
    highs = [max(backoff.delay(a) for _ in range(200)) for a in range(8)]
    assert all(later > earlier for earlier, later in itertools.pairwise(lows))
    assert all(later > earlier for earlier, later in itertools.pairwise(highs))
    assert highs[0] <= 1.0
    assert lows[7] >= 2.0**7 / 2


@pytest.mark.parametrize("attempt", [10, 20, 63, 64, 65, 1000, 10**6])
def test_delays_are_bounded_by_the_maximum(attempt: int) -> None:
    backoff = Backoff(0.5, 30.0, rng=random.Random(2))
    for _ in range(100):
        assert 15.0 <= backoff.delay(attempt) <= 30.0


def test_factor_sets_the_growth_rate() -> None:
    backoff = Backoff(1.0, 10**9, factor=3.0, rng=random.Random(3))
    for attempt in range(6):
        assert 3.0**attempt / 2 <= backoff.delay(attempt) <= 3.0**attempt


def test_maximum_below_initial_caps_the_first_delay() -> None:
    backoff = Backoff(5.0, 1.0, rng=random.Random(4))
    assert all(0.5 <= backoff.delay(a) <= 1.0 for a in range(10))


@pytest.mark.parametrize("initial", [0.0, -1.0])
def test_zero_initial_gives_no_delay(initial: float) -> None:
    backoff = Backoff(initial, 60.0)
    assert [backoff.delay(a) for a in range(10)] == [0.0] * 10


def test_same_seed_gives_the_same_delays() -> None:
    first = Backoff(0.2, 20.0, rng=random.Random(42))
    second = Backoff(0.2, 20.0, rng=random.Random(42))
    assert [first.delay(a) for a in range(30)] == [second.delay(a) for a in range(30)]


def test_different_seeds_give_different_delays() -> None:
    first = Backoff(0.2, 20.0, rng=random.Random(1))
    second = Backoff(0.2, 20.0, rng=random.Random(2))
    assert [first.delay(a) for a in range(30)] != [second.delay(a) for a in range(30)]


def test_jitter_spreads_delays_of_one_attempt() -> None:
    backoff = Backoff(1.0, 64.0, rng=random.Random(5))
    delays = {backoff.delay(4) for _ in range(100)}
    assert len(delays) > 50  # not lock-step
    assert min(delays) < 8 + 8 / 4 and max(delays) > 16 - 8 / 4  # covers most of [8, 16]


def test_rng_is_not_part_of_equality() -> None:
    assert Backoff(1.0, 2.0, rng=random.Random(1)) == Backoff(1.0, 2.0, rng=random.Random(2))
