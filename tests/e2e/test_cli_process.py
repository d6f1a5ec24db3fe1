"""``pilothouse agent run`` and ``pilothouse plugins`` as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml
from helpers import eventually

from .support import TIMEOUT, deployment, events, write_state

pytestmark = pytest.mark.anyio

PROCESS_TIMEOUT = 30.0


def clean_env() -> dict[str, str]:
    """This process's environment without any PILOTHOUSE_ setting."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PILOTHOUSE_")}


async def start(cwd: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pilothouse",
        *args,
        cwd=cwd,
        env=clean_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    """Wait for ``proc`` to end (killing it if it will not); exit code, stdout, stderr."""
    try:
        async with asyncio.timeout(PROCESS_TIMEOUT):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"the process did not end; stderr:\n{err.decode()}") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def assert_not_lost(log_events: list[dict], stderr: str) -> None:
    """What the agent logged as ``agent.stopped`` is in its event log too."""
    if "agent.stopped" in stderr:
        assert "agent.stopped" in {e["type"] for e in log_events}


def write_config(tmp_path: Path, **extra: object) -> Path:
    config = {
        "prediction_environment": "pe-cli",
        "plugin": "test",
        "plugin_settings": {"seed": 1},
        "state_dir": "state",
        "intake": {"desired_state_file": "desired.yaml", "poll_interval_s": 0.1},
        "shutdown": {"grace_period_s": 2},
        **extra,
    }
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_agent_run_stops_cleanly_on_a_signal(tmp_path, sig):
    write_state(tmp_path / "desired.yaml", [deployment("d1", "m1"), deployment("d2", "m2")])
    write_config(tmp_path)
    log = tmp_path / "state" / "events.jsonl"

    proc = await start(tmp_path, "agent", "run", "--config", "agent.yaml")
    try:
        await eventually(
            lambda: {e["deployment_id"] for e in events(log, "deployment.ready")} == {"d1", "d2"},
            TIMEOUT,
        )
        assert proc.returncode is None
        proc.send_signal(sig)
        code, _, err = await finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert code == 0, err
    assert "Traceback" not in err
    log_events = events(log)
    assert_not_lost(log_events, err)
    assert [e["type"] for e in log_events[-2:]] == ["agent.stopping", "agent.stopped"]
    assert log_events[-2]["data"] == {"reason": "requested"}
    assert log_events[0]["type"] == "agent.starting"
    assert all(e["prediction_environment_id"] == "pe-cli" for e in log_events)
    assert (tmp_path / "state" / "heartbeat.json").exists()


async def test_agent_run_flags_override_the_config_file(tmp_path):
    write_state(tmp_path / "other.yaml", [deployment("f1", "m1")])
    write_config(tmp_path)
    proc = await start(
        tmp_path,
        "agent",
        "run",
        "--config",
        "agent.yaml",
        "--desired-state",
        "other.yaml",
        "--event-log",
        "flag-events.jsonl",
        "--log-format",
        "json",
    )
    log = tmp_path / "flag-events.jsonl"
    try:
        await wait_ready(log, "f1")
        proc.send_signal(signal.SIGTERM)
        code, _, err = await finish(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert code == 0, err
    assert not (tmp_path / "state" / "events.jsonl").exists()
    assert_not_lost(events(log), err)
    assert events(log)[-1]["type"] == "agent.stopped"
    assert err.strip(), "the agent logs to stderr"
    assert all(line.startswith("{") for line in err.splitlines()), err


async def wait_ready(log: Path, dep: str) -> None:
    await eventually(lambda: bool(events(log, "deployment.ready", dep)), TIMEOUT)


async def test_agent_run_refuses_a_bad_config_with_exit_code_2(tmp_path):
    write_config(tmp_path, prediction_environment="not a valid id!", actions={"timeout_s": -1})
    code, _, err = await finish(await start(tmp_path, "agent", "run", "--config", "agent.yaml"))
    assert code == 2
    assert "prediction_environment" in err
    assert "actions.timeout_s" in err
    assert "Traceback" not in err


async def test_plugins_lists_the_test_plugin(tmp_path):
    code, out, err = await finish(await start(tmp_path, "plugins"))
    assert code == 0, err
    assert "test" in out.split()


async def test_agent_run_exits_1_when_a_task_crash_loops(tmp_path):
    # The event log cannot be written (its path is a directory): the event writer fails
    # on every write, is restarted, and after three failures the agent gives up.
    (tmp_path / "unwritable").mkdir()
    write_state(tmp_path / "desired.yaml", [deployment("d1", "m1")])
    fast_restarts = {
        "restart_backoff_initial_s": 0.01,
        "restart_backoff_max_s": 0.05,
        "crash_loop_failures": 3,
    }
    write_config(tmp_path, event_log="unwritable", supervisor=fast_restarts)
    code, _, err = await finish(await start(tmp_path, "agent", "run", "--config", "agent.yaml"))
    assert code == 1, err
    assert "agent.crash_loop failing: task 'event writer' failed 3 times in a row" in err, err
    assert "agent.stopping failing" in err and "agent.stopped" in err


async def test_agent_run_exits_1_when_the_plugin_is_never_ready(tmp_path):
    write_state(tmp_path / "desired.yaml", [deployment("d1", "m1")])
    write_config(
        tmp_path,
        plugin_settings={"not_ready_starts": 1000},
        supervisor={
            "restart_backoff_initial_s": 0.05,
            "restart_backoff_max_s": 0.2,
            "plugin_ready_timeout_s": 1.5,
        },
    )
    log = tmp_path / "state" / "events.jsonl"
    code, _, err = await finish(await start(tmp_path, "agent", "run", "--config", "agent.yaml"))
    assert code == 1, err
    assert "pilothouse: plugin 'test' was not ready within 1.5s" in err, err
    assert "Traceback" not in err
    seen = events(log)
    not_ready = [e for e in seen if e["type"] == "agent.plugin_not_ready"]
    assert len(not_ready) >= 3 and all(e["status"] == "at_risk" for e in not_ready)
    (failed,) = [e for e in seen if e["type"] == "agent.plugin_failed"]
    assert failed["status"] == "failing" and "not ready within 1.5s" in failed["message"]
    assert "agent.started" not in {e["type"] for e in seen}
    assert seen[-1]["type"] == "agent.stopped"
