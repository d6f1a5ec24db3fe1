"""Who used the machine's CPU during a benchmark phase: the whole machine and named process groups.

Read from ``/proc`` (Linux): ``/proc/stat`` for the machine's busy time, each
process's ``utime + stime`` for the groups (a group is a set of pids, e.g. a
PostgreSQL postmaster and its backends, found again at the end of the phase
so that backends started meanwhile count; one that exited meanwhile is lost,
which only undercounts). The bench's own process is the load generator.

It answers the question behind a scaling ratio on a small machine: at ``c``
CPU seconds per event (every process of the work together), ``cores`` cores
store at most ``cores / c`` events/s, however many replicas share them; a run
near that figure is bound by the machine, not by the code's concurrency.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

TICKS = os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot; idle and iowait are not busy."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def process_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) of one process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def children(parent: int) -> list[int]:
    """The pids whose parent is ``parent``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            found.append(int(entry))
    return found


def with_children(pid: int) -> Callable[[], Iterable[int]]:
    """A group: ``pid`` and its children as they are when asked."""
    return lambda: [pid, *children(pid)]


@dataclass
class Window:
    """CPU use between :meth:`start` and :meth:`stop`."""

    groups: Mapping[str, Callable[[], Iterable[int]]]
    """Named process groups, each a function giving its pids now."""
    figures: dict[str, float] = field(default_factory=dict)
    """Set by :meth:`stop`."""
    _machine: tuple[int, int] = field(default=(0, 0), init=False)
    _began: float = field(default=0.0, init=False)
    _pids: dict[str, set[int]] = field(default_factory=dict, init=False)
    _before: dict[int, float] = field(default_factory=dict, init=False)

    def start(self) -> None:
        """Take the first readings."""
        self._machine = machine_ticks()
        self._began = time.monotonic()
        self._pids = {name: set(pids()) for name, pids in self.groups.items()}
        self._before = {pid: process_seconds(pid) or 0.0 for g in self._pids.values() for pid in g}

    def stop(self, events: int) -> dict[str, float]:
        """Busy cores: the machine's, and the groups' together; each group's CPU µs per event.

        ``busy_cores`` counts whatever else runs on the machine too; ``parts_cores``
        only the groups (the benchmark's own work), so it holds on a shared machine.
        """
        busy, total = machine_ticks()
        wall = max(1e-9, time.monotonic() - self._began)
        busy_cores = (busy - self._machine[0]) / max(1, total - self._machine[1])
        self.figures = {"busy_cores": round(busy_cores * (os.cpu_count() or 1), 2)}
        parts = 0.0
        for name, pids in self.groups.items():
            used = 0.0
            for pid in self._pids[name] | set(pids()):
                after = process_seconds(pid)
                if after is not None:  # one that exited meanwhile is not counted at all
                    used += after - self._before.get(pid, 0.0)
            self.figures[f"{name}_us_per_event"] = round(used / max(1, events) * 1e6, 1)
            parts += used
        self.figures["parts_cores"] = round(parts / wall, 2)
        return self.figures
