"""The ``pilothouse`` command line.

Subcommands live in modules of their own; this one only builds the parser and
turns errors into messages and exit codes: 0 done, 1 the agent failed while
running, 2 bad configuration or usage. No traceback reaches a user for an
error Pilothouse raised on purpose.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from agent.errors import ConfigError, PilothouseError

COMMANDS = {
    "agent": "agent.cli.agent_cmd",
    "plugins": "agent.cli.plugins_cmd",
    "package": "agent.cli.package_cmd",
    "serve": "agent.cli.serve_cmd",
    "hub": "agent.cli.hub_cmd",
    "pe": "agent.cli.pe_cmd",
    "deployment": "agent.cli.deployment_cmd",
    "events": "agent.cli.events_cmd",
    "up": "agent.cli.up_cmd",
}
"""Subcommand to the module that registers it, imported only when needed: a
prediction server started as ``pilothouse serve`` does not load the hub."""


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand (or of ``only``, when that is the one to run)."""
    parser = argparse.ArgumentParser(
        prog="pilothouse",
        description="Deploy, replace, stop and watch models on any infrastructure.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        if only is None or name == only:
            importlib.import_module(module).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    args = build_parser(only).parse_args(argv)
    try:
        code: int = args.handler(args)
    except ConfigError as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 2
    except PilothouseError as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code
