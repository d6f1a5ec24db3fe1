"""From a lower layer's failures to the agent's two kinds of plugin error, in one place.

The action runner decides about a retry from the error's class alone
(:class:`~pilothouse.agent.errors.TemporaryPluginError` is retried with
backoff, :class:`~pilothouse.agent.errors.PermanentPluginError` is final), so
every plugin must translate what its client library raises. Server-running
plugins all talk HTTP — to a prediction server, the Docker engine, a
Kubernetes API server — and the translation is the same for all of them; like
httpx's ``map_httpcore_exceptions``, it is written once, here::

    failure                                   kind
    ────────────────────────────────────────  ──────────────────────────────────────
    no answer: refused, reset, DNS, timeout    temporary
    408 Request Timeout, 425 Too Early,        temporary, not before ``Retry-After``
    429 Too Many Requests                      (the error's ``delay``) when given
    409 Conflict                               temporary: the object changed meanwhile;
                                               re-read it and try again
    5xx                                        temporary
    any other 4xx                              permanent: the request itself is wrong

A plugin raises the result ``from`` the library's exception, so the cause
stays in the log while the message the user reads names what failed.
"""

from __future__ import annotations

import contextlib
import email.utils
import time
from collections.abc import Iterator

import aiohttp

from pilothouse.agent.errors import PermanentPluginError, PluginError, TemporaryPluginError

TEMPORARY_STATUSES = frozenset({408, 409, 425, 429})
"""4xx answers that retrying later can cure."""

NO_ANSWER = (aiohttp.ClientError, OSError, TimeoutError)
"""What a request that got no usable answer raises (aiohttp, sockets, timeouts)."""


def is_temporary(status: int) -> bool:
    """Whether an HTTP error status may go away by itself."""
    return status >= 500 or status in TEMPORARY_STATUSES


def from_status(
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    deployment_id: str | None = None,
) -> PluginError:
    """The plugin error for an HTTP error answer (``status`` ≥ 400)."""
    if status < 400:
        raise ValueError(f"HTTP {status} is not an error")
    if is_temporary(status):
        return TemporaryPluginError(message, deployment_id=deployment_id, delay=retry_after)
    return PermanentPluginError(message, deployment_id=deployment_id)


def from_client_error(
    exc: BaseException, what: str, *, deployment_id: str | None = None
) -> PluginError:
    """The plugin error for a request that failed in the client, ``what`` naming the peer.

    An ``aiohttp.ClientResponseError`` (``raise_for_status``) carries an answer and
    is mapped by its status; anything else got no answer and may work later.
    """
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status >= 400:
        retry = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        return from_status(
            exc.status, f"{what} answered {exc.status}: {exc.message}",
            retry_after=retry, deployment_id=deployment_id,
        )  # fmt: skip
    detail = f"{type(exc).__name__} {exc}".rstrip()
    return TemporaryPluginError(f"{what} unreachable: {detail}", deployment_id=deployment_id)


@contextlib.contextmanager
def translated(what: str, *, deployment_id: str | None = None) -> Iterator[None]:
    """Raise :func:`from_client_error`'s plugin error for a request that got no answer."""
    try:
        yield
    except NO_ANSWER as exc:
        raise from_client_error(exc, what, deployment_id=deployment_id) from exc


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
