"""Ids the hub makes: a kind prefix and a short random part (``pe-3f9c2a71d0``).

Random, not sequential, so ids reveal nothing and several hub replicas over
one database never collide in practice (2^40 per prefix; a collision would be
refused by the database's unique key, never merged).
"""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """``<prefix>-`` and ten lowercase hex digits."""
    return f"{prefix}-{secrets.token_hex(5)}"
