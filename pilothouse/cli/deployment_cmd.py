"""``pilothouse deployment``: create deployments, run actions, watch them converge, monitor them."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from pilothouse.agent.hublink.client import API, HubClient
from pilothouse.cli import remote

_COLUMNS = [
    "id",
    "name",
    "prediction_environment_id",
    "desired.state",
    "desired.model_package_id",
    "desired.generation",
    "observed.state",
    "observed.generation",
    "service_health.status",
    "observed.prediction_url",
    "observed.grpc_target",
]
_SETTLED = {"ready", "stopped", "errored"}


def register(sub: Any) -> None:
    """Add ``deployment create|list|get|action|delete|monitoring|promote``."""
    dep = sub.add_parser("deployment", help="deployments on a hub")
    cmds = dep.add_subparsers(dest="deployment_command", required=True, metavar="COMMAND")
    create = cmds.add_parser("create", help="create (and launch) a deployment")
    create.add_argument("--name", required=True)
    create.add_argument("--pe", required=True, dest="prediction_environment_id")
    create.add_argument("--package", required=True, dest="model_package_id")
    create.add_argument("--challenger", action="append", default=[], dest="challenger_ids")
    create.add_argument("--replicas", type=int)
    create.add_argument("--wait", action="store_true", help="wait until the agent reports it")
    create.add_argument("--timeout", type=float, default=120.0)
    create.set_defaults(handler=_create)
    listing = cmds.add_parser("list", help="list deployments with their health")
    listing.add_argument("--pe", dest="prediction_environment_id")
    listing.set_defaults(handler=_list)
    get = cmds.add_parser("get", help="show one deployment")
    get.add_argument("id")
    get.set_defaults(handler=_get)
    action = cmds.add_parser("action", help="launch, stop, relaunch or replace a model")
    action.add_argument("id")
    action.add_argument("action", choices=["launch", "stop", "relaunch", "replace_model"])
    action.add_argument("--package", dest="model_package_id", help="new model (replace_model)")
    action.add_argument("--wait", action="store_true", help="show state changes until settled")
    action.add_argument("--timeout", type=float, default=120.0)
    action.set_defaults(handler=_action)
    delete = cmds.add_parser("delete", help="delete a deployment (the agent stops it)")
    delete.add_argument("id")
    delete.set_defaults(handler=_delete)
    monitoring = cmds.add_parser(
        "monitoring", help="prediction statistics: requests, errors, latency, drift, challengers"
    )
    monitoring.add_argument("id")
    monitoring.add_argument("--from", dest="start", help="RFC 3339 start (default: an hour ago)")
    monitoring.add_argument("--to", dest="end", help="RFC 3339 end (default: now)")
    monitoring.add_argument("--step", type=int, help="seconds per row (default: span / 60)")
    monitoring.set_defaults(handler=_monitoring)
    promote = cmds.add_parser("promote", help="make a challenger the champion")
    promote.add_argument("id")
    promote.add_argument("package", help="the challenger's model package id")
    promote.set_defaults(handler=_promote)
    for parser in (create, listing, get, action, delete, monitoring, promote):
        remote.add_connection_flags(parser)


def _create(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "name": args.name,
        "prediction_environment_id": args.prediction_environment_id,
        "model_package_id": args.model_package_id,
        "challenger_ids": args.challenger_ids,
    }
    if args.replicas is not None:
        body["settings"] = {"replicas": args.replicas}

    async def work(hub: HubClient) -> int:
        created = await hub.request("POST", f"{API}/deployments", body=body)
        if args.wait:
            return await _wait(hub, args, created)
        remote.emit(args, created, _COLUMNS)
        return 0

    return remote.run(args, work)


def _list(args: argparse.Namespace) -> int:
    params = (
        {"prediction_environment_id": args.prediction_environment_id}
        if args.prediction_environment_id
        else None
    )

    async def work(hub: HubClient) -> int:
        page = await hub.request("GET", f"{API}/deployments", params=params)
        remote.emit(args, page["items"], _COLUMNS)
        return 0

    return remote.run(args, work)


def _get(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        remote.emit(args, await hub.request("GET", f"{API}/deployments/{args.id}"), _COLUMNS)
        return 0

    return remote.run(args, work)


def _action(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"action": args.action}
    if args.model_package_id:
        body["model_package_id"] = args.model_package_id

    async def work(hub: HubClient) -> int:
        dep = await hub.request("POST", f"{API}/deployments/{args.id}/actions", body=body)
        if args.wait:
            return await _wait(hub, args, dep)
        remote.emit(args, dep, _COLUMNS)
        return 0

    return remote.run(args, work)


def _monitoring(args: argparse.Namespace) -> int:
    params = {
        key: str(value)
        for key, value in (("from", args.start), ("to", args.end), ("step", args.step))
        if value is not None
    }

    async def work(hub: HubClient) -> int:
        found = await hub.request("GET", f"{API}/deployments/{args.id}/monitoring", params=params)
        if args.json:
            remote.emit(args, found, [])
            return 0
        drift = found["drift"]
        named = ", ".join(f"{k} {v:.3f}" for k, v in drift["features"].items())
        print(f"drift: {drift['status']}" + (f" ({named})" if named else ""))
        remote.print_table([_row(p) for p in found["points"]], _MONITORING_COLUMNS)
        return 0

    return remote.run(args, work)


_MONITORING_COLUMNS = [
    "start", "package", "requests", "error_rate", "p50_ms", "p95_ms", "p99_ms", "max_psi",
    "prediction_psi", "challengers", "accuracy",
]  # fmt: skip


def _row(point: dict[str, Any]) -> list[str]:
    drift = point["drift"]
    worst = max(drift.items(), key=lambda kv: kv[1], default=None)
    challengers = " ".join(
        f"{c['package_id']}:{_share(c['agreement'] if c['agreement'] is not None else None)}"
        + (f"/mad={c['mean_abs_difference']:.3g}" if c["mean_abs_difference"] is not None else "")
        for c in point["challengers"]
    )
    return [
        point["start"],
        point["package_id"],
        str(point["requests"]),
        _share(point["error_rate"]),
        _ms(point["latency_p50_s"]),
        _ms(point["latency_p95_s"]),
        _ms(point["latency_p99_s"]),
        f"{worst[1]:.3f} {worst[0]}" if worst else "-",
        "-" if point["prediction_drift"] is None else f"{point['prediction_drift']:.3f}",
        challengers or "-",
        _share(point["accuracy"]),
    ]


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _promote(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        body = {"package_id": args.package}
        dep = await hub.request("POST", f"{API}/deployments/{args.id}/promote", body=body)
        remote.emit(args, dep, _COLUMNS)
        return 0

    return remote.run(args, work)


def _delete(args: argparse.Namespace) -> int:
    async def work(hub: HubClient) -> int:
        await hub.request("DELETE", f"{API}/deployments/{args.id}")
        print(f"{args.id}: deletion requested; the agent stops it")
        return 0

    return remote.run(args, work)


async def _wait(hub: HubClient, args: argparse.Namespace, dep: dict[str, Any]) -> int:
    """Follow the agent's events for the requested generation until it has settled.

    Every event the agent reports for this generation is printed once, in order
    (so a fast ``launching`` is not missed between two looks at the observed
    state), then the observed state it settled in.
    """
    target = dep["desired"]["generation"]
    deadline = time.monotonic() + args.timeout
    shown: set[str] = set()
    while True:
        if not args.json:
            await _print_new_events(hub, dep["id"], target, shown)
        observed = dep["observed"]
        if (observed.get("generation") or 0) >= target and observed.get("state") in _SETTLED:
            if args.json:
                remote.emit(args, dep, _COLUMNS)
            else:
                print(f"{dep['id']}: {observed['state']} (generation {observed['generation']}, "
                      f"model {observed.get('model_package_id') or '-'})", flush=True)  # fmt: skip
            return 0 if observed["state"] != "errored" else 1
        if time.monotonic() > deadline:
            print(f"{dep['id']}: not settled after {args.timeout:g}s")
            return 1
        await asyncio.sleep(0.25)
        dep = await hub.request("GET", f"{API}/deployments/{dep['id']}")


async def _print_new_events(hub: HubClient, dep_id: str, generation: int, shown: set[str]) -> None:
    params = {"deployment_id": dep_id, "source": "agent", "limit": "100"}
    page = await hub.request("GET", f"{API}/events", params=params)
    for event in reversed(page["items"]):  # newest first on the wire
        if event["id"] in shown or event["data"].get("generation", 0) < generation:
            continue
        shown.add(event["id"])
        print(f"{dep_id}: {event['type']} {event['status']}: {event['message']}", flush=True)
