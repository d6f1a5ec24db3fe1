"""``pilothouse events``: list a hub's events with filters; export them (``export_cmd``)."""

from __future__ import annotations

import argparse
from typing import Any

from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.cli import export_cmd, remote

_COLUMNS = ["time", "status", "type", "deployment_id", "message"]


def register(sub: Any) -> None:
    """Add ``events list`` and ``events export``."""
    events = sub.add_parser("events", help="events on a hub")
    cmds = events.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    listing = cmds.add_parser("list", help="list events, newest first")
    remote.add_event_filters(listing)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--all", action="store_true", help="follow every page")
    remote.add_connection_flags(listing)
    listing.set_defaults(handler=_list)
    export_cmd.register(cmds)


def _list(args: argparse.Namespace) -> int:
    params = remote.event_filters(args)
    params["limit"] = str(args.limit)

    async def work(hub: HubClient) -> int:
        items: list[dict[str, Any]] = []
        while True:
            page = await hub.request("GET", f"{API}/events", params=params)
            items.extend(page["items"])
            if not args.all or not page.get("next_cursor"):
                break
            params["cursor"] = page["next_cursor"]
        remote.emit(args, items, _COLUMNS)
        return 0

    return remote.run(args, work)
