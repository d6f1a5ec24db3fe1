"""Why a container is not running, in words and as event data.

The summary completes "prediction server 'shared' …" in the crash watch's
events and in each deployment's pushed status; the data carries what an
operator needs without a shell on the engine's host: the exit code, the OOM
flag and the last lines of the container's log.
"""

from __future__ import annotations

import signal
from typing import Any

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


def of_state(name: str, state: dict[str, Any], oom_event: bool, tail: list[str]) -> ExitCause:
    """The cause read from a container's ``State`` (``docker inspect``)."""
    code = int(state.get("ExitCode") or 0)
    oom = bool(state.get("OOMKilled")) or oom_event
    data = {
        "container": name, "status": state.get("Status"), "exit_code": code, "oom_killed": oom,
        "error": state.get("Error") or None, "finished_at": state.get("FinishedAt"),
        "log_tail": tail,
    }  # fmt: skip
    return ExitCause(f"{_describe(str(state.get('Status')), code, oom)} (container {name})", data)


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
