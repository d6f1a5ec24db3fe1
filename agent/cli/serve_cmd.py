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

from agent.cli import signals
from agent.observability import logs
from agent.settings import LogSettings

if TYPE_CHECKING:
    from serving import ServerSettings


def register(sub: Any) -> None:
    """Add ``serve``."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "serve",
        help="run the multi-model prediction server",
        description="Serve model packages over the Open Inference Protocol (V2) and a plain "
        "rows endpoint; load, replace and unload them through the admin API. Flags override "
        "environment variables (PILOTHOUSE_SERVE_...).",
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8702; 0: any)")
    parser.add_argument(
        "--grpc-port",
        type=int,
        help="also serve the Open Inference Protocol over gRPC here (0: any; needs "
        "pilothouse[grpc])",
    )
    parser.add_argument(
        "--admin-token", help="bearer token of the admin API (or PILOTHOUSE_SERVE_ADMIN_TOKEN)"
    )
    parser.add_argument("--state-dir", type=Path, help="unpacked packages and deployment list")
    parser.add_argument(
        "--deployment",
        action="append",
        default=[],
        metavar="ID=PACKAGE",
        help="load a package directory or archive as deployment ID at start (repeatable)",
    )
    parser.add_argument(
        "--no-restore", action="store_true", help="do not reload the deployments of the last run"
    )
    parser.add_argument(
        "--inline-budget-ms", type=float, help="predict on the event loop below this"
    )
    parser.add_argument("--predict-threads", type=int, help="threads for costly predictions")
    parser.add_argument("--log-format", choices=["text", "json"])
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.set_defaults(handler=run)


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags."""
    flat = {
        "host": args.host,
        "port": args.port,
        "grpc_port": args.grpc_port,
        "admin_token": args.admin_token,
        "state_dir": args.state_dir,
        "inline_budget_ms": args.inline_budget_ms,
        "predict_threads": args.predict_threads,
        "log_format": args.log_format,
        "log_level": args.log_level,
        "restore": False if args.no_restore else None,
    }
    out = {k: v for k, v in flat.items() if v is not None}
    if args.deployment:
        out["deployments"] = dict(_pair(item) for item in args.deployment)
    return out


def run(args: argparse.Namespace) -> int:
    """Load settings and serve until SIGTERM/SIGINT."""
    from serving import ServerSettings, SettingsError

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
    from serving import serve

    stop = asyncio.Event()
    await signals.until_signalled(serve(settings, stop=stop), stop.set)


def _pair(item: str) -> tuple[str, Path]:
    name, sep, path = item.partition("=")
    if not sep or not name or not path:
        raise ValueError(f"--deployment {item!r}: expected ID=PACKAGE_DIR_OR_ARCHIVE")
    return name, Path(path)
