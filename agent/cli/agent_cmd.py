"""``pilothouse agent run``: the agent as a foreground process.

This is the only place that installs signal handlers: SIGTERM and SIGINT ask
the agent to stop cleanly (a second signal is ignored while it does).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from agent.cli import signals
from agent.errors import CrashLoopError
from agent.observability import logs
from agent.runtime import Agent
from agent.settings import AgentSettings, reference


def register(sub: Any) -> None:
    """Add ``agent run``."""
    agent_parser: argparse.ArgumentParser = sub.add_parser("agent", help="run the agent")
    agent_sub = agent_parser.add_subparsers(dest="agent_command", required=True, metavar="COMMAND")
    run_parser = agent_sub.add_parser(
        "run",
        help="run the agent in the foreground",
        description="Run the agent until SIGTERM/SIGINT. Flags override environment "
        "variables (PILOTHOUSE_...), which override the config file.",
    )
    run_parser.add_argument("--config", type=Path, help="YAML config file")
    run_parser.add_argument("--prediction-environment", help="id of the PE to manage")
    run_parser.add_argument("--plugin", help="plugin name (see 'pilothouse plugins')")
    run_parser.add_argument("--state-dir", type=Path, help="where the agent keeps its files")
    run_parser.add_argument("--desired-state", type=Path, help="desired-state file (standalone)")
    run_parser.add_argument("--hub-url", help="hub base URL (hub mode)")
    run_parser.add_argument("--token", help="agent token of the PE (hub mode)")
    run_parser.add_argument("--event-log", type=Path, help="JSON-lines event log")
    run_parser.add_argument("--http-port", type=int, help="serve /healthz and /metrics here")
    run_parser.add_argument("--log-format", choices=["text", "json"])
    run_parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run_parser.set_defaults(handler=run)
    ref_parser = agent_sub.add_parser("settings", help="print every setting (Markdown table)")
    ref_parser.set_defaults(handler=settings_reference)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, shaped like the settings class."""
    flat = {
        "prediction_environment": args.prediction_environment,
        "plugin": args.plugin,
        "state_dir": args.state_dir,
        "event_log": args.event_log,
    }
    out: dict[str, Any] = {k: v for k, v in flat.items() if v is not None}
    nested = {
        ("intake", "desired_state_file"): args.desired_state,
        ("hub", "url"): args.hub_url,
        ("hub", "token"): args.token,
        ("http", "port"): args.http_port,
        ("http", "enabled"): True if args.http_port is not None else None,
        ("log", "format"): args.log_format,
        ("log", "level"): args.log_level,
    }
    for (group, key), value in nested.items():
        if value is not None:
            out.setdefault(group, {})[key] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Load settings, run the agent, map the outcome to an exit code."""
    settings = load(args.config, overrides(args))
    handle = logs.configure(settings.log)
    try:
        agent = Agent(settings)
        asyncio.run(signals.until_signalled(agent.serve(), agent.request_stop))
    except CrashLoopError:
        return 1  # already reported as an event and in the log
    finally:
        handle.close()
    return 0


def load(config: Path | None, flags: dict[str, Any]) -> AgentSettings:
    """Settings from every source; pydantic-settings deep-merges nested groups."""
    return AgentSettings.load(config, flags)


def settings_reference(args: argparse.Namespace) -> int:
    """Print every setting with its environment variable, default and meaning (Markdown)."""
    return signals.print_reference(reference(), env_name)


def env_name(setting: str) -> str:
    """The environment variable of a dotted setting name."""
    return "PILOTHOUSE_" + setting.upper().replace(".", "__")
