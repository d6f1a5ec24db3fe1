"""The server's error tree, each error knowing its HTTP status.

Handlers and the service layer raise these (or let a
:class:`~pilothouse.modelpkg.errors.PackageError` through); one middleware in
:mod:`pilothouse.serving.api.app` turns them into JSON answers — ``{"error": message,
"type": ..., ...}``, the V2 error shape with extra fields — and nothing else
reaches a client except a generic 500 for a bug.

    ServingError
    ├── SettingsError ............. a setting is wrong (refused at start)
    ├── BadRequestError (400) ..... the body cannot be read: not JSON, wrong shape
    │   └── BadInputError (400) ... rows do not fit the features (names row and feature)
    ├── UnauthorizedError (401) ... admin call without the right bearer token
    ├── NotFoundError (404) ....... no such deployment or version
    ├── NotReadyError (503) ....... the deployment is still loading
    ├── RequestTimeoutError (408) . the request body did not arrive within read_timeout_s
    ├── ModelFailedError (500) .... the model raised while predicting
    ├── LoadTimeoutError .......... a load did not finish within load_timeout_s (reaches
    │                               the client as a DeploymentChangeError)
    └── DeploymentChangeError (422)  a load or replacement failed; says whether the old
                                     model still serves (``old_model_in_use``)
"""

from __future__ import annotations

from typing import Any


class ServingError(Exception):
    """Base of the server's errors: ``status``, ``kind`` and extra JSON fields."""

    status = 500
    kind = "server_error"

    def __init__(self, message: str, **fields: Any) -> None:
        self.message = message
        self.fields = fields
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """The JSON answer."""
        return {"error": self.message, "type": self.kind, **self.fields}


class SettingsError(ServingError):
    """A setting is invalid; ``problems`` lists each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid server settings:\n{lines}")


class BadRequestError(ServingError):
    """The request body cannot be read."""

    status = 400
    kind = "bad_request"


class BadInputError(BadRequestError):
    """The rows do not fit the model's features."""

    kind = "bad_input"


class UnauthorizedError(ServingError):
    """The admin bearer token is missing or wrong."""

    status = 401
    kind = "unauthorized"


class NotFoundError(ServingError):
    """No such deployment (or version of it)."""

    status = 404
    kind = "not_found"


class NotReadyError(ServingError):
    """The deployment is known but still loading."""

    status = 503
    kind = "not_ready"


class RequestTimeoutError(ServingError):
    """The request body did not arrive in time; the connection is closed after the answer."""

    status = 408
    kind = "request_timeout"


class LoadTimeoutError(ServingError):
    """Unpacking, loading or warming up a model took longer than ``load_timeout_s``."""

    status = 504
    kind = "load_timeout"


class ModelFailedError(ServingError):
    """The model raised, or answered something unusable."""

    status = 500
    kind = "model_error"


class DeploymentChangeError(ServingError):
    """Loading or replacing a deployment's models failed; nothing was changed."""

    status = 422
    kind = "deployment_change_failed"
