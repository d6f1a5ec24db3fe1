"""The ``pilothouse`` command line.

Subcommands live in modules of their own; this one only builds the parser and
turns errors into messages and exit codes: 0 done, 1 the agent failed while
running, 2 bad configuration or usage. No traceback reaches a user for an
error Pilothouse raised on purpose.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent.cli import (
    agent_cmd,
    deployment_cmd,
    events_cmd,
    hub_cmd,
    package_cmd,
    pe_cmd,
    plugins_cmd,
    serve_cmd,
    up_cmd,
)
from agent.errors import ConfigError, PilothouseError


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="pilothouse",
        description="Deploy, replace, stop and watch models on any infrastructure.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    agent_cmd.register(sub)
    plugins_cmd.register(sub)
    package_cmd.register(sub)
    serve_cmd.register(sub)
    hub_cmd.register(sub)
    pe_cmd.register(sub)
    deployment_cmd.register(sub)
    events_cmd.register(sub)
    up_cmd.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
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
