"""Settings of the ``docker`` plugin (``plugin_settings`` in the agent's config).

Everything is checked when the plugin starts, and a wrong value is refused
naming its field (``plugin_settings.ports.range: …``), so a mistake never
reaches the engine. ``pilothouse plugins settings docker`` prints the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from pilothouse.plugins.docker import resources
from pilothouse.plugins.fleet import FleetSettings

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,29}$"
"""A short word that is safe in container and volume names and in DNS."""
USER_DEFINED_NETWORK_NEEDED = ("bridge", "host", "none")


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class TlsSettings(_Group):
    """Client certificates for an engine reached over TCP (``dockerd --tlsverify``)."""

    ca_cert: Path
    """The CA that signed the engine's certificate (``ca.pem``)."""
    client_cert: Path | None = None
    """This agent's certificate (``cert.pem``), when the engine verifies clients."""
    client_key: Path | None = None
    """Its key (``key.pem``)."""
    verify_hostname: bool = True
    """Check that the engine's certificate names the host of ``engine.url``."""


class EngineSettings(_Group):
    """Where the Docker engine is, and how long its calls may take."""

    url: str = Field(default="unix:///var/run/docker.sock", pattern=r"^(unix|tcp)://.+")
    """``unix:///path/to/docker.sock``, or ``tcp://host:port`` (with ``tls`` for 2376)."""
    tls: TlsSettings | None = None
    """Certificates for a TCP engine; without them TCP is plain HTTP (only on a trusted host)."""
    timeout_s: float = Field(default=60.0, gt=0)
    """Time budget of one engine call (creating, starting, stopping a container)."""


class PortSettings(_Group):
    """How each server's port is published on the engine's host."""

    host_ip: str = "127.0.0.1"
    """Host address ports are published on (``0.0.0.0``: every interface)."""
    range: str | None = Field(default=None, pattern=r"^\d{1,5}-\d{1,5}$")
    """``30000-30999``: the host ports to use, lowest free first; unset, the engine picks an
    ephemeral port (read back from the engine)."""

    @field_validator("range")
    @classmethod
    def _ordered(cls, value: str | None) -> str | None:
        if value is not None:
            low, high = (int(p) for p in value.split("-"))
            if not 1 <= low <= high <= 65535:
                raise ValueError("expected LOW-HIGH with 1 <= LOW <= HIGH <= 65535")
        return value

    def bounds(self) -> tuple[int, int] | None:
        """The range as (low, high), or None for ephemeral ports."""
        if self.range is None:
            return None
        low, high = (int(p) for p in self.range.split("-"))
        return low, high


class LimitSettings(_Group):
    """CPU and memory limits of a server container (Kubernetes-style quantities)."""

    cpu: str | None = None
    """CPUs: ``500m`` (half a CPU), ``2``; unset: no limit."""
    memory: str | None = None
    """Memory: ``512Mi``, ``1Gi``, ``800M``; unset: no limit."""

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        if value is not None:
            resources.nano_cpus(value)
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        if value is not None:
            resources.memory_bytes(value)
        return value


class DockerPluginSettings(FleetSettings):
    """How prediction servers run as containers (and the fleet's own settings)."""

    engine: EngineSettings = Field(default_factory=EngineSettings)
    """The engine to talk to."""
    image: str = "pilothouse:latest"
    """The image of the prediction server (``make image`` builds it)."""
    pull: Literal["never", "missing", "always"] = "missing"
    """Pull the image before the first server starts: never, when missing, always."""
    network: str = "pilothouse"
    """The network servers join (created, labelled, when missing); in ``dedicated`` mode a
    user-defined network, since the front container finds its server by name on it."""
    ports: PortSettings = Field(default_factory=PortSettings)
    """Host ports."""
    agent_host: str = "127.0.0.1"
    """Where the agent reaches published ports: the engine's host (for a TCP engine, its name)."""
    public_host: str | None = None
    """Host name in prediction URLs, when clients know the engine's host by another name."""
    reach: Literal["published", "network"] = "published"
    """How the agent reaches servers: through published ports, or by name on ``network``
    (an agent running in a container on that network)."""
    grpc: bool = False
    """Servers serve gRPC (Open Inference Protocol) too, on container port 8701 published on
    an ephemeral port of ``ports.host_ip``; deployments report it as ``grpc_target``. The
    image needs ``pilothouse[grpc]`` (``EXTRAS=sklearn,docker,grpc make image``). In dedicated
    mode gRPC clients reach the server itself (fronts speak HTTP): a replacement moves it."""
    restart_policy: Literal["no", "on-failure", "unless-stopped", "always"] = "unless-stopped"
    """The engine's own restart policy for server containers (it covers the time no agent
    runs; the agent's crash watch restarts a server it sees die, with backoff)."""
    restart_max_retries: int = Field(default=0, ge=0)
    """With ``on-failure``: how many times the engine restarts (0: no bound)."""
    limits: LimitSettings = Field(default_factory=LimitSettings)
    """Limits of the shared server, and of a dedicated one whose deployment asks for none
    (a deployment's ``settings.resources`` win)."""
    mounts: list[str] = Field(default_factory=list)
    """Extra bind mounts into every server, ``/host/path:/container/path[:ro]``."""
    owner: str = Field(default="pilothouse", pattern=NAME_PATTERN)
    """Tells apart installations sharing one engine: the ``io.pilothouse.owner`` label and the
    first word of every name; the agent touches nothing of another owner."""
    user: str = Field(default="10001:10001", pattern=r"^\d+:\d+$")
    """uid:gid the image runs as: files put into a container are owned by it."""
    stop_timeout_s: int = Field(default=10, ge=0)
    """How long a stopped server may finish its requests before it is killed."""
    health_interval_s: float = Field(default=30.0, gt=0)
    """How often the engine runs the image's health check (its ``health_status`` events). Each
    check starts a Python process in the container: deaths are told by the event stream at
    once and the agent probes deployments itself, so this is a slow second opinion."""
    stop_idle_shared_server: bool = True
    """Remove the shared server's container when its last deployment stops."""

    @field_validator("network")
    @classmethod
    def _named_network(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("mode") == "dedicated" and value in USER_DEFINED_NETWORK_NEEDED:
            raise ValueError(
                f"dedicated mode needs a user-defined network (not {value!r}): the front "
                "container finds its server by name"
            )
        return value

    @field_validator("mounts")
    @classmethod
    def _mounts(cls, value: list[str]) -> list[str]:
        for mount in value:
            parts = mount.split(":")
            if len(parts) not in (2, 3) or not all(p.startswith("/") for p in parts[:2]):
                raise ValueError(f"{mount!r}: expected /host/path:/container/path[:ro]")
            if len(parts) == 3 and parts[2] not in ("ro", "rw"):
                raise ValueError(f"{mount!r}: the mode is ro or rw")
        return value
