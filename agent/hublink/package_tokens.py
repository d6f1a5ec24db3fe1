"""The PE's read-only package tokens, issued and revoked through the agent's hub link.

A plugin whose infrastructure downloads model packages itself (a Kubernetes
pod's init container) must not be handed the agent token: that one speaks for
the whole PE — its desired state, its events, its deployments' status. The
agent asks the hub, with its own token, for a *package token* instead, which
can only download the archives of the packages the PE's deployments use, and
revokes the one it replaces. The secret never touches the agent's disk.
"""

from __future__ import annotations

from pilothouse.agent.errors import HubRejectedError
from pilothouse.agent.hublink.client import HubClient
from pilothouse.agent.plugin import PackageToken


class HubPackageTokens:
    """:class:`~pilothouse.agent.plugin.PackageTokens` of one PE, from its hub."""

    def __init__(self, client: HubClient, pe: str) -> None:
        self._client = client
        self._pe = pe

    async def issue(self) -> PackageToken:
        """A new package token of the PE."""
        body = await self._client.issue_package_token(self._pe)
        try:
            return PackageToken(str(body["id"]), str(body["token"]))
        except (KeyError, TypeError):
            raise HubRejectedError(
                "hub sent a package token without an id or a token", status=201, body=body
            ) from None

    async def revoke(self, token_id: str) -> None:
        """Revoke one of the PE's package tokens (one the hub no longer knows is no error)."""
        await self._client.revoke_package_token(self._pe, token_id)
