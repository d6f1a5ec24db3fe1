"""``pilothouse agent run``: the agent as a foreground process.

This is the only place that installs signal handlers: SIGTERM and SIGINT ask
the agent to stop cleanly (a second signal is ignored while it does).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from pilothouse.agent.errors import CrashLoopError
from pilothouse.agent.runtime import Agent
from pilothouse.agent.settings import AgentSettings
from pilothouse.foundation import cli, logs

FLAGS = (
    cli.Flag("prediction_environment"),
    cli.Flag("plugin"),
    cli.Flag("state_dir"),
    cli.Flag("intake.desired_state_file", "--desired-state"),
    cli.Flag("hub.url"),
    cli.Flag("hub.token", "--token"),
    cli.Flag("event_log"),
    cli.Flag("http.port"),
    cli.Flag("log.format"),
    cli.Flag("log.level"),
)
"""The settings offered as flags of ``agent run``; the rest come from the environment or file."""


def register(sub: Any) -> None:
    """Add ``agent run`` and ``agent settings``."""
    COMMANDS.add_to(sub.add_parser("agent", help="run the agent"))


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, shaped like the settings class."""
    out = cli.overrides(args, FLAGS)
    if "port" in out.get("http", {}):
        out["http"]["enabled"] = True  # asking for a port is asking for the endpoint
    return out


def run(args: argparse.Namespace) -> int:
    """Load settings, run the agent, map the outcome to an exit code."""
    settings = load(args.config, overrides(args))
    handle = logs.configure(settings.log)
    try:
        agent = Agent(settings)
        asyncio.run(cli.until_signalled(agent.serve(), agent.request_stop))
    except CrashLoopError:
        return 1  # already reported as an event and in the log
    finally:
        handle.close()
    return 0


def load(config: Path | None, flags: dict[str, Any]) -> AgentSettings:
    """Settings from every source; pydantic-settings deep-merges nested groups."""
    return AgentSettings.load(config, flags)


COMMANDS = cli.ProcessCommands("the agent", AgentSettings, "PILOTHOUSE_", FLAGS, run)
"""``run`` and ``settings``, also the commands of ``python -m pilothouse.agent``."""
