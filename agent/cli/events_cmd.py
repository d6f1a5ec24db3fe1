"""``pilothouse events``: list a hub's events with filters; export them (``export_cmd``)."""

from __future__ import annotations

import argparse
from typing import Any

from agent.cli import export_cmd, remote
from agent.hublink.client import API, HubClient

_FILTERS = (
    "prediction_environment_id",
    "deployment_id",
    "status",
    "type",
    "source",
    "since",
    "until",
    "q",
)
_COLUMNS = ["time", "status", "type", "deployment_id", "message"]


def register(sub: Any) -> None:
    """Add ``events list`` and ``events export``."""
    events = sub.add_parser("events", help="events on a hub")
    cmds = events.add_subparsers(dest="events_command", required=True, metavar="COMMAND")
    listing = cmds.add_parser("list", help="list events, newest first")
    listing.add_argument("--pe", dest="prediction_environment_id")
    listing.add_argument("--deployment", dest="deployment_id")
    listing.add_argument(
        "--status", choices=["passing", "at_risk", "failing", "unknown", "informational"]
    )
    listing.add_argument("--type")
    listing.add_argument("--source", choices=["agent", "hub", "user", "monitor"])
    listing.add_argument("--since", help="RFC 3339 time")
    listing.add_argument("--until", help="RFC 3339 time")
    listing.add_argument("-q", dest="q", help="full-text search in message and data")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--all", action="store_true", help="follow every page")
    remote.add_connection_flags(listing)
    listing.set_defaults(handler=_list)
    export_cmd.register(cmds)


def _list(args: argparse.Namespace) -> int:
    params = {k: str(getattr(args, k)) for k in _FILTERS if getattr(args, k) is not None}
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
