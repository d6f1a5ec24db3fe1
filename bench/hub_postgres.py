"""The hub on PostgreSQL, one replica and two, against the SQLite hub of the same run (issue #16).

Run by ``bench/hub_events.py`` after its SQLite phases (``--postgres 0`` skips
this). A throwaway PostgreSQL cluster is started for the run (the tests' own
tooling, tests/postgres_support.py) with PostgreSQL's durable defaults
(``fsync``, ``synchronous_commit`` on: every acknowledged commit is on disk,
stricter than the SQLite hub's ``synchronous=NORMAL``). Replicas are
``pilothouse hub run`` processes sharing one state directory. Phases:

1. **ingest, one replica** — the SQLite phase 1 (``--ingest`` events, batches of
   500, ``--senders`` in flight) against one replica: ``pg1_ingest_events_per_s``;
2. **ingest, two replicas** — the same, the senders spread over both:
   ``pg2_ingest_events_per_s``;

   for both, the CPU time per event of the database's processes (the postmaster
   and its children, from ``/proc``) and of the replicas' is printed too
   (``pg1_db_cpu_us_per_event``, ``pg1_hub_cpu_us_per_event``, …): what the
   events cost, whatever else the shared machine runs meanwhile;
3. **queries** — ``--stored`` events bulk-loaded through the PostgreSQL store,
   then the filtered ``GET /events`` and the search of SQLite's phase 4:
   ``pg_list_filtered_p99_ms``, ``pg_list_search_p99_ms``;
4. **export** — the bulk-loaded events as CSV and JSON lines (a server-side
   cursor): ``pg_export_csv_events_per_s``, ``pg_export_jsonl_events_per_s``;
5. **action → plugin across replicas** — actions POSTed to replica A, the agent
   watching replica B: ``pg_cross_replica_action_p99_ms``;
6. **failover** — an agent on replica A (given both URLs); A is SIGKILLed and an
   action POSTed to B at once; ``failover_s`` runs from the kill to the plugin's
   call.

On this 2-core machine the database shares the cores with the hubs and the
load generator: the ratios ``pg1_ingest_ratio_to_sqlite`` and
``pg2_ingest_ratio_to_pg1`` are of efficiency, not a claim of linear scaling.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from bench import hub_events as he

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from the repository: reach the tests' tooling
    sys.path.insert(0, str(ROOT))

from tests import postgres_support  # noqa: E402

DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
REPLICA_ENV = {"PILOTHOUSE_HUB_DATABASE__LEASE_POLL_S": "0.2"}


@contextlib.asynccontextmanager
async def replica(bench: he.Bench) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """A hub replica process on ``bench``'s database and state directory."""
    port = he.free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pilothouse", "hub", "run", "--port", str(port),
        "--state-dir", str(bench.state_dir), "--admin-token", he.ADMIN, "--log-level", "ERROR",
        "--database-url", str(bench.database_url), env={**os.environ, **REPLICA_ENV},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        await he.wait_ready(url)
        yield url, proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 60)


async def phases(bench_dir: Path, args: Any, sqlite_ingest: float) -> dict[str, Any]:
    """Every PostgreSQL phase; the figures of the last line."""
    original = dict(postgres_support.TEST_SETTINGS)
    postgres_support.TEST_SETTINGS.update(DURABLE)
    try:
        with postgres_support.cluster() as pg:
            name = pg.new_database()
            bench = he.Bench(bench_dir / "pg-hub", database_url=pg.url(name))
            return await _measure(bench, args, sqlite_ingest, pg.data)
    finally:
        postgres_support.TEST_SETTINGS.clear()
        postgres_support.TEST_SETTINGS.update(original)


async def _measure(bench: he.Bench, args: Any, sqlite_ingest: float, data: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    async with replica(bench) as (a_url, a_proc):
        bench.url, bench.hub_pid = a_url, a_proc.pid
        await he.register(bench)
        spent = _Spent(data, [a_proc.pid])
        pg1 = await he.ingest_over_http(bench, args.ingest, args.senders, seed=21)
        figures |= spent.per_event("pg1", args.ingest)
        he.say("pg1", f"{args.ingest:,} events over HTTP, one replica: {pg1:,.0f} events/s")
        async with replica(bench) as (b_url, b_proc):
            spent = _Spent(data, [a_proc.pid, b_proc.pid])
            pg2 = await he.ingest_over_http(
                bench, args.ingest, args.senders * 2, seed=22, urls=[a_url, b_url]
            )
            figures |= spent.per_event("pg2", args.ingest)
            he.say("pg2", f"{args.ingest:,} events over HTTP, two replicas: {pg2:,.0f} events/s")
            bench.url = a_url
            cross = await he.action_to_plugin(bench, args.actions, agent_url=b_url, name="cross")
    floor = await he.bulk_load(bench, args.stored, seed=23)
    he.say("pg load", f"{args.stored:,} events through the store (no HTTP): {floor:,.0f} events/s")
    async with replica(bench) as (url, proc):
        bench.url, bench.hub_pid = url, proc.pid
        await _analyze(bench)
        flt = await he.latencies(bench, args.queries, he.filtered(bench))
        he.say("pg list", f"PE + status + 1-day range: {he.spread(flt)}")
        srch = await he.latencies(bench, args.queries, he.search(bench))
        he.say("pg search", f"PE + q (a word in ~1 % of events): {he.spread(srch)}")
        if args.export:
            exported = await he.export_phase(bench, args.stored)
            figures |= {f"pg_{key}": value for key, value in exported.items()}
    failover = await _failover(bench)
    figures |= {
        "pg1_ingest_events_per_s": round(pg1),
        "pg2_ingest_events_per_s": round(pg2),
        "pg1_ingest_ratio_to_sqlite": round(pg1 / sqlite_ingest, 2),
        "pg2_ingest_ratio_to_pg1": round(pg2 / pg1, 2),
        "pg_store_floor_events_per_s": round(floor),
        "pg_list_filtered_p50_ms": round(he.pct(flt, 50), 2),
        "pg_list_filtered_p99_ms": round(he.pct(flt, 99), 2),
        "pg_list_search_p99_ms": round(he.pct(srch, 99), 2),
        "pg_cross_replica_action_p50_ms": cross["action_to_plugin_p50_ms"],
        "pg_cross_replica_action_p99_ms": cross["action_to_plugin_p99_ms"],
        "failover_s": round(failover, 2),
    }
    return figures


class _Spent:
    """CPU time of the database's processes and of the replicas, from now on (``/proc``)."""

    def __init__(self, data: Path, hubs: list[int]) -> None:
        self._data = data
        self._hubs = hubs
        self._start = (self._db(), _cpu_s(hubs))

    def per_event(self, phase: str, events: int) -> dict[str, float]:
        """Microseconds of CPU per event since made: the database's and the replicas'."""
        db = (self._db() - self._start[0]) / events * 1e6
        hub = (_cpu_s(self._hubs) - self._start[1]) / events * 1e6
        he.say(phase, f"CPU per event: database {db:.1f} us, replicas {hub:.1f} us")
        return {
            f"{phase}_db_cpu_us_per_event": round(db, 1),
            f"{phase}_hub_cpu_us_per_event": round(hub, 1),
        }

    def _db(self) -> float:
        """CPU seconds of the postmaster and its children alive now.

        A child that ended meanwhile (an autovacuum worker) is not counted: a lower bound.
        """
        master = int((self._data / "postmaster.pid").read_text().split()[0])
        children = [
            int(entry)
            for entry in os.listdir("/proc")
            if entry.isdigit() and _stat(int(entry))[1:2] == [str(master)]
        ]
        return _cpu_s([master, *children])


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command (state, ppid, …); [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far."""
    ticks = 0
    for pid in pids:
        fields = _stat(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def _analyze(bench: he.Bench) -> None:
    """Fresh planner statistics after the bulk load (autovacuum would get there, later)."""
    import asyncpg

    conn = await asyncpg.connect(bench.database_url)
    try:
        await conn.execute("ANALYZE events")
    finally:
        await conn.close()


async def _failover(bench: he.Bench) -> float:
    """Seconds from SIGKILL of the agent's replica to the next action's plugin call."""
    async with replica(bench) as (a_url, a_proc), replica(bench) as (b_url, _):
        headers = {"Authorization": f"Bearer {he.ADMIN}"}
        async with aiohttp.ClientSession(b_url, headers=headers) as admin:
            env = {"name": "failover", "platform": "test"}
            pe = await he._json(admin.post(f"{he.V1}/prediction-environments", json=env))
            token = await he._json(
                admin.post(f"{he.V1}/prediction-environments/{pe['id']}/agent-tokens")
            )
            packages = await _packages(admin)
            plugin = he._TimedPlugin()
            settings = he.AgentSettings.load(None, {
                "prediction_environment": pe["id"],
                "state_dir": bench.state_dir / "agent-failover",
                "hub": {"url": f"{a_url},{b_url}", "token": token["token"],
                        "reconnect_backoff_max_s": 0.5},
                "log": {"level": "ERROR"},
            })  # fmt: skip
            agent = he.Agent(settings, plugin=plugin)
            serving = asyncio.create_task(agent.serve())
            try:
                await agent.wait_ready()
                dep = await he._json(admin.post(f"{he.V1}/deployments", json={
                    "name": "failover", "prediction_environment_id": pe["id"],
                    "model_package_id": packages[0]}))  # fmt: skip
                await he._until(lambda: dep["id"] in plugin.deployments)
                await agent.wait_settled()
                a_proc.kill()
                killed = time.perf_counter()
                body = {"action": "replace_model", "model_package_id": packages[1]}
                await he._json(admin.post(f"{he.V1}/deployments/{dep['id']}/actions", json=body))
                took = await asyncio.wait_for(plugin.arrived.get(), 30) - killed
            finally:
                agent.request_stop()
                await serving
    he.say(
        "failover",
        f"replica SIGKILLed: its agent's next action reached the plugin {took:.2f} s later",
    )
    return took


async def _packages(admin: aiohttp.ClientSession) -> list[str]:
    out = []
    for version in ("f1", "f2"):
        created = await he._json(
            admin.post(
                f"{he.V1}/model-packages",
                data=he.package_archive(version),
                headers={"Content-Type": "application/gzip"},
            )
        )
        out.append(created["id"])
    return out
