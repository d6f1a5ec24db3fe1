"""Where notifications may be sent: not into the hub's own network, unless a setting allows it.

A channel URL is chosen by an admin, but the hub sends from inside its
network: a URL aimed at ``127.0.0.1:…``, a cloud metadata address or a
private service would let the API reach what it should not (server-side
request forgery). So, unless ``notifications.allow_private_targets`` is set:

* a URL whose host is an internal IP address or a ``localhost`` name is refused
  when a channel is created or changed (403 naming ``url``: a well-formed URL
  the hub's policy forbids), and again before every send (the setting may have
  changed since);
* a host *name* is checked where it matters, when it is resolved for a send:
  :class:`PublicResolver` drops internal addresses from the answer, so a name
  that resolves (or is later re-pointed) inside fails to connect.

With ``notifications.proxy_url`` every send goes through that proxy (an egress
gateway), which then resolves the names; the checks on the URL itself stay.

Internal means loopback, private (RFC 1918, unique-local), link-local (cloud
metadata lives there), shared (CGNAT), multicast, reserved and unspecified
addresses, IPv4-mapped IPv6 forms of them included.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from pilothouse.hub.errors import FieldProblem, Forbidden

_SHARED = ipaddress.ip_network("100.64.0.0/10")


def internal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether ``address`` is inside a network the hub itself may be in."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED)
    )


def refusal(url: str) -> str | None:
    """Why ``url`` may not be a target (its host is internal), or None."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return f"{host!r} is this machine"
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None  # a name: checked when it is resolved for a send
    if internal(address):
        return f"{host} is an internal (loopback, private or link-local) address"
    return None


def check(url: str, allow_private: bool) -> None:
    """``Forbidden`` naming ``url`` if it targets an internal host and that is not allowed."""
    why = None if allow_private else refusal(url)
    if why is not None:
        message = (
            f"{why}; notifications are not sent into the hub's own network "
            "(the hub setting notifications.allow_private_targets allows it)"
        )
        raise Forbidden(f"url: {message}", [FieldProblem("url", message)])


class PublicResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, without the internal addresses."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The public addresses of ``host``; ``OSError`` if it has none."""
        found = await self._inner.resolve(host, port, family)
        public = [r for r in found if not internal(ipaddress.ip_address(r["host"]))]
        if not public:
            # errno and text: aiohttp shows the strerror in its connection error
            raise OSError(errno.EPERM, f"{host} resolves only to internal addresses, not sent")
        return public

    async def close(self) -> None:
        """Release the inner resolver."""
        await self._inner.close()


def session(allow_private: bool, proxy_url: str | None) -> aiohttp.ClientSession:
    """The HTTP session notifications are sent with (internal addresses filtered unless allowed)."""
    if allow_private or proxy_url is not None:
        return aiohttp.ClientSession(proxy=proxy_url)
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=PublicResolver()))
