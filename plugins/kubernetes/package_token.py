"""The Secret the pods download model packages from the hub with: a read-only package token.

A pod's init container fetches its packages from the hub, so it needs a
token. Never the agent's own: that one speaks for the whole PE (its desired
state, its events, its deployments' status), and anyone who can read the
namespace's Secrets or exec into a pod would hold it. The pods get a *package
token* instead — issued by the hub for this PE, it may only ``GET`` the
archives of the model packages the PE's deployments want or run (403 for
anything else) — kept in the Secret ``package_token_secret`` (keys ``token``
and ``token_id``), which the init container reads as an environment variable.

The agent obtains it through its own hub link (``ctx.package_tokens``): the
first action of an agent run that delivers a package from the hub issues a
new token, writes it into the Secret (created, or replaced), and then revokes
the token the Secret held before. A token an admin revokes is thus replaced
at the next agent start; meanwhile new pods cannot download (their init
container fails with the hub's 401, quoted in the finding). Without a hub link
(standalone mode) the Secret is the operator's to create, as before.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import Any

from pilothouse.agent.errors import (
    HubError,
    HubUnreachableError,
    PermanentPluginError,
    TemporaryPluginError,
)
from pilothouse.agent.plugin import PackageToken, PackageTokens
from pilothouse.plugins.kubernetes import manifests
from pilothouse.plugins.kubernetes.api import Kube
from pilothouse.plugins.kubernetes.errors import NotFoundError
from pilothouse.plugins.kubernetes.settings import KubernetesPluginSettings

log = logging.getLogger("pilothouse.plugin.kubernetes")


class PackageTokenSecret:
    """Keeps ``package_token_secret`` holding a live package token of this agent's run."""

    def __init__(
        self, kube: Kube, s: KubernetesPluginSettings, pe: str, tokens: PackageTokens | None
    ) -> None:
        self._kube = kube
        self._s = s
        self._pe = pe
        self._tokens = tokens
        self._fresh = False
        self._lock = asyncio.Lock()  # launches of several deployments at once: one token

    async def ensure(self, deployment_id: str) -> None:
        """Put a token of this run into the Secret, once (nothing to do in standalone mode)."""
        if self._tokens is None or self._fresh:
            return
        async with self._lock:
            if self._fresh:
                return
            current = await self._read()
            issued = await self._issue(deployment_id)
            await self._write(current, issued)
            self._fresh = True
            previous = _token_id(current)
            if previous and previous != issued.id:
                await self._revoke(previous)

    async def _read(self) -> dict[str, Any] | None:
        name = self._s.package_token_secret
        try:
            return await self._kube.call(
                self._kube.op("get", "secrets", "", name),
                self._kube.core.read_namespaced_secret,
                name,
                self._kube.namespace,
            )
        except NotFoundError:
            return None

    async def _issue(self, deployment_id: str) -> PackageToken:
        assert self._tokens is not None
        try:
            return await self._tokens.issue()
        except HubUnreachableError as exc:
            raise TemporaryPluginError(
                f"cannot get a package token for the pods from the hub: {exc}",
                deployment_id=deployment_id,
            ) from exc
        except HubError as exc:
            raise PermanentPluginError(
                f"the hub refused a package token for the pods ({exc}); a hub older than "
                "package tokens cannot serve packages to pods: upgrade it, or give the "
                "packages plugin_settings.package_urls",
                deployment_id=deployment_id,
            ) from exc

    async def _write(self, current: dict[str, Any] | None, issued: PackageToken) -> None:
        name = self._s.package_token_secret
        body = manifests.package_token_secret(name, issued.token, issued.id, self._s, self._pe)
        if current is None:
            await self._kube.call(
                self._kube.op("create", "secrets", "", name),
                self._kube.core.create_namespaced_secret,
                self._kube.namespace,
                body,
            )
            return
        # Replace at the version read: a concurrent change is a 409, and the action retries.
        body["metadata"]["resourceVersion"] = current["metadata"].get("resourceVersion")
        await self._kube.call(
            self._kube.op("update", "secrets", "", name),
            self._kube.core.replace_namespaced_secret,
            name,
            self._kube.namespace,
            body,
        )

    async def _revoke(self, token_id: str) -> None:
        """Revoke the replaced token; if the hub cannot now, it stays live: say so."""
        assert self._tokens is not None
        try:
            await self._tokens.revoke(token_id)
        except HubError as exc:
            log.warning(
                "the replaced package token %s could not be revoked (%s): revoke it with "
                "'pilothouse pe token revoke %s %s --package'",
                token_id,
                exc,
                self._pe,
                token_id,
            )


def _token_id(secret: dict[str, Any] | None) -> str | None:
    """The id of the token a Secret holds (written by an earlier run), if it says."""
    encoded = ((secret or {}).get("data") or {}).get(manifests.PACKAGE_TOKEN_ID_KEY)
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode() or None
    except (binascii.Error, UnicodeDecodeError):
        return None
