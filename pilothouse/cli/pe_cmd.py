"""``pilothouse pe``: prediction environments and their agent tokens."""

from __future__ import annotations

import argparse
from typing import Any

from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.cli import remote

_COLUMNS = ["id", "name", "platform", "agent.online", "agent.last_heartbeat_at"]


def register(sub: Any) -> None:
    """Add ``pe create|list|get|token``."""
    pe = sub.add_parser("pe", help="prediction environments on a hub")
    cmds = pe.add_subparsers(dest="pe_command", required=True, metavar="COMMAND")
    create = cmds.add_parser("create", help="register a prediction environment")
    create.add_argument("name")
    create.add_argument(
        "--platform", required=True, choices=["process", "docker", "kubernetes", "command", "test"]
    )
    create.add_argument("--description", default="")
    create.add_argument(
        "--plugin-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a plugin setting (repeatable)",
    )
    create.set_defaults(handler=_create)
    listing = cmds.add_parser("list", help="list prediction environments")
    listing.set_defaults(handler=_list)
    get = cmds.add_parser("get", help="show one prediction environment")
    get.add_argument("id")
    get.set_defaults(handler=_get)
    token = cmds.add_parser("token", help="issue an agent token for a PE (shown once)")
    token.add_argument("id")
    token.set_defaults(handler=_token)
    for parser in (create, listing, get, token):
        remote.add_connection_flags(parser)


def _create(args: argparse.Namespace) -> int:
    settings = dict(_pair(kv) for kv in args.plugin_setting)
    body = {
        "name": args.name,
        "platform": args.platform,
        "description": args.description,
        "plugin_settings": settings,
    }

    async def work(hub: HubClient) -> int:
        remote.emit(
            args, await hub.request("POST", f"{API}/prediction-environments", body=body), _COLUMNS
        )
        return 0

    return remote.run(args, work)


def _list(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        page = await hub.request("GET", f"{API}/prediction-environments")
        remote.emit(args, page["items"], _COLUMNS)
        return 0

    return remote.run(args, work)


def _get(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        remote.emit(
            args, await hub.request("GET", f"{API}/prediction-environments/{args.id}"), _COLUMNS
        )
        return 0

    return remote.run(args, work)


def _token(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        issued = await hub.request("POST", f"{API}/prediction-environments/{args.id}/agent-tokens")
        if args.json:
            remote.emit(args, issued, [])
        else:
            print(issued["token"])
        return 0

    return remote.run(args, work)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"pilothouse: --plugin-setting: expected KEY=VALUE, got {text!r}")
    return key, value
