"""The containers the plugin runs: their handles, and the engine's create body for each.

A *server* is a container running ``pilothouse serve`` with a named volume of
its own at ``/var/lib/pilothouse``: the server's state (the deployments it
serves, unpacked packages), the package archives put into it, and its admin
token. The token is a file put there before the first start, read by the
container's entry command into the server's environment, and read back with
``get_archive`` by a later agent that adopts the server — it is in no label
and in no part of the container's configuration (``docker inspect`` shows none).
Because the volume outlives the container, a server removed behind the
agent's back is re-created on the same volume, with its token and its
deployments.

A *front* (dedicated mode only, :mod:`.fronts`) is the stable entry clients
reach a deployment through, so its server can be replaced beside it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pilothouse.foundation.domain.desired import DesiredDeployment
from pilothouse.plugins.docker import labels, resources
from pilothouse.plugins.docker.settings import DockerPluginSettings
from pilothouse.plugins.fleet import ServerAPI

PORT = 8702
"""The port every server and front listens on inside its container."""
GRPC_PORT = 8701
"""The gRPC port of a server inside its container (``plugin_settings.grpc``)."""
VOLUME = "/var/lib/pilothouse"
"""Where each container's own volume is mounted."""
TOKEN_FILE = "admin-token"
PACKAGES = "packages"
BACKEND_FILE = "backend"
"""The front's backend URL, a file in the front's volume (see :mod:`.fronts`)."""
FRONT_PATH = "/_pilothouse/front"
"""The front's own status endpoint: which backend it sends requests to."""

# The server reads its admin token from its volume: the token never enters the
# container's configuration, where `docker inspect` would show it to anyone.
_SERVE = (
    f"read -r PILOTHOUSE_SERVE_ADMIN_TOKEN < {VOLUME}/{TOKEN_FILE} "
    "&& export PILOTHOUSE_SERVE_ADMIN_TOKEN && exec pilothouse serve"
)


@dataclass(slots=True, eq=False)
class Endpoint:
    """Where one container is reached: by the agent and by clients."""

    name: str
    reach: str
    agent_host: str
    public_host: str
    host_port: int | None = None
    id: str | None = None
    grpc_host_port: int | None = None
    """Where its gRPC port is published, if it has one (servers with ``grpc`` only)."""

    @property
    def agent_url(self) -> str:
        """Where the agent reaches it."""
        if self.reach == "network":
            return f"http://{labels.alias(self.name)}:{PORT}"
        return f"http://{self.agent_host}:{self.host_port}"

    @property
    def public_url(self) -> str:
        """Where clients reach it (its published port)."""
        return f"http://{self.public_host}:{self.host_port}"


@dataclass(slots=True, eq=False)
class Front:
    """The stable entry of one dedicated deployment."""

    key: str
    endpoint: Endpoint
    body: dict[str, Any]
    backend: str | None = None
    """The URL it sends requests to (a server by its alias on the network)."""


@dataclass(slots=True, eq=False)
class Server:
    """One prediction server container (a :class:`~pilothouse.plugins.fleet.ServerHandle`)."""

    key: str
    token: str
    endpoint: Endpoint
    body: dict[str, Any]
    """Its create body: a container removed behind the agent's back is created again from it."""
    spec_digest: str | None = None
    front: Front | None = None
    delivered: set[str] = field(default_factory=set)
    """sha256 of the package archives already in its volume."""
    api: ServerAPI | None = field(default=None, repr=False)
    grpc_port: int | None = None
    """The gRPC port the server says it serves on inside its container (set by the fleet)."""

    @property
    def name(self) -> str:
        """Its container's (and volume's) name."""
        return self.endpoint.name

    @property
    def base_url(self) -> str:
        """Where the agent reaches it."""
        return self.endpoint.agent_url

    @property
    def public_url(self) -> str:
        """Where clients reach it: its front in dedicated mode, its own port in shared mode."""
        front = self.front.endpoint if self.front is not None else self.endpoint
        return front.public_url

    @property
    def grpc_target(self) -> str | None:
        """Where gRPC clients reach it: its own published gRPC port (fronts speak HTTP only)."""
        if self.grpc_port is None or self.endpoint.grpc_host_port is None:
            return None
        return f"{self.endpoint.public_host}:{self.endpoint.grpc_host_port}"

    @property
    def backend_url(self) -> str:
        """How its front reaches it on the network."""
        return f"http://{labels.alias(self.name)}:{PORT}"


def server_body(
    s: DockerPluginSettings, scope: labels.Scope, key: str, name: str,
    spec: DesiredDeployment | None,
) -> dict[str, Any]:  # fmt: skip
    """The create body of a server container (its host port is set by :func:`with_port`)."""
    labels_ = scope.labels(labels.SERVER, key, spec)
    env = [f"PILOTHOUSE_SERVE_PORT={PORT}", "PILOTHOUSE_SERVE_HOST=0.0.0.0",
           f"PILOTHOUSE_SERVE_STATE_DIR={VOLUME}/serve"]  # fmt: skip
    if s.grpc:
        env.append(f"PILOTHOUSE_SERVE_GRPC_PORT={GRPC_PORT}")
    if spec is not None:
        env += [f"{k}={v}" for k, v in sorted(spec.settings.env.items())]
    host = _host_config(s, name, labels_)
    host["Mounts"] += [_bind(m) for m in s.mounts]
    host |= _limits(s, spec)
    body = _body(s, name, labels_, env, ["/bin/sh", "-c", _SERVE], host)
    if s.grpc:
        body["ExposedPorts"][f"{GRPC_PORT}/tcp"] = {}
    return body


def front_body(s: DockerPluginSettings, scope: labels.Scope, key: str, name: str) -> dict[str, Any]:
    """The create body of a front container (see :mod:`.fronts`).

    No engine health check: its death is told by the event stream, and a check costs a
    Python process each time (a host with many deployments would spend its CPU on them).
    """
    labels_ = scope.labels(labels.FRONT, key)
    entry = ["python", "-m", "pilothouse.plugins.docker.front", "--port", str(PORT),
             "--backend-file", f"{VOLUME}/{BACKEND_FILE}"]  # fmt: skip
    body = _body(s, name, labels_, [], entry, _host_config(s, name, labels_))
    body["Healthcheck"] = {"Test": ["NONE"]}
    return body


def with_port(body: dict[str, Any], host_ip: str, host_port: int | None) -> dict[str, Any]:
    """``body`` publishing the container's port on ``host_port`` (None: an ephemeral one).

    A server's gRPC port, when it has one, is published on an ephemeral port of ``host_ip``.
    """
    out = copy.deepcopy(body)
    binding = {"HostIp": host_ip, "HostPort": "" if host_port is None else str(host_port)}
    bindings = {f"{PORT}/tcp": [binding]}
    if f"{GRPC_PORT}/tcp" in (out.get("ExposedPorts") or {}):
        bindings[f"{GRPC_PORT}/tcp"] = [{"HostIp": host_ip, "HostPort": ""}]
    out["HostConfig"]["PortBindings"] = bindings
    return out


def published_port(info: dict[str, Any], port: int = PORT) -> int | None:
    """The host port a container's ``port`` is published on (``docker inspect``)."""
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in ports.get(f"{port}/tcp") or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def body_of(info: dict[str, Any]) -> dict[str, Any]:
    """The create body of an existing container, from ``docker inspect`` (to re-create it)."""
    config, host = info["Config"], info["HostConfig"]
    body = {k: config.get(k) for k in ("Image", "Entrypoint", "Cmd", "Env", "Labels",
                                        "ExposedPorts", "Healthcheck")}  # fmt: skip
    kept = ("PortBindings", "RestartPolicy", "Mounts", "NanoCpus", "Memory", "MemorySwap",
            "NetworkMode")  # fmt: skip
    body["HostConfig"] = {k: host.get(k) for k in kept}
    body["NetworkingConfig"] = info.get("NetworkingConfig") or _networking(
        host.get("NetworkMode"), info["Name"].lstrip("/")
    )
    return body


def _body(
    s: DockerPluginSettings, name: str, labels_: dict[str, str], env: list[str],
    entrypoint: list[str], host: dict[str, Any],
) -> dict[str, Any]:  # fmt: skip
    return {
        "Image": s.image,
        "Entrypoint": entrypoint,
        "Cmd": [],
        "Env": env,
        "Labels": labels_,
        "ExposedPorts": {f"{PORT}/tcp": {}},
        "Healthcheck": {"Interval": int(s.health_interval_s * 1e9)},
        "HostConfig": host,
        "NetworkingConfig": _networking(s.network, name),
    }


def _host_config(s: DockerPluginSettings, name: str, labels_: dict[str, str]) -> dict[str, Any]:
    restart: dict[str, Any] = {"Name": s.restart_policy}
    if s.restart_policy == "on-failure":
        restart["MaximumRetryCount"] = s.restart_max_retries
    volume = {"Type": "volume", "Source": name, "Target": VOLUME,
              "VolumeOptions": {"Labels": labels_}}  # fmt: skip
    return {"RestartPolicy": restart, "Mounts": [volume], "NetworkMode": s.network}


def _networking(network: str | None, name: str) -> dict[str, Any]:
    if not network or network in ("host", "none", "bridge", "default"):
        return {}
    return {"EndpointsConfig": {network: {"Aliases": [labels.alias(name)]}}}


def _bind(mount: str) -> dict[str, Any]:
    source, target, *mode = mount.split(":")
    return {"Type": "bind", "Source": source, "Target": target, "ReadOnly": mode == ["ro"]}


def _limits(s: DockerPluginSettings, spec: DesiredDeployment | None) -> dict[str, Any]:
    asked = spec.settings.resources if spec is not None else None
    cpu = (asked.cpu if asked else None) or s.limits.cpu
    memory = (asked.memory if asked else None) or s.limits.memory
    limits: dict[str, Any] = {}
    if cpu:
        limits["NanoCpus"] = resources.nano_cpus(cpu)
    if memory:
        limits["Memory"] = resources.memory_bytes(memory)
        limits["MemorySwap"] = limits["Memory"]  # no swap beyond the limit: OOM is OOM
    return limits
