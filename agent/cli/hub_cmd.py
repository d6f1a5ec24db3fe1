"""``pilothouse hub run``: the hub as a foreground process; ``pilothouse hub settings``.

This is the only place that installs signal handlers for the hub: SIGTERM and
SIGINT ask it to stop cleanly (watch streams end, requests finish, the
database closes) and the process exits 0. The agent package reaches the hub
only from here (import-linter keeps it so).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from agent.cli import signals
from agent.cli.agent_cmd import env_name as agent_env_name
from agent.observability import logs
from agent.settings import reference
from hub import Hub, HubSettings


def register(sub: Any) -> None:
    """Add ``hub run`` and ``hub settings``."""
    hub_parser: argparse.ArgumentParser = sub.add_parser("hub", help="run the hub")
    hub_sub = hub_parser.add_subparsers(dest="hub_command", required=True, metavar="COMMAND")
    run_parser = hub_sub.add_parser(
        "run",
        help="run the hub in the foreground",
        description="Run the hub until SIGTERM/SIGINT. Flags override environment "
        "variables (PILOTHOUSE_HUB_...), which override the config file.",
    )
    run_parser.add_argument("--config", type=Path, help="YAML config file")
    run_parser.add_argument("--host", help="address to listen on")
    run_parser.add_argument("--port", type=int, help="port to listen on (0: any free port)")
    run_parser.add_argument("--state-dir", type=Path, help="where the hub keeps its files")
    run_parser.add_argument("--database-url", help="sqlite:///PATH (default: <state-dir>/hub.db)")
    run_parser.add_argument("--admin-token", help="admin bearer token (default: generated)")
    run_parser.add_argument("--log-format", choices=["text", "json"])
    run_parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run_parser.set_defaults(handler=run)
    ref_parser = hub_sub.add_parser("settings", help="print every setting (Markdown table)")
    ref_parser.set_defaults(handler=settings_reference)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, shaped like the settings class."""
    given = {
        ("state_dir",): args.state_dir,
        ("admin_token",): args.admin_token,
        ("listen", "host"): args.host,
        ("listen", "port"): args.port,
        ("database", "url"): args.database_url,
        ("log", "format"): args.log_format,
        ("log", "level"): args.log_level,
    }
    out: dict[str, Any] = {}
    for path, value in given.items():
        if value is None:
            continue
        if len(path) == 1:
            out[path[0]] = value
        else:
            out.setdefault(path[0], {})[path[1]] = value
    return out


def run(args: argparse.Namespace) -> int:
    """Load settings, serve the hub until a signal, exit 0."""
    settings = HubSettings.load(args.config, overrides(args))
    handle = logs.configure(settings.log)
    try:
        hub = Hub(settings)
        asyncio.run(signals.until_signalled(hub.serve(), hub.request_stop))
    finally:
        handle.close()
    return 0


def settings_reference(args: argparse.Namespace) -> int:
    """Print every hub setting with its environment variable, default and meaning."""
    return signals.print_reference(reference(HubSettings), env_name)


def env_name(setting: str) -> str:
    """The environment variable of a dotted hub setting name."""
    return agent_env_name(setting).replace("PILOTHOUSE_", "PILOTHOUSE_HUB_", 1)
