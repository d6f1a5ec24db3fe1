"""Benchmark: one agent, 10,000 deployments on the `test` plugin with zero delays.

Phases, each timed from the moment the desired-state file is written until
every deployment has converged: launch all, replace all (new model), stop all.
Between replace and stop the agent idles for ``--idle-s`` seconds with a 30 s
health interval while its CPU time is measured. As a floor, the same plugin's
actions are also called directly in a loop (no agent), in the same run.

Targets (issue #2): >= 5,000 actions/s per phase, peak RSS <= 200 MB, idle CPU <= 2 %.
The last line of output is one JSON object with the figures. The benchmark fails
(an exception, exit code 1) rather than print figures of a broken run: if the
agent raises or dies during a phase, does not stop, or if its event log misses
or repeats any event it emitted.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.plugins.simulated import SimulatedPlugin, SimulatedPluginSettings


def write_desired(path: Path, n: int, model: str, state: str) -> None:
    doc = {
        "deployments": [
            {"id": f"dep-{i:05d}", "model_package_id": model, "state": state} for i in range(n)
        ]
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(doc))
    tmp.replace(path)


async def converge(
    agent: Agent, task: asyncio.Task[None], path: Path, n: int, model: str, state: str
) -> float:
    assert agent.dispatcher is not None
    dispatcher = agent.dispatcher
    expected = "ready" if state == "launched" else "stopped"
    began = time.perf_counter()
    await asyncio.to_thread(write_desired, path, n, model, state)
    while True:
        await asyncio.sleep(0.005)
        if task.done():  # an agent that died never converges: say why, at once
            task.result()
            raise AgentFailed("the agent stopped in the middle of a phase")
        recs = dispatcher.records
        if len(recs) == n and all(
            r.state.value == expected and (r.model_package_id == model or expected == "stopped")
            for r in recs.values()
        ):
            return time.perf_counter() - began


async def floor(n: int) -> float:
    """Actions per second of the bare plugin, called in a loop: the ceiling for the agent."""
    from pilothouse.agent.plugin import PluginContext

    plugin = SimulatedPlugin(SimulatedPluginSettings())
    ctx = PluginContext("floor", {}, Path(tempfile.gettempdir()), lambda e: None, None)  # type: ignore[arg-type]
    await plugin.start(ctx)
    specs = [DesiredDeployment(id=f"dep-{i:05d}", model_package_id="m1") for i in range(n)]
    began = time.perf_counter()
    for spec in specs:
        await plugin.launch(spec)
    return n / (time.perf_counter() - began)


class AgentFailed(RuntimeError):
    """The agent under benchmark failed: its figures would mean nothing."""


def emitted(agent: Agent) -> int:
    """How many events the agent emitted, by its own metrics."""
    sample = agent.metrics.registry.get_sample_value
    return int(
        sum(sample("pilothouse_agent_events_total", {"status": s.value}) or 0 for s in Status)
    )


def check_event_log(path: Path, expected: int) -> int:
    """Every emitted event is in the log exactly once; return how many were written.

    Read a line at a time, and only after the agent's peak RSS was taken: the
    whole file and its parsed lines would be this script's memory, not the agent's.
    """
    ids: set[str] = set()
    written = 0
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                ids.add(orjson.loads(line)["id"])
                written += 1
    if len(ids) != written:
        raise AgentFailed(f"{written - len(ids)} events were written more than once")
    if written != expected:
        raise AgentFailed(f"the agent emitted {expected} events but wrote {written}")
    return written


async def stop(agent: Agent, task: asyncio.Task[None], timeout_s: float = 60.0) -> None:
    """Stop the agent; its failure, or a stop that hangs, ends the benchmark."""
    agent.request_stop()
    try:
        async with asyncio.timeout(timeout_s):
            await task
    except TimeoutError:
        raise AgentFailed(f"the agent did not stop within {timeout_s:g}s") from None


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(n: int, idle_s: float) -> dict[str, Any]:
    floor_rate = await floor(n)
    with tempfile.TemporaryDirectory() as tmp:
        desired = Path(tmp) / "desired.json"
        write_desired(desired, 0, "m0", "launched")
        settings = AgentSettings.load(
            None,
            {
                "prediction_environment": "bench",
                "state_dir": Path(tmp) / "state",
                "intake": {"desired_state_file": desired, "poll_interval_s": 0.1},
                "health": {"interval_s": 30, "heartbeat_interval_s": 15},
                "actions": {"max_concurrent": 256},
                "log": {"level": "WARNING"},
            },
        )
        agent = Agent(settings, plugin=SimulatedPlugin(SimulatedPluginSettings()))
        task = asyncio.create_task(agent.serve(), name="agent under benchmark")
        ready = asyncio.create_task(agent.wait_ready())
        await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # raises why it could not start
        rates: dict[str, float] = {}
        for phase, model, state in (
            ("launch", "m1", "launched"),
            ("replace", "m2", "launched"),
        ):
            elapsed = await converge(agent, task, desired, n, model, state)
            rates[phase] = n / elapsed
            print(f"{phase:8s} {n} actions in {elapsed:.2f}s: {rates[phase]:,.0f} actions/s")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(idle_s)
        idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
        print(f"idle     {idle_s:.0f}s with {n} ready deployments: CPU {idle_cpu:.2f} %")
        elapsed = await converge(agent, task, desired, n, "m2", "stopped")
        rates["stop"] = n / elapsed
        print(f"stop     {n} actions in {elapsed:.2f}s: {rates['stop']:,.0f} actions/s")
        await stop(agent, task)
        peak = rss_mb()  # the agent's: before this script reads the event log
        events_emitted = emitted(agent)
        events = check_event_log(settings.event_log_path, events_emitted)
    print(f"floor    bare plugin calls: {floor_rate:,.0f} actions/s")
    print(f"events   {events} emitted, each written once")
    print(f"peak RSS {peak:.1f} MB")
    return {
        "deployments": n,
        "launch_actions_per_s": round(rates["launch"]),
        "replace_actions_per_s": round(rates["replace"]),
        "stop_actions_per_s": round(rates["stop"]),
        "peak_rss_mb": round(peak, 1),
        "idle_cpu_percent": round(idle_cpu, 3),
        "idle_seconds": idle_s,
        "floor_plugin_actions_per_s": round(floor_rate),
        "events_emitted": events_emitted,
        "events_written": events,
        "targets_met": rates["launch"] >= 5000
        and rates["replace"] >= 5000
        and rates["stop"] >= 5000
        and peak <= 200
        and idle_cpu <= 2,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    args = parser.parse_args()
    result = asyncio.run(main(args.deployments, args.idle_s))
    print(orjson.dumps(result).decode())
