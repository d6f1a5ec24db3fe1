"""The agent's errors, on the foundation's base tree, and the one rule about them.

Every error the agent raises on purpose derives from :class:`PilothouseError`
and carries enough context (which field, which deployment, which task) to be
turned into a clear message and an event. Errors of lower layers (a plugin's
client library, the YAML parser, pydantic) are translated into this tree at
the boundary where they enter, so nothing above that boundary has to know them.

    PilothouseError
    ├── ConfigError ................ a setting or config file is wrong (refused at start)
    ├── DesiredStateError .......... the desired-state document is malformed
    ├── PluginError ................ anything a plugin reports about an action
    │   ├── TemporaryPluginError ... retrying may help (optionally after ``delay``)
    │   │   ├── ActionTimeoutError . the action exceeded its time budget
    │   │   └── PluginNotReadyError  the plugin's setup cannot complete *yet*
    │   └── PermanentPluginError ... retrying the same action cannot help
    ├── PluginNotFoundError ........ no plugin is registered under the name asked for
    ├── InvalidTransitionError ..... the state machine refused a trigger
    ├── CrashLoopError ............. a supervised task failed too often; the agent gives up
    ├── JournalError ............... the action journal (state dir) cannot be read or written
    ├── StatisticsError ............ a prediction server's statistics cannot be read or stored
    └── HubError ................... talking to the hub failed
        ├── HubUnreachableError .... no answer, or a 5xx: retrying later may help
        └── HubRejectedError ....... a 4xx: the request itself is wrong (``status``, ``body``)
            └── HubAuthError ....... 401/403: the token is missing, wrong or not for this PE

Retry decisions look only at the class: ``TemporaryPluginError`` is retried
with backoff, everything else is final for that action.
"""

from __future__ import annotations

from pilothouse.foundation.errors import ConfigError as ConfigError
from pilothouse.foundation.errors import CrashLoopError as CrashLoopError
from pilothouse.foundation.errors import PilothouseError as PilothouseError


class DesiredStateError(PilothouseError):
    """The desired-state document cannot be used; the previous one stays in force."""

    def __init__(self, message: str, *, source: str) -> None:
        self.source = source
        super().__init__(f"{source}: {message}")


class PluginError(PilothouseError):
    """An error reported by a plugin while acting on infrastructure."""

    def __init__(self, message: str, *, deployment_id: str | None = None) -> None:
        self.deployment_id = deployment_id
        super().__init__(message)


class TemporaryPluginError(PluginError):
    """A failure that may go away: the action runner retries it with backoff."""

    def __init__(
        self, message: str, *, deployment_id: str | None = None, delay: float | None = None
    ) -> None:
        super().__init__(message, deployment_id=deployment_id)
        self.delay = delay


class ActionTimeoutError(TemporaryPluginError):
    """A plugin action did not finish within its configured timeout."""


class PluginNotReadyError(TemporaryPluginError):
    """The plugin cannot start yet (its infrastructure is not reachable); retried."""


class PermanentPluginError(PluginError):
    """A failure that retrying the same action cannot fix."""


class PluginNotFoundError(PilothouseError):
    """No plugin is registered under the requested name."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        known = ", ".join(sorted(available)) or "none"
        super().__init__(f"no plugin named {name!r} (installed: {known})")


class InvalidTransitionError(PilothouseError):
    """The deployment state machine has no transition for this trigger in this state."""

    def __init__(self, state: str, trigger: str) -> None:
        self.state = state
        self.trigger = trigger
        super().__init__(f"no transition from {state!r} on {trigger!r}")


class JournalError(PilothouseError):
    """The action journal in the state directory cannot be opened or written."""


class StatisticsError(PilothouseError):
    """A prediction server's statistics cannot be read, or the statistics store written."""


class HubError(PilothouseError):
    """Talking to the hub failed."""


class HubUnreachableError(HubError):
    """The hub did not answer, or answered 5xx; retrying later may help."""


class HubRejectedError(HubError):
    """The hub refused the request (4xx); retrying the same request cannot help."""

    def __init__(self, message: str, *, status: int, body: object = None) -> None:
        self.status = status
        self.body = body
        super().__init__(message)


class HubAuthError(HubRejectedError):
    """The hub refused the token (401) or its scope (403)."""
