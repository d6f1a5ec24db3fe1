"""The hub's errors, and the HTTP answer each one stands for.

Everything the hub refuses on purpose is a :class:`HubError`: the class fixes
the HTTP status and the machine-readable ``error`` code, the instance carries
the message and, for bad input, every offending field. Lower layers (sqlite3,
tarfile, pydantic) are translated into this tree where they enter; the API's
error middleware turns it into the JSON body ``{"error", "message", "fields"}``
in one place.

    PilothouseError (agent.errors)
    └── HubError ...................... base; ``status`` and ``code`` name the answer
        ├── BadRequest ................ 400 the body is not JSON, a header is malformed
        ├── Unauthorized .............. 401 no token, or one the hub does not know
        ├── Forbidden ................. 403 the token may not do this
        ├── NotFound .................. 404 no such resource
        ├── RequestTimeout ............ 408 the request body stopped arriving
        ├── Conflict .................. 409 a name is taken, a package version exists
        ├── PayloadTooLarge ........... 413 the body is over a configured limit
        ├── UnsupportedMediaType ...... 415 wrong Content-Type
        ├── InvalidInput .............. 422 a field is wrong; ``fields`` names each one
        │   └── PackageRejected ....... 422 a model package archive is refused
        ├── StorageError .............. 500 the database cannot be used as expected
        └── DatabaseUnavailable ....... 503 the database cannot be reached now; try again
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from pilothouse.foundation.errors import PilothouseError


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """One field of a request that cannot be accepted, and why."""

    field: str
    message: str
    input: Any = None


class HubError(PilothouseError):
    """Base of every error the hub answers with on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, fields: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or []


class BadRequest(HubError):
    """The request cannot be read at all (not JSON, malformed header)."""

    status = 400
    code = "bad_request"


class Unauthorized(HubError):
    """No bearer token, or one the hub does not know."""

    status = 401
    code = "unauthorized"


class Forbidden(HubError):
    """The token is valid but may not do this (another PE's resource, an admin action)."""

    status = 403
    code = "forbidden"


class NotFound(HubError):
    """No such resource (or it was deleted)."""

    status = 404
    code = "not_found"

    @classmethod
    def of(cls, kind: str, ident: str, field: str | None = None) -> NotFound:
        """``<kind> '<id>' not found``, naming the request field that referred to it."""
        message = f"{kind} {ident!r} not found"
        return cls(message, [FieldProblem(field, message, ident)] if field else None)


class RequestTimeout(HubError):
    """The client stopped sending its request body (a stalled or half-sent upload)."""

    status = 408
    code = "request_timeout"


class Conflict(HubError):
    """The request contradicts what is stored (a taken name, say)."""

    status = 409
    code = "conflict"


class PayloadTooLarge(HubError):
    """The request body is over a configured limit."""

    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(HubError):
    """The request body is not of a media type this endpoint takes."""

    status = 415
    code = "unsupported_media_type"


class InvalidInput(HubError):
    """One or more fields are invalid; each is named in ``fields``."""

    status = 422
    code = "validation_error"

    @classmethod
    def field(cls, field: str, message: str, value: Any = None) -> InvalidInput:
        """An error about a single field."""
        return cls(f"{field}: {message}", [FieldProblem(field, message, value)])


class PackageRejected(InvalidInput):
    """A model package archive is refused (hostile, malformed or without a valid manifest)."""

    code = "package_rejected"


class StorageError(HubError):
    """The database is not in a state this hub can use (e.g. a newer schema)."""


class DatabaseUnavailable(HubError):
    """The database cannot be reached right now (restarting, unreachable); try again."""

    status = 503
    code = "unavailable"
