"""Why a container is not running, in words and as event data.

The summary completes "prediction server 'shared' …" in the crash watch's
events and in each deployment's pushed status; the data carries what an
operator needs without a shell on the engine's host: the exit code, the OOM
flag and the last lines of the container's log.
"""

from __future__ import annotations

import signal
from typing import Any

from pilothouse.plugins.docker.tracking import Death
from pilothouse.plugins.fleet import ExitCause

LOG_LINES = 20
"""Lines of a dead container's log put into its events."""


def removed(name: str) -> ExitCause:
    """The container is gone from the engine (``docker rm`` behind the agent's back)."""
    return ExitCause(f"was removed from the engine (container {name}); re-creating it",
                     {"container": name, "removed": True, "log_tail": []})  # fmt: skip


def unknown(name: str, why: str) -> ExitCause:
    """The engine could not be asked."""
    return ExitCause(f"is not running (container {name}; the engine could not tell why: {why})",
                     {"container": name, "error": why, "log_tail": []})  # fmt: skip


def of_state(name: str, state: dict[str, Any], death: Death | None, tail: list[str]) -> ExitCause:
    """The cause read from a container's ``State`` (``docker inspect``) and its last ``die``."""
    status = str(state.get("Status"))
    if status in ("removing", "dead") and not state.get("OOMKilled"):
        return removed(name)  # the die event of a `docker rm -f`: the destroy follows
    code = int(state.get("ExitCode") or 0)
    oom = bool(state.get("OOMKilled"))
    again = ""
    if death is not None and status in ("running", "restarting"):
        # Started again by the engine's restart policy: its state forgot how it ended.
        code, oom = death.exit_code, oom or death.oom_killed
        again = "; the engine started it again" if status == "running" else ""
    data = {
        "container": name, "status": status, "exit_code": code, "oom_killed": oom,
        "error": state.get("Error") or None, "finished_at": state.get("FinishedAt"),
        "log_tail": tail,
    }  # fmt: skip
    summary = _describe("exited" if again else status, code, oom)
    return ExitCause(f"{summary} (container {name}{again})", data)


def _describe(status: str, code: int, oom: bool) -> str:
    if oom:
        return f"was OOM-killed (exit code {code}: out of its memory limit)"
    if status == "created":
        return "was created but never started"
    if status == "paused":
        return "is paused"
    if status == "restarting":
        return f"is being restarted by the engine (last exit code {code})"
    if status == "running":
        return "is running but not counted on"
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = f"signal {code - 128}"
        return f"was killed by {name} (exit code {code})"
    return f"exited with code {code}"
