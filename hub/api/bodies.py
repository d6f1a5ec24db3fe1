"""Reading requests into schema models and writing models as JSON responses.

Parsing is strict and leaves the translation of failures to the error
middleware: pydantic's ``ValidationError`` there becomes 400 (not JSON) or
422 (naming each field). An empty body reads as ``{}``, so a body whose fields
all have defaults may be left out and a missing required field is named.
"""

from __future__ import annotations

from typing import TypeVar

import pydantic_core
from aiohttp import web
from pydantic import BaseModel

from pilothouse.hub.api import keys
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.services import Services

M = TypeVar("M", bound=BaseModel)

JSON = "application/json"


async def parse(request: web.Request, model: type[M]) -> M:
    """The request body as ``model`` (``client_max_size`` bounds what is read)."""
    raw = await request.read()
    return model.model_validate_json(raw or b"{}")


def query(request: web.Request, model: type[M]) -> M:
    """The query string as ``model``."""
    return model.model_validate(dict(request.query))


def respond(model: BaseModel, status: int = 200) -> web.Response:
    """``model`` as a JSON response."""
    return web.Response(body=pydantic_core.to_json(model), status=status, content_type=JSON)


def services(request: web.Request) -> Services:
    """The hub's services."""
    return request.app[keys.SERVICES]


def principal(request: web.Request) -> Principal:
    """Who is asking (set by the auth middleware on every non-public route)."""
    return request[keys.PRINCIPAL]
