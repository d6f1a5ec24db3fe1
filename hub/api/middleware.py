"""The three middlewares every request passes: metrics, errors, auth (outside in).

*Errors* is the one place where failures become HTTP answers: a
:class:`~pilothouse.hub.errors.HubError` keeps its status and code, pydantic's
``ValidationError`` becomes 400 (body not JSON) or 422 (each field named, with
the value given), aiohttp's own ``HTTPException`` (unknown path, wrong method,
body over the size limit) keeps its status, and anything else is logged and
answered 500 without details. Every body is ``{"error", "message", "fields"}``.
A client that went away mid-request (a dropped upload) is no failure of the
hub: it is logged at INFO and counted with status 499, nginx's "client closed
request", never as a 500.

*Auth* resolves the bearer token into a principal for every route that is not
public, refuses admin routes to agent tokens and every route but the package
archive to package tokens; handlers narrow agent routes to the agent's own PE.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from pilothouse.foundation import validation
from pilothouse.hub.api import keys
from pilothouse.hub.api.bodies import respond
from pilothouse.hub.api.schemas import ErrorBody, FieldError
from pilothouse.hub.errors import FieldProblem, Forbidden, HubError

log = logging.getLogger("pilothouse.hub.api")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
}
_MAX_INPUT_CHARS = 200
CLIENT_CLOSED = 499
"""The status counted for a request whose client left before the answer (nginx's 499)."""


@web.middleware
async def metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every answer and time it, by route template."""
    began = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        route = _template(request)
        hub_metrics = request.app[keys.METRICS]
        hub_metrics.requests.labels(route, request.method, str(status)).inc()
        hub_metrics.latency.labels(route, request.method).observe(time.perf_counter() - began)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate every failure into a JSON error answer."""
    try:
        return await handler(request)
    except HubError as exc:
        return error(exc.status, exc.code, exc.message, exc.fields)
    except ValidationError as exc:
        return _invalid(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = exc.text if exc.status == 413 and exc.text else exc.reason
        answer = error(exc.status, _CODES.get(exc.status, "error"), message)
        if "Allow" in exc.headers:
            answer.headers["Allow"] = exc.headers["Allow"]
        return answer
    except ConnectionError:  # reset, broken pipe, or aiohttp's "Connection lost" on drain
        if not _client_gone(request):
            log.exception("%s %s failed", request.method, request.path)
            return error(500, "internal_error", "the hub failed to answer; see its log")
        log.info("%s %s: the client went away before the answer", request.method, request.path)
        return web.Response(status=CLIENT_CLOSED)  # never sent: counted by ``metrics`` only
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "internal_error", "the hub failed to answer; see its log")


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


@web.middleware
async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller of every non-public route; refuse admin routes to agents."""
    access = request.app[keys.ACCESS].get(request.match_info.route, keys.Access.PUBLIC)
    if access is not keys.Access.PUBLIC:
        services = request.app[keys.SERVICES]
        who = await services.auth.authenticate(request.headers.get("Authorization"))
        if access is keys.Access.ADMIN:
            who.require_admin()
        elif who.packages_only and access is not keys.Access.PACKAGES:
            raise Forbidden("a package token may only download model package archives")
        request[keys.PRINCIPAL] = who
    return await handler(request)


def error(
    status: int, code: str, message: str, fields: list[FieldProblem] | None = None
) -> web.Response:
    """The JSON error answer."""
    items = [
        FieldError(field=f.field, message=f.message, input=_shown(f.input)) for f in fields or []
    ]
    answer = respond(ErrorBody(error=code, message=message, fields=items), status)
    if status == 401:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="pilothouse"'
    return answer


def _invalid(exc: ValidationError) -> web.Response:
    problems = exc.errors(include_url=False)
    if any(p["type"] == "json_invalid" for p in problems):
        detail = problems[0]["msg"]
        return error(400, "bad_json", f"the request body is not valid JSON: {detail}")
    found = validation.problems(exc, top="(body)")
    fields = [FieldProblem(p.field, p.message, p.input) for p in found]
    listing = "; ".join(p.line() for p in found[:5])
    return error(422, "validation_error", f"invalid request: {listing}", fields)


def _shown(value: Any) -> Any:
    """The offending input, if small enough to echo back."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= _MAX_INPUT_CHARS else value[:_MAX_INPUT_CHARS] + "…"
    return None


def _template(request: web.Request) -> str:
    info = request.match_info.route.resource
    return info.canonical if info is not None else "(unmatched)"
