"""The fixed words of DESIGN.md, as string enums shared by code, API, events and logs."""

from __future__ import annotations

from enum import StrEnum


class DeploymentState(StrEnum):
    """A deployment's state as the agent observes it."""

    LAUNCHING = "launching"
    """A launch or relaunch is under way."""
    READY = "ready"
    """Running and serving the current model package."""
    REPLACING_MODEL = "replacing_model"
    """A new champion is being swapped in; the old one still serves."""
    SHUTTING_DOWN = "shutting_down"
    """A stop is under way."""
    STOPPED = "stopped"
    """Not running, by intent."""
    ERRORED = "errored"
    """The last action failed; the agent will try again (recoverable)."""
    UNKNOWN = "unknown"
    """Not yet observed, or the plugin could not tell."""


class Status(StrEnum):
    """Health colour of a deployment or PE, plus ``informational`` for action reports."""

    PASSING = "passing"
    AT_RISK = "at_risk"
    FAILING = "failing"
    UNKNOWN = "unknown"
    INFORMATIONAL = "informational"


class Action(StrEnum):
    """What a change asks of the agent."""

    LAUNCH = "launch"
    REPLACE_MODEL = "replace_model"
    STOP = "stop"
    RELAUNCH = "relaunch"


class DesiredRun(StrEnum):
    """Whether a deployment should run."""

    LAUNCHED = "launched"
    STOPPED = "stopped"


class Source(StrEnum):
    """Who produced an event."""

    AGENT = "agent"
    HUB = "hub"
    USER = "user"
    MONITOR = "monitor"


class OrphanPolicy(StrEnum):
    """What reconcile does with something running that no desired deployment names."""

    ADOPT = "adopt"
    """Keep it running and track it as if it were desired as it is."""
    STOP = "stop"
    """Stop it."""
    LEAVE = "leave"
    """Leave it alone, untracked; report it once."""
