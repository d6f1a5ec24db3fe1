"""Typed keys of the application's and each request's state."""

from __future__ import annotations

from enum import StrEnum

from aiohttp import web

from pilothouse.hub.clock import Clock
from pilothouse.hub.service.auth import Principal
from pilothouse.hub.services import Services
from pilothouse.hub.settings import HubSettings
from pilothouse.hub.store.backends import Backend
from pilothouse.hub.telemetry import HubMetrics


class Access(StrEnum):
    """Who may call a route (handlers narrow ``agent`` routes to the agent's own PE)."""

    PUBLIC = "public"
    """Anyone: probes, metrics, the OpenAPI document."""
    AGENT = "agent"
    """The admin, or an agent token (scoped by the handler)."""
    PACKAGES = "packages"
    """As ``agent``, and package tokens too (scoped by the handler to their PE's packages)."""
    ADMIN = "admin"
    """Only the admin token."""


SETTINGS = web.AppKey("settings", HubSettings)
METRICS = web.AppKey("metrics", HubMetrics)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
SERVICES = web.AppKey("services", Services)
BACKEND = web.AppKey("backend", Backend)
OPENAPI = web.AppKey("openapi", bytes)
ACCESS: web.AppKey[dict[web.AbstractRoute, Access]] = web.AppKey("access", dict)
PRINCIPAL = web.RequestKey("principal", Principal)
