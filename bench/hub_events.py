"""Benchmark: the hub's event ingest and event queries (issue #3).

Phases, against a real hub process (``pilothouse hub run``) over HTTP on 127.0.0.1:

1. **ingest, empty store** — ``--ingest`` events POSTed by agents in batches of
   500 (``--senders`` requests in flight), each agent with its own PE's token;
   bodies are serialized before the clock starts, so the figure is the hub's.
2. **bulk load** — the hub is stopped and ``--stored`` events are written
   through the store directly (``SqliteStore.add_events``, 20,000 a transaction:
   the same code path as ingest, without HTTP), spread over 30 days.
3. **ingest on top** — the hub is started again on that database and phase 1
   is repeated: ingest must not degrade with a million stored events.
4. **queries** — ``GET /events`` latency, one request at a time: a PE + status +
   one-day time range filter, then a full-text ``q`` search (a word in ~1 % of
   the events) restricted to the PE.

As a floor, the same batches are also written through the store directly (no
HTTP, no JSON parsing) in phase 2: the HTTP figure can be compared with it.

Targets: ``ingest_events_per_s`` >= 20,000; ``list_filtered_p99_ms`` <= 50.
The last line of output is one JSON object with the figures. More phases (the
agent side) plug in as further ``async def`` functions taking a :class:`Bench`
and returning a dict merged into that line; :func:`action_to_plugin` is one: an
agent (test plugin, in this process) follows the hub, and ``--actions``
``replace_model`` actions are timed from the POST to the plugin call.
Target: ``action_to_plugin_p99_ms`` <= 50.

``targets_met`` is true only when every target was measured and met; the JSON
line also lists ``targets_missed`` and ``targets_skipped`` (a target whose
phase was turned off by a flag is skipped, never counted as met).

Issue #16 adds the hub on PostgreSQL, one replica and two
(:mod:`bench.hub_postgres`, ``--postgres 0`` skips it): ingest, filtered list
and search at ``--stored`` events, export, action → plugin across replicas, and
failover (SIGKILL of an agent's replica). Targets: ``pg1_ingest_ratio_to_sqlite``
(one replica against this run's SQLite ingest into an empty store) >= 0.5,
``pg2_ingest_ratio_to_pg1`` >= 1.3, ``pg_list_filtered_p99_ms`` <= 50,
``pg_cross_replica_action_p99_ms`` <= 50, ``failover_s`` <= 5.

Issue #4 adds two phases:

5. **export** — ``GET /events/export`` of the ``--stored`` bulk-loaded events
   (filtered by ``until``: exactly those), as CSV and as JSON lines, read by a
   client that counts the lines; meanwhile the hub process's memory is sampled
   from ``/proc/<pid>/status`` every 20 ms (``VmRSS``; ``VmHWM`` is printed too).
   Targets: ``export_csv_events_per_s`` and ``export_jsonl_events_per_s`` >=
   200,000; ``export_rss_growth_mb`` (peak ``VmRSS`` during the exports minus
   ``VmRSS`` before them) <= 50.
6. **purge** — the hub is stopped, ``--purge`` events 120 to 150 days old are
   written through the store, and the hub is started again (periodic purge
   far off). ``PUT /settings/retention {"days": 90}`` starts the purge of all of
   them; while it runs, ``GET /events`` (the filtered query of phase 4) is
   timed one request after another. Target: ``list_p99_during_purge_ms`` <= 100.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import signal
import socket
import statistics
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

from pilothouse.agent.plugin import ActionResult
from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.events import UlidFactory
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.hub.api.schemas import EventIn
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.backends import open_store

if TYPE_CHECKING:
    from bench import cpu_share
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings

ROOT = str(Path(__file__).resolve().parent.parent)
ADMIN = "bench-admin-token"
V1 = "/api/v1"
BATCH = 500
PES = 10
DEPLOYMENTS_PER_PE = 20
DAYS = 30
WORDS = (
    "launch", "replace", "stop", "relaunch", "ready", "errored", "serving", "request", "latency",
    "memory", "cpu", "gpu", "node", "replica", "model", "package", "rollout", "probe", "health",
    "drift", "feature", "score", "batch", "queue", "worker",
)  # fmt: skip
RARE = "oomkilled"  # in ~1 % of events: the search term
STATUSES = ("passing", "passing", "informational", "informational", "at_risk", "failing")
TYPES = (
    "deployment.ready",
    "deployment.health_changed",
    "action.launch.succeeded",
    "drift.checked",
)


@dataclass
class Bench:
    """What every phase may use: the state directory, the hub's URL, PEs and tokens."""

    state_dir: Path
    url: str = ""
    pes: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)
    deployments: dict[str, list[str]] = field(default_factory=dict)
    ids: UlidFactory = field(default_factory=UlidFactory)
    start: datetime = field(default_factory=lambda: datetime.now(UTC) - timedelta(days=DAYS))
    hub_pid: int = 0
    database_url: str | None = None
    """None: SQLite in ``state_dir``; else the PostgreSQL database every hub process uses."""


def make_event(bench: Bench, pe_id: str, at: datetime, rng: random.Random) -> dict[str, Any]:
    """A realistic agent event (~350 bytes of JSON)."""
    words = rng.sample(WORDS, 6)
    if rng.random() < 0.01:
        words.append(RARE)
    dep = rng.choice(bench.deployments[pe_id])  # real ones: an agent token may name no other
    return {
        "id": bench.ids.new(int(at.timestamp() * 1000)),
        "time": at.isoformat().replace("+00:00", "Z"),
        "prediction_environment_id": pe_id,
        "deployment_id": dep,
        "source": "agent",
        "type": rng.choice(TYPES),
        "status": rng.choice(STATUSES),
        "message": f"{dep}: " + " ".join(words),
        "data": {
            "attempt": rng.randrange(4),
            "node": f"node-{rng.randrange(64)}",
            "ms": rng.random(),
        },
    }


# --- the hub process -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def hub_process(bench: Bench, env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """Run ``pilothouse hub run`` on a free port until the block ends (SIGTERM)."""
    port = free_port()
    database = ["--database-url", bench.database_url] if bench.database_url else []
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "hub", "run", "--port", str(port),
        "--state-dir", str(bench.state_dir), "--admin-token", ADMIN, "--log-level", "WARNING",
        *database, env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url)
        bench.url = url
        bench.hub_pid = proc.pid
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
        if code != 0:
            raise RuntimeError(f"hub exited with {code}")


async def wait_ready(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise RuntimeError("hub did not become ready")


async def register(bench: Bench) -> None:
    """Create the PEs, one agent token each, a package and the PEs' deployments."""
    async with aiohttp.ClientSession(bench.url, headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        headers = {"Content-Type": "application/gzip"}
        archive = package_archive("events")  # the latency phase uploads versions 1 and 2
        async with s.post(f"{V1}/model-packages", data=archive, headers=headers) as r:
            package_id = (await r.json())["id"]
        for i in range(PES):
            async with s.post(
                f"{V1}/prediction-environments", json={"name": f"pe{i}", "platform": "test"}
            ) as r:
                pe_id = (await r.json())["id"]
            async with s.post(f"{V1}/prediction-environments/{pe_id}/agent-tokens") as r:
                bench.tokens[pe_id] = (await r.json())["token"]
            bench.pes.append(pe_id)
            bench.deployments[pe_id] = []
            for d in range(DEPLOYMENTS_PER_PE):
                body = {"name": f"dep{d}", "prediction_environment_id": pe_id}
                async with s.post(
                    f"{V1}/deployments", json=body | {"model_package_id": package_id}
                ) as r:
                    bench.deployments[pe_id].append((await r.json())["id"])


# --- phases --------------------------------------------------------------------


async def ingest_over_http(
    bench: Bench,
    total: int,
    senders: int,
    seed: int,
    urls: list[str] | None = None,
    cpu: cpu_share.Window | None = None,
) -> float:
    """POST ``total`` events in batches of 500; return events per second.

    ``urls``: hub replicas to spread the senders over (default: ``bench.url``);
    ``cpu``: measured over the sending only (not the bodies' making).
    """
    rng = random.Random(seed)
    now = datetime.now(UTC)
    bodies: list[tuple[str, bytes]] = []
    for b in range(total // BATCH):
        pe_id = bench.pes[b % len(bench.pes)]
        batch = [
            make_event(bench, pe_id, now + timedelta(microseconds=b * BATCH + i), rng)
            for i in range(BATCH)
        ]
        bodies.append((pe_id, orjson.dumps({"events": batch})))
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(
                aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=senders))
            )
            for url in urls or [bench.url]
        ]
        if cpu is not None:
            cpu.start()
        began = time.perf_counter()
        accepted = sum(
            await asyncio.gather(
                *(sender(sessions[i % len(sessions)], bench, queue) for i in range(senders))
            )
        )
        elapsed = time.perf_counter() - began
        if cpu is not None:
            cpu.stop(accepted)
    assert accepted == len(bodies) * BATCH, accepted
    return accepted / elapsed


async def sender(
    http: aiohttp.ClientSession, bench: Bench, queue: asyncio.Queue[tuple[str, bytes]]
) -> int:
    accepted = 0
    while not queue.empty():
        pe_id, body = queue.get_nowait()
        headers = {
            "Authorization": f"Bearer {bench.tokens[pe_id]}",
            "Content-Type": "application/json",
        }
        async with http.post(f"{V1}/events", data=body, headers=headers) as resp:
            if resp.status != 200:
                raise RuntimeError(f"ingest answered {resp.status}: {await resp.text()}")
            accepted += (await resp.json())["accepted"]
    return accepted


async def bulk_load(bench: Bench, total: int, seed: int, start: datetime | None = None) -> float:
    """Write ``total`` events through the store directly, 20,000 a transaction."""
    start = start or bench.start
    rng = random.Random(seed)
    span = timedelta(days=DAYS).total_seconds()
    settings = HubSettings.load(
        None, {"state_dir": bench.state_dir, "database": {"url": bench.database_url}}
    )
    step = 20_000
    written, spent = 0, 0.0
    async with open_store(settings, lambda _: None, lambda: None) as store:
        for done in range(0, total, step):
            count = min(step, total - done)
            pes = [rng.choice(bench.pes) for _ in range(count)]
            times = [start + timedelta(seconds=span * (done + i) / total) for i in range(count)]
            batch = [
                as_model(make_event(bench, pe, at, rng)) for pe, at in zip(pes, times, strict=True)
            ]
            began = time.perf_counter()
            written += await store.add_events(batch)
            spent += time.perf_counter() - began
    assert written == total, written
    return total / spent


def as_model(event: dict[str, Any]) -> EventIn:
    """The event as the store takes it, built without validation (it is valid by making)."""
    return EventIn.model_construct(
        **event
        | {
            "time": datetime.fromisoformat(event["time"]),
            "source": Source(event["source"]),
            "status": Status(event["status"]),
        }
    )


async def latencies(
    bench: Bench, requests: int, params: Callable[[random.Random], dict[str, str]]
) -> list[float]:
    """Milliseconds per ``GET /events``, one request at a time."""
    rng = random.Random(7)
    out: list[float] = []
    async with aiohttp.ClientSession(
        bench.url, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as http:
        for i in range(requests + 5):
            query = params(rng)
            began = time.perf_counter()
            async with http.get(f"{V1}/events", params=query) as resp:
                body = await resp.read()
                assert resp.status == 200, body[:500]
            if i >= 5:  # warm-up excluded
                out.append((time.perf_counter() - began) * 1000)
    return out


def filtered(bench: Bench) -> Callable[[random.Random], dict[str, str]]:
    def params(rng: random.Random) -> dict[str, str]:
        day = bench.start + timedelta(days=rng.uniform(0, DAYS - 1))
        return {
            "prediction_environment_id": rng.choice(bench.pes),
            "status": "failing",
            "since": day.isoformat(),
            "until": (day + timedelta(days=1)).isoformat(),
        }

    return params


def search(bench: Bench) -> Callable[[random.Random], dict[str, str]]:
    def params(rng: random.Random) -> dict[str, str]:
        return {"q": RARE, "prediction_environment_id": rng.choice(bench.pes)}

    return params


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


async def main(
    args: argparse.Namespace, extra: list[Callable[[Bench], Awaitable[dict[str, Any]]]]
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp) / "hub")
        async with hub_process(bench):
            await register(bench)
            empty = await ingest_over_http(bench, args.ingest, args.senders, seed=1)
        say(
            "ingest", f"{args.ingest:,} events over HTTP into an empty store: {empty:,.0f} events/s"
        )
        floor = await bulk_load(bench, args.stored, seed=2)
        say("load", f"{args.stored:,} events through the store (no HTTP): {floor:,.0f} events/s")
        async with hub_process(bench):
            full = await ingest_over_http(bench, args.ingest, args.senders, seed=3)
            say(
                "ingest",
                f"{args.ingest:,} events over HTTP on {args.stored:,}: {full:,.0f} events/s",
            )
            flt = await latencies(bench, args.queries, filtered(bench))
            say("filtered", f"PE + status + 1-day range: {spread(flt)}")
            srch = await latencies(bench, args.queries, search(bench))
            say("search", f"PE + q (a word in ~1 % of events): {spread(srch)}")
            figures: dict[str, Any] = {}
            for phase in extra:
                figures |= await phase(bench)
            if args.export:
                figures |= await export_phase(bench, args.stored)
        if args.purge:
            figures |= await purge_phase(bench, args.purge)
        size = dir_mb(bench.state_dir)
        if args.postgres:
            figures |= await postgres_phases(Path(tmp), args, empty)
    total = args.stored + 2 * args.ingest
    say("state", f"{size:,.0f} MB on disk for {total:,} events (after the purge phase)")
    ingest = min(empty, full)
    measured = {
        "ingest_events_per_s": round(ingest),
        "ingest_empty_events_per_s": round(empty),
        "ingest_at_1m_events_per_s": round(full),
        "store_floor_events_per_s": round(floor),
        "stored_events": total,
        "list_filtered_p50_ms": round(pct(flt, 50), 2),
        "list_filtered_p99_ms": round(pct(flt, 99), 2),
        "list_search_p50_ms": round(pct(srch, 50), 2),
        "list_search_p99_ms": round(pct(srch, 99), 2),
        "state_mb": round(size),
        **figures,
    }
    return measured | verdict(measured)


TARGETS: tuple[tuple[str, str, float], ...] = (
    ("ingest_events_per_s", ">=", 20_000),
    ("list_filtered_p99_ms", "<=", 50),
    ("action_to_plugin_p99_ms", "<=", 50),
    ("export_csv_events_per_s", ">=", 200_000),
    ("export_jsonl_events_per_s", ">=", 200_000),
    ("export_rss_growth_mb", "<=", 50),
    ("list_p99_during_purge_ms", "<=", 100),
    ("pg1_ingest_ratio_to_sqlite", ">=", 0.5),
    ("pg2_ingest_ratio_to_pg1", ">=", 1.3),
    ("pg_list_filtered_p99_ms", "<=", 50),
    ("pg_cross_replica_action_p99_ms", "<=", 50),
    ("failover_s", "<=", 5),
)
"""Each target: the figure, how it compares, the bound."""


def verdict(figures: dict[str, Any]) -> dict[str, Any]:
    """Which targets were met, missed, or not measured (a skipped phase).

    A target whose phase did not run is listed as skipped and keeps
    ``targets_met`` false: only what was measured can be met.
    """
    missed, skipped = [], []
    for name, op, bound in TARGETS:
        value = figures.get(name)
        if value is None:
            skipped.append(name)
        elif not (value >= bound if op == ">=" else value <= bound):
            missed.append(name)
    for name in skipped:
        say("target", f"{name}: not measured (its phase was skipped)")
    for name in missed:
        say("target", f"{name} = {figures[name]}: missed")
    return {
        "targets_met": not missed and not skipped,
        "targets_missed": missed,
        "targets_skipped": skipped,
    }


# --- export: throughput and the hub's memory ------------------------------------


def memory_kb(pid: int) -> tuple[int, int]:
    """``VmRSS`` and ``VmHWM`` of a process, in KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


async def sample_rss(pid: int, stop: asyncio.Event, samples: list[int]) -> None:
    """Append the process's ``VmRSS`` (KiB) every 20 ms until ``stop``."""
    while not stop.is_set():
        samples.append(memory_kb(pid)[0])
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.02)


async def export_once(bench: Bench, fmt: str, until: datetime) -> tuple[int, int, float]:
    """Export every event before ``until``; return (events, bytes, seconds)."""
    params = {"format": fmt, "until": until.isoformat()}
    lines = size = 0
    async with aiohttp.ClientSession(bench.url, headers={"Authorization": f"Bearer {ADMIN}"}) as s:
        began = time.perf_counter()
        async with s.get(f"{V1}/events/export", params=params) as resp:
            assert resp.status == 200, await resp.text()
            async for chunk in resp.content.iter_any():
                lines += chunk.count(b"\n")
                size += len(chunk)
        took = time.perf_counter() - began
    return lines - (1 if fmt == "csv" else 0), size, took


async def export_phase(bench: Bench, expected: int) -> dict[str, Any]:
    """Export the bulk-loaded events as CSV and JSON lines, sampling the hub's memory."""
    until = bench.start + timedelta(days=DAYS)
    before, hwm_before = memory_kb(bench.hub_pid)
    samples: list[int] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(bench.hub_pid, stop, samples), name="rss sampler")
    rates = {}
    try:
        for fmt in ("csv", "jsonl"):
            events, size, took = await export_once(bench, fmt, until)
            assert events == expected, (fmt, events, expected)
            rates[fmt] = events / took
            say("export", f"{events:,} events as {fmt}: {size / 1e6:,.0f} MB in {took:.2f} s, "
                f"{rates[fmt]:,.0f} events/s, {size / 1e6 / took:,.0f} MB/s")  # fmt: skip
    finally:
        stop.set()
        await sampler
    after, hwm_after = memory_kb(bench.hub_pid)
    growth = (max(samples, default=before) - before) / 1024
    say("memory", f"hub VmRSS {before / 1024:,.0f} MB before, peak {max(samples) / 1024:,.0f} MB "
        f"(+{growth:,.1f} MB), {after / 1024:,.0f} MB after; VmHWM {hwm_before / 1024:,.0f} -> "
        f"{hwm_after / 1024:,.0f} MB")  # fmt: skip
    return {
        "export_csv_events_per_s": round(rates["csv"]),
        "export_jsonl_events_per_s": round(rates["jsonl"]),
        "export_rss_growth_mb": round(growth, 1),
    }


# --- purge: list latency while a million old events go -------------------------------


async def purge_phase(bench: Bench, count: int) -> dict[str, Any]:
    """Store ``count`` events 120-150 days old, then time ``GET /events`` while they are purged."""
    old_start = datetime.now(UTC) - timedelta(days=120 + DAYS)
    rate = await bulk_load(bench, count, seed=4, start=old_start)
    say("load", f"{count:,} events 120-150 days old through the store: {rate:,.0f} events/s")
    quiet = {"PILOTHOUSE_HUB_RETENTION__PURGE_INTERVAL_S": "86400"}
    async with hub_process(bench, env=quiet):
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with aiohttp.ClientSession(bench.url, headers=headers) as admin:
            stop = asyncio.Event()
            timings: list[float] = []
            timer = asyncio.create_task(
                timed_lists(bench, stop, timings), name="list latency during purge"
            )
            began = time.perf_counter()
            try:
                await _json(admin.put(f"{V1}/settings/retention", json={"days": 90}))
                while True:
                    state = await _json(admin.get(f"{V1}/settings/retention"))
                    if state["last_purge_at"] is not None:
                        break
                    await asyncio.sleep(0.25)
                took = time.perf_counter() - began
            finally:
                stop.set()
                await timer
    removed = state["last_purge_removed"]
    assert removed == count, (removed, count)
    say("purge", f"{removed:,} events in {took:.1f} s ({removed / took:,.0f} events/s); "
        f"{len(timings):,} GET /events meanwhile: p50 {pct(timings, 50):.1f} ms, "
        f"p99 {pct(timings, 99):.1f} ms, max {max(timings):.1f} ms")  # fmt: skip
    return {
        "purged_events": removed,
        "purge_events_per_s": round(removed / took),
        "list_p50_during_purge_ms": round(pct(timings, 50), 2),
        "list_p99_during_purge_ms": round(pct(timings, 99), 2),
    }


async def timed_lists(bench: Bench, stop: asyncio.Event, out: list[float]) -> None:
    """Time the filtered ``GET /events`` of phase 4, one after another, until ``stop``."""
    rng = random.Random(11)
    params = filtered(bench)
    async with aiohttp.ClientSession(
        bench.url, headers={"Authorization": f"Bearer {ADMIN}"}
    ) as http:
        while not stop.is_set():
            began = time.perf_counter()
            async with http.get(f"{V1}/events", params=params(rng)) as resp:
                body = await resp.read()
                assert resp.status == 200, body[:500]
            out.append((time.perf_counter() - began) * 1000)


# --- action -> plugin call ------------------------------------------------------


class _TimedPlugin(SimulatedPlugin):
    """The test plugin, noting when each replace_model call arrives."""

    def __init__(self) -> None:
        super().__init__(SimulatedPluginSettings())
        self.arrived: asyncio.Queue[float] = asyncio.Queue()

    async def replace_model(self, spec: DesiredDeployment) -> ActionResult:
        self.arrived.put_nowait(time.perf_counter())
        return await super().replace_model(spec)


def package_archive(version: str) -> bytes:
    """A minimal valid package archive."""
    manifest = (
        f"name: bench\nversion: '{version}'\nformat: sklearn\nartifact: m.joblib\n"
        "target: {type: regression}\nfeatures: [{name: x}]\n"
    ).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("model.yaml", manifest), ("m.joblib", b"x")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


async def action_to_plugin(
    bench: Bench, actions: int, agent_url: str | None = None, name: str = "latency"
) -> dict[str, Any]:
    """Latency from ``POST /deployments/{id}/actions`` to the agent's plugin call.

    The actions go to ``bench.url``; the agent follows ``agent_url`` (default: the same).
    """
    headers = {"Authorization": f"Bearer {ADMIN}"}
    async with aiohttp.ClientSession(bench.url, headers=headers) as admin:
        pe = await _json(
            admin.post(f"{V1}/prediction-environments", json={"name": name, "platform": "test"})
        )
        token = await _json(admin.post(f"{V1}/prediction-environments/{pe['id']}/agent-tokens"))
        pkgs = [
            (
                await _json(
                    admin.post(
                        f"{V1}/model-packages",
                        data=package_archive(v),
                        headers={"Content-Type": "application/gzip"},
                    )
                )
            )["id"]
            for v in ("1", "2")
        ]
        plugin = _TimedPlugin()
        settings = AgentSettings.load(None, {
            "prediction_environment": pe["id"], "state_dir": bench.state_dir / f"agent-{name}",
            "hub": {"url": agent_url or bench.url, "token": token["token"]},
            "log": {"level": "WARNING"},
        })  # fmt: skip
        agent = Agent(settings, plugin=plugin)
        serving = asyncio.create_task(agent.serve())
        try:
            await agent.wait_ready()
            dep = await _json(admin.post(f"{V1}/deployments", json={
                "name": name, "prediction_environment_id": pe["id"],
                "model_package_id": pkgs[0]}))  # fmt: skip
            await _until(lambda: dep["id"] in plugin.deployments)
            delays = []
            for i in range(actions):
                body = {"action": "replace_model", "model_package_id": pkgs[(i + 1) % 2]}
                sent = time.perf_counter()
                await _json(admin.post(f"{V1}/deployments/{dep['id']}/actions", json=body))
                delays.append((await plugin.arrived.get() - sent) * 1000)
                await agent.wait_settled()
        finally:
            agent.request_stop()
            await serving
    say("action", f"{actions} actions, POST -> plugin call: p50 {pct(delays, 50):.1f} ms, "
        f"p99 {pct(delays, 99):.1f} ms")  # fmt: skip
    return {"action_to_plugin_p50_ms": round(pct(delays, 50), 2),
            "action_to_plugin_p99_ms": round(pct(delays, 99), 2)}  # fmt: skip


async def _json(request: Any) -> Any:
    async with request as resp:
        if resp.status >= 300:
            raise RuntimeError(f"{resp.method} {resp.url}: {resp.status} {await resp.text()}")
        return await resp.json()


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise RuntimeError("condition not met")


async def postgres_phases(tmp: Path, args: argparse.Namespace, sqlite_ingest: float) -> Any:
    """The PostgreSQL phases (bench/hub_postgres.py), against this run's SQLite ingest."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from bench import hub_postgres

    return await hub_postgres.phases(tmp, args, sqlite_ingest)


def say(phase: str, text: str) -> None:
    print(f"{phase:9s}{text}", flush=True)


def spread(ms: list[float]) -> str:
    return f"GET /events p50 {pct(ms, 50):.1f} ms, p99 {pct(ms, 99):.1f} ms"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ingest", type=int, default=100_000, help="events per HTTP ingest phase")
    parser.add_argument("--stored", type=int, default=1_000_000, help="events bulk-loaded")
    parser.add_argument("--senders", type=int, default=4, help="ingest requests in flight")
    parser.add_argument("--queries", type=int, default=300, help="GET /events per kind")
    parser.add_argument("--actions", type=int, default=1000, help="actions timed to the plugin")
    parser.add_argument("--export", type=int, default=1, help="run the export phase (0: skip)")
    parser.add_argument("--purge", type=int, default=1_000_000, help="old events purged (0: skip)")
    parser.add_argument(
        "--postgres", type=int, default=1, help="run the PostgreSQL phases (0: skip)"
    )
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    cli = parser.parse_args()
    result = asyncio.run(main(cli, extra=[lambda b: action_to_plugin(b, cli.actions)]))
    print(orjson.dumps(result).decode())
