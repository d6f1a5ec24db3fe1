"""Typed keys of the application's and each request's state."""

from __future__ import annotations

from enum import StrEnum

from aiohttp import web

from hub.clock import Clock
from hub.service.auth import Principal
from hub.service.services import Services
from hub.settings import HubSettings
from hub.telemetry import HubMetrics


class Access(StrEnum):
    """Who may call a route (handlers narrow ``agent`` routes to the agent's own PE)."""

    PUBLIC = "public"
    """Anyone: probes, metrics, the OpenAPI document."""
    AGENT = "agent"
    """The admin, or an agent token (scoped by the handler)."""
    ADMIN = "admin"
    """Only the admin token."""


SETTINGS = web.AppKey("settings", HubSettings)
METRICS = web.AppKey("metrics", HubMetrics)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
SERVICES = web.AppKey("services", Services)
OPENAPI = web.AppKey("openapi", bytes)
ACCESS: web.AppKey[dict[web.AbstractRoute, Access]] = web.AppKey("access", dict)
PRINCIPAL = web.RequestKey("principal", Principal)
