"""Signing webhook bodies, and checking a signature the way a receiver should.

The header has the widely used timestamped form (Stripe's, among others)::

    X-Pilothouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The timestamp is signed with the body, so a captured request cannot be
replayed later: a receiver recomputes the HMAC over the *raw* bytes it got,
compares in constant time, and refuses a timestamp more than five minutes
away from its own clock. :func:`verify` does exactly that; receivers written
in Python may copy it.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Pilothouse-Signature"
TOLERANCE_S = 300


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for ``body`` sent at ``timestamp`` (unix seconds)."""
    mac = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, body: bytes, header: str, now: float, tolerance_s: float = TOLERANCE_S
) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and is no older than the tolerance."""
    pairs = _pairs(header)
    try:
        timestamp = int(next(value for key, value in pairs if key == "t"))
    except (StopIteration, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = signature(secret, body, timestamp).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, value) for key, value in pairs if key == "v1")


def _pairs(header: str) -> list[tuple[str, str]]:
    return [
        (key.strip(), value.strip())
        for key, _, value in (item.partition("=") for item in header.split(","))
    ]
