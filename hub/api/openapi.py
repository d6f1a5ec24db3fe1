"""The OpenAPI 3.1 document, generated from the route table and the pydantic schemas.

Nothing here is written by hand: paths, methods, parameters (path, query,
headers), request bodies, responses and security come from
:data:`pilothouse.hub.api.routes.ROUTES`; every schema comes from pydantic's JSON Schema
generation (OpenAPI 3.1 uses JSON Schema 2020-12, as pydantic does), collected
once under ``components.schemas``. What the hub sends rather than serves — the
message a webhook notification channel receives, with its signature header —
is described under ``webhooks``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from pilothouse.hub.api.keys import Access
from pilothouse.hub.api.routes import Body, Route, Stream
from pilothouse.hub.api.schemas import JSON_VALUE, JSON_VALUE_SCHEMA, ErrorBody, WebhookMessage
from pilothouse.hub.notifications.signing import HEADER as SIGNATURE_HEADER

REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"\{(\w+)\}")
_ERRORS = {
    400: "Not JSON",
    401: "No token, or an unknown one",
    403: "The token may not do this",
    404: "No such resource",
    408: "The request body stopped arriving",
    409: "Conflicts with what is stored",
    413: "Body over a configured limit",
    415: "Wrong Content-Type",
    422: "Invalid field(s), each named",
}
_CREATES = {"POST"}


def document(routes: Sequence[Route], *, version: str) -> dict[str, Any]:
    """The OpenAPI document of ``routes``."""
    refs, components = _schemas(routes)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Pilothouse hub API",
            "version": version,
            "description": "Control plane of Pilothouse: prediction environments, model "
            "packages, deployments, events, and the agent channel.",
        },
        "paths": paths,
        "webhooks": _webhooks(refs),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _models(routes: Sequence[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    found: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (ErrorBody, "serialization"): None,
        (WebhookMessage, "serialization"): None,
    }
    for route in routes:
        if isinstance(route.body, type):
            found[(route.body, "validation")] = None
        if route.query is not None:
            found[(route.query, "validation")] = None
        for body in route.responses.values():
            if isinstance(body, type):
                found[(body, "serialization")] = None
            elif isinstance(body, Stream):
                found[(body.item, "serialization")] = None
    return list(found)


Refs = dict[tuple[type[BaseModel], JsonSchemaMode], dict[str, Any]]


def _schemas(routes: Sequence[Route]) -> tuple[Refs, dict[str, Any]]:
    generated, top = models_json_schema(_models(routes), ref_template=REF)
    refs: Refs = {}
    for (model, mode), ref in generated.items():
        if isinstance(model, type) and issubclass(model, BaseModel):
            refs[(model, mode)] = ref
    return refs, dict(top.get("$defs", {})) | {JSON_VALUE: JSON_VALUE_SCHEMA}


def _operation(route: Route, refs: Refs, components: dict[str, Any]) -> dict[str, Any]:
    handler = route.handler
    op: dict[str, Any] = {
        "operationId": f"{handler.__module__.rsplit('.', 1)[-1]}_{handler.__name__}",
        "summary": route.summary,
        "description": (handler.__doc__ or route.summary).strip(),
        "tags": [route.tag],
        "parameters": _parameters(route, refs, components),
        "responses": _responses(route, refs),
        "security": [] if route.access is Access.PUBLIC else [{"bearer": []}],
    }
    if route.body is not None:
        op["requestBody"] = {
            "required": _body_required(route.body),
            "content": _content(route.body, refs, "validation"),
        }
    return op


def _body_required(body: Body) -> bool:
    """A JSON body whose fields all have defaults may be left out (it reads as ``{}``)."""
    if isinstance(body, type):
        return any(field.is_required() for field in body.model_fields.values())
    return True


def _parameters(route: Route, refs: Refs, components: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(route.path)
    ]
    params += [_header(name, description) for name, description in route.headers.items()]
    if route.query is not None:
        params += _query_parameters(refs[(route.query, "validation")], components)
    return params


def _query_parameters(ref: dict[str, Any], components: dict[str, Any]) -> list[dict[str, Any]]:
    schema = components[ref["$ref"].rsplit("/", 1)[-1]]
    required = set(schema.get("required", []))
    params = []
    for name, prop in schema.get("properties", {}).items():
        param = {"name": name, "in": "query", "required": name in required, "schema": prop}
        if "description" in prop:
            param["description"] = prop["description"]
        params.append(param)
    return params


def _responses(route: Route, refs: Refs) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, body in route.responses.items():
        answer: dict[str, Any] = {"description": route.summary if status < 300 else "See status"}
        if body is not None:
            answer["content"] = _content(body, refs, "serialization")
        out[str(status)] = answer
    error = {"content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}}
    for status in _error_statuses(route):
        out.setdefault(str(status), {"description": _ERRORS[status], **error})
    return out


def _error_statuses(route: Route) -> list[int]:
    statuses = []
    if route.access is not Access.PUBLIC:
        statuses += [401, 403]
    if "{" in route.path:
        statuses.append(404)
    if isinstance(route.body, type):
        statuses += [400, 408, 413, 415, 422]
    elif isinstance(route.body, str):
        statuses += [408, 409, 413, 415, 422]
    if route.query is not None:
        statuses.append(422)
    if route.method in _CREATES and 201 in route.responses:
        statuses.append(409)
    statuses += route.errors
    return sorted(set(statuses))


def _content(body: Body, refs: Refs, mode: JsonSchemaMode) -> dict[str, Any]:
    if isinstance(body, type):
        return {"application/json": {"schema": refs[(body, mode)]}}
    if isinstance(body, Stream):  # OpenAPI 3.1: the schema of a stream describes each item
        return {body.media: {"schema": refs[(body.item, "serialization")]}}
    if isinstance(body, tuple):
        return {media: {"schema": {"type": "string"}} for media in body}
    if body == "application/gzip":
        return {body: {"schema": {"type": "string", "format": "binary"}}}
    if body == "application/json":
        return {body: {"schema": {"type": "object"}}}
    return {str(body): {"schema": {"type": "string"}}}


def _webhooks(refs: Refs) -> dict[str, Any]:
    """What a webhook notification channel receives (OpenAPI 3.1 ``webhooks``)."""
    signature = (
        "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, '<t>.<raw body>')>; refuse a "
        "timestamp more than 5 minutes old."
    )
    headers = {
        SIGNATURE_HEADER: signature + " Sent when the channel has a secret.",
        "X-Pilothouse-Delivery": "The delivery id; the same on every retry (drop duplicates).",
        "X-Pilothouse-Kind": "firing, repeat, resolved, notice or test.",
    }
    return {
        "notification": {
            "post": {
                "summary": "A notification, POSTed to a webhook channel",
                "description": "Delivered at least once; retried with backoff on a connection "
                "failure, a timeout, 408, 425, 429 or 5xx. Answer 2xx to acknowledge.",
                "parameters": [
                    {
                        "name": name,
                        "in": "header",
                        "description": text,
                        "schema": {"type": "string"},
                    }
                    for name, text in headers.items()
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": refs[(WebhookMessage, "serialization")]}
                    },
                },
                "responses": {"200": {"description": "Received (any 2xx)"}},
            }
        }
    }


def _header(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "description": description, "schema": {"type": "string"}}
