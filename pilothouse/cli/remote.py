"""Talking to a hub from the command line: settings, the client, and output.

The CLI client has its own settings class (one per process): ``--hub-url`` /
``PILOTHOUSE_HUB_URL`` (default ``http://127.0.0.1:8700``) and ``--token`` /
``PILOTHOUSE_TOKEN``, or ``--token-file`` / ``PILOTHOUSE_TOKEN_FILE`` (default
``.pilothouse/admin-token``, where ``pilothouse up`` writes it). Results print
as aligned tables, or as JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pilothouse.agent.hublink.client import HubClient
from pilothouse.foundation.domain.vocabulary import Source, Status
from pilothouse.foundation.errors import ConfigError
from pilothouse.foundation.validation import explain


class ClientSettings(BaseSettings):
    """Settings of one CLI invocation that talks to a hub."""

    model_config = SettingsConfigDict(
        env_prefix="PILOTHOUSE_", extra="ignore", use_attribute_docstrings=True
    )

    hub_url: str = "http://127.0.0.1:8700"
    """Base URL of the hub."""
    token: SecretStr | None = None
    """Bearer token (admin token, or an agent token for agent-scoped calls)."""
    token_file: Path = Path(".pilothouse/admin-token")
    """File to read the token from when no token is given."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Time budget of one request."""


def add_connection_flags(parser: argparse.ArgumentParser) -> None:
    """The flags every hub-facing command takes."""
    parser.add_argument("--hub-url", help="hub base URL (env PILOTHOUSE_HUB_URL)")
    parser.add_argument("--token", help="bearer token (env PILOTHOUSE_TOKEN)")
    parser.add_argument("--token-file", type=Path, help="read the token from this file")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


EVENT_FILTERS = (
    "prediction_environment_id",
    "deployment_id",
    "status",
    "type",
    "source",
    "since",
    "until",
    "q",
)
"""Query parameters of ``GET /api/v1/events`` and its export, as the flags store them."""


def add_event_filters(parser: argparse.ArgumentParser) -> None:
    """The event filter flags shared by ``events list`` and ``events export``."""
    parser.add_argument("--pe", dest="prediction_environment_id")
    parser.add_argument("--deployment", dest="deployment_id")
    parser.add_argument("--status", choices=[s.value for s in Status])
    parser.add_argument("--type")
    parser.add_argument("--source", choices=[s.value for s in Source])
    parser.add_argument("--since", help="RFC 3339 time")
    parser.add_argument("--until", help="RFC 3339 time")
    parser.add_argument("-q", dest="q", help="full-text search in message and data")


def event_filters(args: argparse.Namespace) -> dict[str, str]:
    """The filters given as flags, as query parameters."""
    return {k: str(getattr(args, k)) for k in EVENT_FILTERS if getattr(args, k) is not None}


def client(args: argparse.Namespace) -> HubClient:
    """A hub client from flags, environment and the token file."""
    flags = {
        k: v
        for k, v in {
            "hub_url": args.hub_url,
            "token": args.token,
            "token_file": args.token_file,
        }.items()
        if v is not None
    }
    try:
        settings = ClientSettings(**flags)
    except ValidationError as exc:
        raise ConfigError(explain(exc), source="client settings") from None
    token = (
        settings.token.get_secret_value() if settings.token else _read_token(settings.token_file)
    )
    return HubClient(settings.hub_url, token, timeout_s=settings.timeout_s)


def _read_token(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        raise ConfigError(
            [f"token: not given (--token or PILOTHOUSE_TOKEN) and {path} cannot be read"],
            source="client settings",
        ) from None


def run(args: argparse.Namespace, work: Callable[[HubClient], Awaitable[int]]) -> int:
    """Run ``work`` with a client, closing it afterwards."""
    hub = client(args)  # reads the token file: before the loop runs, not on it

    async def main() -> int:
        try:
            return await work(hub)
        finally:
            await hub.close()

    return asyncio.run(main())


def emit(args: argparse.Namespace, data: Any, columns: Sequence[str]) -> None:
    """Print ``data`` (an object or a list of objects) as JSON or as a table."""
    if args.json:
        sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    rows = data if isinstance(data, list) else [data]
    print_table([[_cell(_get(row, col)) for col in columns] for row in rows], columns)


def print_table(rows: Iterable[Sequence[str]], header: Sequence[str]) -> None:
    """Print rows with aligned columns under an upper-case header."""
    rows = list(rows)
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    print("  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _get(row: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        row = row.get(part) if isinstance(row, dict) else None
    return row


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list | dict):
        return orjson.dumps(value).decode()
    return str(value)
