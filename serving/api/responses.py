"""JSON answers, encoded by orjson."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json(doc: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response."""
    return raw(orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY), status, headers)


def raw(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An already-encoded JSON response."""
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")
