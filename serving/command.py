"""``pilothouse serve``: the multi-model prediction server as a foreground process.

Like ``agent run``, this is the only place that installs signal handlers:
SIGTERM and SIGINT stop the server cleanly (in-flight requests finish within
``shutdown_grace_s``). The server is imported when the command runs, so other
commands do not pay for NumPy. Exit codes: 0 stopped on request, 2 invalid
settings or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pilothouse.foundation import cli, logs
from pilothouse.foundation.settings import LogSettings

if TYPE_CHECKING:
    from pilothouse.serving import ServerSettings


FLAGS = (
    cli.Flag("host"),
    cli.Flag("port"),
    cli.Flag("grpc_port"),
    cli.Flag("admin_token"),
    cli.Flag("state_dir"),
    cli.Flag("restore"),
    cli.Flag("inline_budget_ms"),
    cli.Flag("predict_threads"),
    cli.Flag("log_format"),
    cli.Flag("log_level"),
)
"""The settings offered as flags of ``serve``; the rest come from the environment."""


def register(sub: Any) -> None:
    """Add ``serve``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the multi-model prediction server",
        description="Serve model packages over the Open Inference Protocol (V2) and a plain "
        "rows endpoint; load, replace and unload them through the admin API. Flags override "
        "environment variables (PILOTHOUSE_SERVE_...).",
    )
    add_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the server's flags to ``parser``."""
    from pilothouse.serving.settings import ServerSettings

    cli.add_flags(parser, ServerSettings, FLAGS)
    parser.add_argument(
        "--deployment",
        action="append",
        default=[],
        metavar="ID=PACKAGE",
        help="load a package directory or archive as deployment ID at start (repeatable)",
    )
    parser.set_defaults(handler=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags."""
    out = cli.overrides(args, FLAGS)
    if args.deployment:
        out["deployments"] = dict(_pair(item) for item in args.deployment)
    return out


def run(args: argparse.Namespace) -> int:
    """Load settings and serve until SIGTERM/SIGINT."""
    from pilothouse.serving import ServerSettings, SettingsError

    try:
        settings = ServerSettings.load(overrides(args))
    except (SettingsError, ValueError) as exc:
        print(f"pilothouse: {exc}", file=sys.stderr)
        return 2
    handle = logs.configure(LogSettings(level=settings.log_level, format=settings.log_format))
    try:
        asyncio.run(_serve(settings))
    finally:
        handle.close()
    return 0


async def _serve(settings: ServerSettings) -> None:
    from pilothouse.serving import serve

    stop = asyncio.Event()
    await cli.until_signalled(serve(settings, stop=stop), stop.set)


def _pair(item: str) -> tuple[str, Path]:
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--deployment {item!r}: expected ID=PACKAGE_DIR_OR_ARCHIVE")
    return name, Path(path)
