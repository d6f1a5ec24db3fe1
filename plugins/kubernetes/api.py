"""The one client of the Kubernetes API server: every call, and every watch, goes through it.

Built on ``kubernetes_asyncio`` (its configuration loaders and generated API
classes), but answers are read raw (``_preload_content=False``) and parsed
with orjson into plain dicts: the plugin works on the API's own JSON, which
is what the watches deliver too, and pays for no model deserialization.
Failures become plugin errors in :mod:`~pilothouse.plugins.kubernetes.errors`
(its :func:`~pilothouse.plugins.kubernetes.errors.translated` and
:func:`~pilothouse.plugins.kubernetes.errors.from_answer`), here and nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from kubernetes_asyncio import client, config

from pilothouse.agent.errors import PermanentPluginError
from pilothouse.plugins.kubernetes import errors
from pilothouse.plugins.kubernetes.errors import Operation
from pilothouse.plugins.kubernetes.settings import KubernetesPluginSettings

Call = Callable[..., Awaitable[Any]]


class Kube:
    """The API groups the plugin uses, on one connection pool, for one namespace."""

    def __init__(self, api_client: client.ApiClient, namespace: str, timeout_s: float) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.timeout_s = timeout_s
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.networking = client.NetworkingV1Api(api_client)

    @classmethod
    async def connect(cls, s: KubernetesPluginSettings) -> Kube:
        """Load the configuration (kubeconfig or in-cluster service account) and make the client."""
        cfg = client.Configuration()
        try:
            if s.kubeconfig is None and "KUBERNETES_SERVICE_HOST" in os.environ:
                config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            else:
                path = str(s.kubeconfig) if s.kubeconfig is not None else None
                await config.load_kube_config(
                    config_file=path, context=s.context, client_configuration=cfg
                )
        except (config.ConfigException, OSError, ValueError) as exc:
            where = s.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
            raise PermanentPluginError(
                f"cannot configure the Kubernetes client from {where}: {exc} "
                "(set plugin_settings.kubeconfig, or run the agent in the cluster)"
            ) from exc
        return cls(client.ApiClient(configuration=cfg), s.namespace, s.request_timeout_s)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.api_client.close()

    def op(self, verb: str, resource: str, group: str, name: str | None = None) -> Operation:
        """An operation in this client's namespace (for messages and RBAC hints)."""
        return Operation(verb, resource, group, self.namespace, name)

    async def call(
        self, op: Operation, fn: Call, *args: Any, deployment_id: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Call ``fn`` (a generated API method) and return the answer's JSON, or raise."""
        body = await self.raw(op, fn, *args, deployment_id=deployment_id, **kwargs)
        doc = orjson.loads(body) if body else {}
        return doc if isinstance(doc, dict) else {}

    async def raw(
        self, op: Operation, fn: Call, *args: Any, deployment_id: str | None = None, **kwargs: Any
    ) -> bytes:
        """Call ``fn`` and return the answer's body as it came (pod logs are text)."""
        with errors.translated(op, deployment_id=deployment_id):
            async with asyncio.timeout(self.timeout_s):
                resp = await fn(
                    *args, _preload_content=False, _request_timeout=self.timeout_s, **kwargs
                )
                try:
                    body = await resp.read()
                finally:
                    resp.release()
        if resp.status >= 400:
            raise errors.from_answer(
                resp.status,
                body,
                op,
                deployment_id=deployment_id,
                retry_after=resp.headers.get("Retry-After"),
            )
        return bytes(body)

    @contextlib.asynccontextmanager
    async def stream(
        self, op: Operation, fn: Call, *args: Any, timeout_s: int, **kwargs: Any
    ) -> AsyncIterator[aiohttp.StreamReader]:
        """A watch request (``watch=True``): its body, one JSON event a line.

        The API server ends it after ``timeout_s``; a lost connection raises a
        temporary plugin error from the reads, through :func:`errors.translated`.
        """
        with errors.translated(op):
            async with asyncio.timeout(self.timeout_s):
                resp = await fn(
                    *args,
                    watch=True,
                    timeout_seconds=timeout_s,
                    _preload_content=False,
                    _request_timeout=timeout_s + 30,
                    **kwargs,
                )
            try:
                if resp.status >= 400:
                    raise errors.from_answer(resp.status, await resp.read(), op)
                yield resp.content
            finally:
                resp.release()

    async def lines(self, op: Operation, content: aiohttp.StreamReader) -> AsyncIterator[bytes]:
        """The lines of a watch body, its read errors translated; ends with the stream."""
        while True:
            with errors.translated(op):
                line = await content.readline()
            if not line:
                return
            yield line
