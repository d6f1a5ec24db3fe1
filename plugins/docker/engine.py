"""The Docker engine: the client, and the one place its errors become plugin errors.

Like httpx's ``map_httpcore_exceptions``, every call to the engine runs inside
:func:`translated`, which turns what ``aiodocker`` (and aiohttp under it)
raises into the plugin error tree, naming what failed and why, with the
engine's own words. Nothing of ``aiodocker`` leaks past this module::

    PluginError
    ├── TemporaryPluginError ............ retried by the agent with backoff
    │   ├── PluginNotReadyError
    │   │   └── EngineUnreachable ....... no answer: socket refused, reset, timeout
    │   ├── EngineBusy .................. 409, or a 5xx the engine did not explain better
    │   ├── PortClash ................... the host port is taken by someone else
    │   └── DiskFull .................... no space left on the engine's disk
    └── PermanentPluginError ............ final for this action
        ├── ImageMissing ................ no such image, and it cannot be pulled
        ├── MountRefused ................ a mount the engine cannot make
        ├── NotFound .................... the object is gone (404)
        └── EngineRefused ............... any other 4xx: the request itself is wrong

The engine answers 500 for many causes it knows precisely; the message tells
them apart (``port is already allocated``, ``no space left on device``, …),
and the user reads the engine's message in the event.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator

import aiodocker
import aiohttp

from pilothouse.agent.errors import (
    PermanentPluginError,
    PluginError,
    PluginNotReadyError,
    TemporaryPluginError,
)
from pilothouse.plugins.docker.settings import EngineSettings

CANNOT_CONNECT = 900
"""aiodocker's status for a request that reached no engine."""


class EngineUnreachable(PluginNotReadyError):
    """The engine does not answer (stopped, wrong address, network down)."""


class EngineBusy(TemporaryPluginError):
    """The engine answered with a conflict or a failure that may pass."""


class PortClash(TemporaryPluginError):
    """The host port asked for is taken."""


class DiskFull(TemporaryPluginError):
    """The engine's disk is full."""


class ImageMissing(PermanentPluginError):
    """The server image is not on the engine and cannot be pulled."""


class MountRefused(PermanentPluginError):
    """The engine cannot make a mount (a missing host path, a refused bind)."""


class NotFound(PermanentPluginError):
    """The container, volume, network or image is gone."""


class EngineRefused(PermanentPluginError):
    """The engine refused the request (4xx)."""


_PORT_CLASH = ("port is already allocated", "address already in use")
_DISK_FULL = ("no space left on device",)
_MOUNT = ("invalid mount config", "bind source path does not exist", "error while mounting",
          "mounts denied", "invalid volume specification")  # fmt: skip
_IMAGE = ("no such image", "pull access denied", "manifest unknown", "repository does not exist")


def connect(settings: EngineSettings) -> aiodocker.Docker:
    """A client for the engine (no call is made yet)."""
    url = settings.url
    context: ssl.SSLContext | None = None
    if url.startswith("tcp://"):
        scheme = "https://" if settings.tls is not None else "http://"
        url = scheme + url.removeprefix("tcp://")
        if settings.tls is not None:
            context = _tls_context(settings)
    timeout = aiohttp.ClientTimeout(total=None, connect=10.0, sock_read=settings.timeout_s)
    try:
        return aiodocker.Docker(url=url, ssl_context=context, timeout=timeout)
    except ValueError as exc:  # aiodocker's word for an address it cannot use
        raise PermanentPluginError(f"plugin_settings.engine.url: {exc}") from exc


def _tls_context(settings: EngineSettings) -> ssl.SSLContext:
    tls = settings.tls
    assert tls is not None
    try:
        context = ssl.create_default_context(cafile=str(tls.ca_cert))
        if tls.client_cert is not None:
            key = str(tls.client_key) if tls.client_key else None
            context.load_cert_chain(str(tls.client_cert), key)
    except (OSError, ssl.SSLError) as exc:
        raise PermanentPluginError(f"plugin_settings.engine.tls: cannot load: {exc}") from exc
    context.check_hostname = tls.verify_hostname
    return context


@contextlib.contextmanager
def translated(what: str, *, deployment_id: str | None = None) -> Iterator[None]:
    """Raise the plugin error for whatever the engine call in the block raised."""
    try:
        yield
    except aiodocker.DockerError as exc:
        raise from_docker(exc, what, deployment_id=deployment_id) from exc
    except (aiohttp.ClientError, OSError) as exc:
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
        raise EngineUnreachable(f"{what}: no answer ({detail})") from exc
    except TimeoutError as exc:
        raise EngineUnreachable(f"{what}: no answer in time") from exc


def from_docker(
    exc: aiodocker.DockerError, what: str, *, deployment_id: str | None = None
) -> PluginError:
    """The plugin error for one ``DockerError`` (see the tree above)."""
    status, message = int(exc.status), str(exc.message).strip()
    lower = message.lower()
    text = f"{what}: {message}"
    if status == CANNOT_CONNECT:
        return EngineUnreachable(f"{what}: no answer ({message})", deployment_id=deployment_id)
    if any(p in lower for p in _PORT_CLASH):
        return PortClash(f"{what}: the host port is taken: {message}", deployment_id=deployment_id)
    if any(p in lower for p in _DISK_FULL):
        return DiskFull(f"{what}: the engine's disk is full: {message}",
                        deployment_id=deployment_id)  # fmt: skip
    if any(p in lower for p in _MOUNT):
        return MountRefused(f"{what}: a mount was refused: {message}", deployment_id=deployment_id)
    if any(p in lower for p in _IMAGE):
        return ImageMissing(f"{what}: the image is missing: {message}",
                            deployment_id=deployment_id)  # fmt: skip
    if status == 404:
        return NotFound(text, deployment_id=deployment_id)
    if status == 409 or status >= 500 or status == 0:
        return EngineBusy(text, deployment_id=deployment_id)
    return EngineRefused(text, deployment_id=deployment_id)
