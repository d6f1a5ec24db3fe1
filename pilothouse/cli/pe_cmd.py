"""``pilothouse pe``: prediction environments and their tokens (issue, list, revoke).

``pe token … --package`` works on read-only package tokens instead of agent tokens: a
package token may only download the archives of the model packages the PE's deployments
use (what a Kubernetes pod's init container needs), nothing else.
"""

from __future__ import annotations

import argparse
from typing import Any

from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.cli import remote

_COLUMNS = ["id", "name", "platform", "agent.online", "agent.last_heartbeat_at"]
_TOKEN_COLUMNS = ["id", "prediction_environment_id", "created_at", "revoked_at"]


def register(sub: Any) -> None:
    """Add ``pe create|list|get`` and ``pe token issue|list|revoke``."""
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
    for parser in (create, listing, get, *_token_parsers(cmds)):
        remote.add_connection_flags(parser)


def _token_parsers(cmds: Any) -> list[argparse.ArgumentParser]:
    token = cmds.add_parser("token", help="agent (or package) tokens of a PE: issue, list, revoke")
    sub = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    issue = sub.add_parser("issue", help="issue an agent token for a PE (shown once)")
    issue.add_argument("id", help="the PE")
    issue.set_defaults(handler=_issue)
    listing = sub.add_parser("list", help="list a PE's agent tokens (never their secrets)")
    listing.add_argument("id", help="the PE")
    listing.set_defaults(handler=_tokens)
    revoke = sub.add_parser("revoke", help="revoke an agent token: refused from now on")
    revoke.add_argument("id", help="the PE")
    revoke.add_argument("token_id", help="the token's id (tok-… or pkt-…), as listed")
    revoke.set_defaults(handler=_revoke)
    for parser in (issue, listing, revoke):
        parser.add_argument(
            "--package",
            action="store_true",
            help="a read-only package token: downloads only the PE's model package archives",
        )
    return [issue, listing, revoke]


def _tokens_path(args: argparse.Namespace) -> str:
    kind = "package-tokens" if args.package else "agent-tokens"
    return f"{API}/prediction-environments/{args.id}/{kind}"


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


def _issue(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        issued = await hub.request("POST", _tokens_path(args))
        if args.json:
            remote.emit(args, issued, [])
        else:
            print(issued["token"])
        return 0

    return remote.run(args, work)


def _tokens(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        page = await hub.request("GET", _tokens_path(args))
        remote.emit(args, page["items"], _TOKEN_COLUMNS)
        return 0

    return remote.run(args, work)


def _revoke(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        path = f"{_tokens_path(args)}/{args.token_id}"
        remote.emit(args, await hub.request("DELETE", path), _TOKEN_COLUMNS)
        return 0

    return remote.run(args, work)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"pilothouse: --plugin-setting: expected KEY=VALUE, got {text!r}")
    return key, value
