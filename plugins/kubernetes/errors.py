"""From the Kubernetes API's answers to the agent's plugin errors, in exactly one place.

Every call the plugin makes to the API server goes through
:func:`~pilothouse.plugins.kubernetes.api.Kube.call`, which raises what
:func:`from_answer` or :func:`translated` make of a failure — so
``kubernetes_asyncio``'s ``ApiException`` and aiohttp's errors never leak
past the plugin. On top of the fleet kit's HTTP mapping
(:mod:`pilothouse.plugins.fleet.errors`), the API server's ``Status`` body
says more, and the user gets it::

    answer                          error                            message names
    ──────────────────────────────  ───────────────────────────────  ─────────────────────────────
    403 Forbidden (RBAC)            PermanentPluginError             the verb, resource, API group
                                    (:class:`ForbiddenError`)        and namespace to grant
    422 Unprocessable (invalid)     PermanentPluginError             each invalid field and why
    404 Not Found                   :class:`NotFoundError`           the object (callers decide)
    409 Conflict / AlreadyExists    :class:`ConflictError`           the object; callers re-read
                                    (temporary)                      and retry
    410 Gone (watch)                :class:`GoneError`               the watcher lists again
    429, 5xx, no answer, timeout    TemporaryPluginError             the API server and what failed
    other 4xx                       PermanentPluginError             the API server's message
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from pilothouse.agent.errors import PermanentPluginError, PluginError, TemporaryPluginError
from pilothouse.plugins.fleet import errors as http_errors


@dataclass(frozen=True, slots=True)
class Operation:
    """One call to the API server, for messages: ``create deployments.apps "ph-x" in "ns"``."""

    verb: str
    """The RBAC verb (``get``, ``list``, ``watch``, ``create``, ``update``, ``delete``)."""
    resource: str
    """The plural resource (``deployments``, ``pods/log``)."""
    group: str
    """The API group (``apps``; ``""`` for the core group)."""
    namespace: str
    name: str | None = None

    def describe(self) -> str:
        """The operation in words."""
        what = f"{self.resource}.{self.group}" if self.group else self.resource
        named = f" {self.name!r}" if self.name else ""
        return f"{self.verb} {what}{named} in namespace {self.namespace!r}"


class NotFoundError(PermanentPluginError):
    """The object does not exist (404); most callers treat that as an answer."""


class ConflictError(TemporaryPluginError):
    """The object changed meanwhile, or already exists (409): re-read it and try again."""

    def __init__(self, message: str, *, reason: str, deployment_id: str | None = None) -> None:
        super().__init__(message, deployment_id=deployment_id)
        self.reason = reason
        """``AlreadyExists`` or ``Conflict``."""


class ForbiddenError(PermanentPluginError):
    """RBAC refused the call: the plugin's service account lacks a permission."""

    def __init__(self, message: str, *, operation: Operation) -> None:
        super().__init__(message)
        self.operation = operation


class GoneError(TemporaryPluginError):
    """A watch asked for a ``resourceVersion`` the API server no longer keeps (410)."""


def from_answer(
    status: int,
    body: bytes,
    op: Operation,
    *,
    retry_after: str | None = None,
    deployment_id: str | None = None,
) -> PluginError:
    """The plugin error for an error answer of the API server."""
    doc = _status_doc(body)
    detail = str(doc.get("message") or body[:300].decode(errors="replace") or f"HTTP {status}")
    where = f"Kubernetes API: {op.describe()}"
    if status == 403:
        grant = f"grant verb {op.verb!r} on {op.resource!r} in API group {op.group or 'core'!r}"
        return ForbiddenError(
            f"{where}: forbidden by RBAC ({detail}); the plugin's service account needs a Role "
            f"in namespace {op.namespace!r} that may {grant} (see deploy/kubernetes/role.yaml)",
            operation=op,
        )
    if status == 422:
        return PermanentPluginError(
            f"{where}: invalid object: {_causes(doc) or detail}", deployment_id=deployment_id
        )
    if status == 404:
        return NotFoundError(f"{where}: not found ({detail})", deployment_id=deployment_id)
    if status == 409:
        reason = str(doc.get("reason") or "Conflict")
        return ConflictError(
            f"{where}: {reason}: {detail}", reason=reason, deployment_id=deployment_id
        )
    if status == 410:
        return GoneError(f"{where}: {detail}", deployment_id=deployment_id)
    return http_errors.from_status(
        status,
        f"{where}: answered {status}: {detail}",
        retry_after=http_errors.parse_retry_after(retry_after),
        deployment_id=deployment_id,
    )


@contextlib.contextmanager
def translated(op: Operation, *, deployment_id: str | None = None) -> Iterator[None]:
    """Turn a call that got no answer (or the client's own ``ApiException``) into a plugin error."""
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        yield
    except ApiException as exc:  # raised by the client itself (status 0: no request made)
        body = exc.body.encode() if isinstance(exc.body, str) else (exc.body or b"")
        if not exc.status:
            raise TemporaryPluginError(
                f"Kubernetes API: {op.describe()}: {exc.reason}", deployment_id=deployment_id
            ) from exc
        raise from_answer(exc.status, body, op, deployment_id=deployment_id) from exc
    except http_errors.NO_ANSWER as exc:
        detail = f"{type(exc).__name__} {exc}".rstrip()
        raise TemporaryPluginError(
            f"Kubernetes API unreachable: {op.describe()}: {detail}", deployment_id=deployment_id
        ) from exc


def _status_doc(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _causes(doc: dict[str, Any]) -> str:
    causes = (doc.get("details") or {}).get("causes") or []
    return "; ".join(
        f"{c.get('field', '?')}: {c.get('message', c.get('reason', ''))}"
        for c in causes
        if isinstance(c, dict)
    )
