"""Adding statistics windows together: what the hourly rollup stores.

Every figure of a :class:`~pilothouse.foundation.domain.monitoring.StatsWindow`
is a sum, so windows of one deployment and package add into one window that
answers every later question (PSI, quantiles, error rate) exactly as the
windows it replaced would have together. The store calls :func:`merge_bodies`
while it rolls minute windows into hourly ones (a pure function, run on the
writer's thread).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

from pilothouse.foundation.domain.monitoring import Aggregate, StatsWindow, merge
from pilothouse.hub.store import mapping

HOUR_US = 3_600_000_000
"""One rollup window (µs)."""


def hour_of(start_us: int) -> int:
    """The start (µs) of the hour ``start_us`` falls in."""
    return start_us - start_us % HOUR_US


def by_hour(rows: Iterable[mapping.Row]) -> dict[tuple[str, str, int], list[str]]:
    """Window bodies to add up, by deployment, package and hour, in the order of ``rows``.

    A row: a window's ``id, deployment_id, package_id, start_at, body``.
    """
    groups: dict[tuple[str, str, int], list[str]] = defaultdict(list)
    for row in rows:
        groups[(row[1], row[2], hour_of(row[3]))].append(row[4])
    return groups


def combined(windows: Sequence[StatsWindow], window_id: str) -> StatsWindow:
    """The windows (one deployment and package) added into one window named ``window_id``."""
    aggregates = merge(windows)
    if len(aggregates) != 1:
        raise ValueError("only windows of one deployment and package add into one")
    return as_window(aggregates[0], window_id)


def as_window(agg: Aggregate, window_id: str) -> StatsWindow:
    """An aggregate written as one window (its span: the first start to the last end)."""
    return StatsWindow(
        id=window_id,
        deployment_id=agg.deployment_id,
        package_id=agg.package_id,
        start=agg.start,
        end=agg.end,
        requests=agg.requests,
        rows=agg.rows,
        client_errors=agg.client_errors,
        server_errors=agg.server_errors,
        latency=agg.latency,
        features=agg.features,
        prediction=agg.prediction,
        challengers=list(agg.challengers.values()),
    )


def merge_bodies(bodies: list[str]) -> str:
    """Window bodies (JSON) added into one body (the first's id stays)."""
    windows = [StatsWindow.model_validate_json(body) for body in bodies]
    return combined(windows, windows[0].id).model_dump_json()
