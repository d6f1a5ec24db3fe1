"""The benchmarks report what they measured: a skipped phase is not a met target, a broken
agent run is an error, not a figure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import agent_scale, hub_events
from bench import monitoring as monitoring_bench
from pilothouse.agent.errors import CrashLoopError
from pilothouse.agent.runtime import Agent
from pilothouse.foundation.domain.events import Event
from pilothouse.plugins.simulated import SimulatedPlugin

ALL_MET = {
    "ingest_events_per_s": 25_000,
    "list_filtered_p99_ms": 10,
    "action_to_plugin_p99_ms": 10,
    "export_csv_events_per_s": 300_000,
    "export_jsonl_events_per_s": 300_000,
    "export_rss_growth_mb": 20,
    "list_p99_during_purge_ms": 50,
    "pg1_ingest_ratio_to_sqlite": 0.8,
    "pg2_ingest_ratio_to_pg1": 1.5,
    "pg_list_filtered_p99_ms": 10,
    "pg_cross_replica_action_p99_ms": 10,
    "failover_s": 1,
}


def test_every_target_measured_and_met_is_met() -> None:
    assert hub_events.verdict(ALL_MET) == {
        "targets_met": True,
        "targets_missed": [],
        "targets_skipped": [],
    }


def test_a_skipped_phase_is_reported_and_never_met() -> None:
    without_export_and_purge = {
        k: v
        for k, v in ALL_MET.items()
        if not k.startswith(("export_", "list_p99_during", "pg", "failover"))
    }
    got = hub_events.verdict(without_export_and_purge)
    assert got["targets_met"] is False
    assert got["targets_skipped"] == [
        "export_csv_events_per_s",
        "export_jsonl_events_per_s",
        "export_rss_growth_mb",
        "list_p99_during_purge_ms",
        "pg1_ingest_ratio_to_sqlite",
        "pg2_ingest_ratio_to_pg1",
        "pg_list_filtered_p99_ms",
        "pg_cross_replica_action_p99_ms",
        "failover_s",
    ]
    assert got["targets_missed"] == []


def test_a_missed_target_is_named() -> None:
    got = hub_events.verdict(ALL_MET | {"export_rss_growth_mb": 51})
    assert (got["targets_met"], got["targets_missed"]) == (False, ["export_rss_growth_mb"])


def _log(path: Path, ids: list[str]) -> Path:
    path.write_bytes(b"".join(orjson.dumps({"id": i}) + b"\n" for i in ids))
    return path


def test_the_event_log_must_hold_every_emitted_event_once(tmp_path: Path) -> None:
    assert agent_scale.check_event_log(_log(tmp_path / "ok.jsonl", ["a", "b", "c"]), 3) == 3
    with pytest.raises(agent_scale.AgentFailed, match="emitted 3 events but wrote 2"):
        agent_scale.check_event_log(_log(tmp_path / "lost.jsonl", ["a", "b"]), 3)
    with pytest.raises(agent_scale.AgentFailed, match="1 events were written more than once"):
        agent_scale.check_event_log(_log(tmp_path / "twice.jsonl", ["a", "b", "b"]), 3)


class BrokenSink:
    """Refuses every write: the event writer crash-loops and the agent gives up."""

    async def write(self, batch: list[Event]) -> None:
        raise OSError("disk full")

    async def close(self) -> None:
        pass


@pytest.mark.anyio
async def test_an_agent_that_dies_mid_phase_fails_the_benchmark(
    make_settings: Any, tmp_path: Path
) -> None:
    settings = make_settings(supervisor={"crash_loop_failures": 2})
    agent = Agent(settings, plugin=SimulatedPlugin(), sinks=[BrokenSink()])
    task = asyncio.create_task(agent.serve())
    await agent.wait_ready()
    with pytest.raises(CrashLoopError):
        async with asyncio.timeout(20):
            await agent_scale.converge(agent, task, tmp_path / "desired.json", 3, "m1", "launched")
    with pytest.raises(CrashLoopError):
        await agent_scale.stop(agent, task)


def test_monitoring_bench_never_counts_a_skipped_figure_as_met() -> None:
    measured = {
        "ratio_monitoring_with_challenger": 0.93,
        "champion_p99_ratio_slow_challenger": 1.02,
        "regression_to_rollback_s": 2.0,
        "rollback_failed_requests": 0,
        "hub_ingest_windows_per_s": None,
    }
    assert monitoring_bench.verdict(measured) == {
        "targets_met": False,
        "targets_missed": [],
        "targets_skipped": ["hub_ingest_windows_per_s"],
    }
    worse = measured | {"rollback_failed_requests": 1, "ratio_monitoring_with_challenger": 0.85}
    assert monitoring_bench.verdict(worse)["targets_missed"] == [
        "ratio_monitoring_with_challenger",
        "rollback_failed_requests",
    ]
    assert monitoring_bench.verdict(measured | {"hub_ingest_windows_per_s": 900.0}) == {
        "targets_met": True,
        "targets_missed": [],
        "targets_skipped": [],
    }
