"""The route table: every endpoint once, with what the OpenAPI document needs to describe it.

:func:`pilothouse.hub.api.app.create_app` registers these routes and builds the OpenAPI
document from the same table, so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp.typedefs import Handler
from pydantic import BaseModel

from pilothouse.foundation.domain.monitoring import StatsBatch
from pilothouse.hub.api import schemas as s
from pilothouse.hub.api.handlers import (
    agents,
    deployments,
    environments,
    events,
    management,
    monitoring,
    notifications,
    packages,
    retention,
    system,
    tail,
    watch,
)
from pilothouse.hub.api.keys import Access


@dataclass(frozen=True)
class Stream:
    """A stream of items of one media type (server-sent events), each described by ``item``."""

    media: str
    item: type[BaseModel]


Body = type[BaseModel] | str | tuple[str, ...] | Stream | None
"""A JSON model, a media type (raw bytes or text) or several (one chosen by a parameter), a
stream, or no body."""

V1 = "/api/v1"
PE = f"{V1}/prediction-environments"
MP = f"{V1}/model-packages"
DEP = f"{V1}/deployments"
NCH = f"{V1}/notification-channels"
NPO = f"{V1}/notification-policies"
NDL = f"{V1}/notification-deliveries"


@dataclass(frozen=True)
class Route:
    """One endpoint."""

    method: str
    path: str
    handler: Handler
    summary: str
    access: Access
    tag: str
    responses: Mapping[int, Body]
    body: Body = None
    query: type[BaseModel] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    """Error statuses beyond those the route's shape implies (a 409 on delete, say)."""


# One endpoint per entry: the table reads better unwrapped.
# fmt: off
ROUTES: tuple[Route, ...] = (
    Route("POST", PE, environments.create, "Register a prediction environment", Access.ADMIN,
          "prediction environments", {201: s.PredictionEnvironment},
          body=s.PredictionEnvironmentCreate),
    Route("GET", PE, environments.page, "List prediction environments", Access.ADMIN,
          "prediction environments", {200: s.Page[s.PredictionEnvironment]}, query=s.ListQuery),
    Route("GET", PE + "/{id}", environments.get, "Read a prediction environment", Access.AGENT,
          "prediction environments", {200: s.PredictionEnvironment}),
    Route("PATCH", PE + "/{id}", management.update, "Change a prediction environment",
          Access.ADMIN, "prediction environments", {200: s.PredictionEnvironment},
          body=s.PredictionEnvironmentUpdate),
    Route("POST", PE + "/{id}/agent-tokens", environments.issue_token,
          "Issue an agent token (shown once)", Access.ADMIN, "prediction environments",
          {201: s.AgentToken}),
    Route("GET", PE + "/{id}/agent-tokens", environments.tokens, "List agent tokens",
          Access.ADMIN, "prediction environments", {200: s.Page[s.AgentTokenInfo]},
          query=s.ListQuery),
    Route("DELETE", PE + "/{id}/agent-tokens/{token_id}", environments.revoke_token,
          "Revoke an agent token", Access.ADMIN, "prediction environments",
          {200: s.AgentTokenInfo}),
    Route("POST", PE + "/{id}/package-tokens", environments.issue_package_token,
          "Issue a read-only package token (shown once; the admin or the PE's agent)",
          Access.AGENT, "prediction environments", {201: s.PackageToken}),
    Route("GET", PE + "/{id}/package-tokens", environments.package_tokens,
          "List package tokens", Access.ADMIN, "prediction environments",
          {200: s.Page[s.PackageTokenInfo]}, query=s.ListQuery),
    Route("DELETE", PE + "/{id}/package-tokens/{token_id}", environments.revoke_package_token,
          "Revoke a package token (the admin or the PE's agent)", Access.AGENT,
          "prediction environments", {200: s.PackageTokenInfo}),
    Route("GET", PE + "/{id}/desired-state", agents.desired_state,
          "Desired state of the PE (agent channel)", Access.AGENT, "agent channel",
          {200: s.DesiredStateSnapshot}),
    Route("GET", PE + "/{id}/watch", watch.watch,
          "Stream desired-state changes (server-sent events)", Access.AGENT, "agent channel",
          {200: Stream("text/event-stream", s.WatchEvent)}, query=s.WatchQuery,
          headers={"Last-Event-ID": "Revision to resume after; wins over ?last_event_id."}),
    Route("POST", PE + "/{id}/heartbeat", agents.heartbeat, "Agent heartbeat", Access.AGENT,
          "agent channel", {204: None}, body=s.Heartbeat),
    Route("POST", MP, packages.upload, "Upload a model package (.tar.gz)", Access.ADMIN,
          "model packages", {201: s.ModelPackage, 200: s.ModelPackage},
          body="application/gzip"),
    Route("GET", MP, packages.page, "List model packages", Access.AGENT, "model packages",
          {200: s.Page[s.ModelPackage]}, query=s.ListQuery),
    Route("GET", MP + "/{id}", packages.get, "Read a model package", Access.AGENT,
          "model packages", {200: s.ModelPackage}),
    Route("GET", MP + "/{id}/archive", packages.archive, "Download a model package archive",
          Access.PACKAGES, "model packages", {200: "application/gzip", 304: None},
          headers={"If-None-Match": "The archive's sha256 (its ETag): 304 if unchanged."}),
    Route("POST", DEP, deployments.create, "Create a deployment", Access.ADMIN, "deployments",
          {201: s.Deployment}, body=s.DeploymentCreate, errors=(404,)),
    Route("GET", DEP, deployments.page, "List deployments", Access.ADMIN, "deployments",
          {200: s.Page[s.Deployment]}, query=s.DeploymentListQuery),
    Route("GET", DEP + "/{id}", deployments.get, "Read a deployment", Access.ADMIN,
          "deployments", {200: s.Deployment}),
    Route("DELETE", DEP + "/{id}", deployments.delete, "Delete a deployment", Access.ADMIN,
          "deployments", {202: None}),
    Route("POST", DEP + "/{id}/actions", deployments.act, "Ask for an action", Access.ADMIN,
          "deployments", {200: s.Deployment}, body=s.ActionRequest),
    Route("PUT", DEP + "/{id}/status", deployments.observe,
          "Report the observed state (agent channel)", Access.AGENT, "agent channel",
          {204: None}, body=s.ObservedStatus, errors=(409,)),
    Route("GET", DEP + "/{id}/service-health", deployments.service_health,
          "Service health and recent events", Access.ADMIN, "deployments",
          {200: s.ServiceHealthView}),
    Route("GET", DEP + "/{id}/monitoring", monitoring.series,
          "Prediction statistics over time (requests, errors, latency, drift, challengers)",
          Access.ADMIN, "monitoring", {200: s.MonitoringSeries}, query=s.MonitoringQuery),
    Route("POST", DEP + "/{id}/actuals", monitoring.actuals,
          "Post actuals for predictions (accuracy, error)", Access.ADMIN, "monitoring",
          {200: s.ActualsResult}, body=s.ActualsUpload),
    Route("POST", DEP + "/{id}/rollback", monitoring.rollback,
          "Record a rollback of the champion (the agent's, or the admin's)", Access.AGENT,
          "deployments", {200: s.Deployment}, body=s.RollbackRequest, errors=(404, 409)),
    Route("POST", DEP + "/{id}/promote", monitoring.promote, "Make a challenger the champion",
          Access.ADMIN, "deployments", {200: s.Deployment}, body=s.PromoteRequest,
          errors=(409,)),
    Route("POST", V1 + "/agent/monitoring", monitoring.ingest,
          "Post a batch of statistics windows (idempotent)", Access.AGENT, "agent channel",
          {200: s.StatsBatchResult}, body=StatsBatch, errors=(404, 413)),
    Route("POST", V1 + "/events", events.ingest, "Post a batch of events (idempotent)",
          Access.AGENT, "events", {200: s.EventBatchResult}, body=s.EventBatch, errors=(404,)),
    Route("GET", V1 + "/events", events.page, "Search events, newest first", Access.ADMIN,
          "events", {200: s.Page[s.EventOut]}, query=s.EventQuery),
    Route("GET", V1 + "/events/export", events.export, "Export events as CSV or JSON lines",
          Access.ADMIN, "events", {200: ("text/csv", "application/x-ndjson")},
          query=s.EventExportQuery),
    Route("GET", V1 + "/events/stream", tail.stream,
          "Stream events as they are stored (server-sent events)", Access.ADMIN, "events",
          {200: Stream("text/event-stream", s.EventStreamEvent)}, query=s.EventStreamQuery,
          headers={"Last-Event-ID": "Position to resume after; wins over ?last_event_id."}),
    Route("POST", NCH, notifications.create_channel, "Add a notification channel", Access.ADMIN,
          "notifications", {201: s.NotificationChannelCreated}, body=s.NotificationChannelCreate),
    Route("GET", NCH, notifications.page_channels, "List notification channels", Access.ADMIN,
          "notifications", {200: s.Page[s.NotificationChannel]}, query=s.ListQuery),
    Route("GET", NCH + "/{id}", notifications.get_channel, "Read a notification channel",
          Access.ADMIN, "notifications", {200: s.NotificationChannel}),
    Route("PATCH", NCH + "/{id}", notifications.update_channel, "Change a notification channel",
          Access.ADMIN, "notifications", {200: s.NotificationChannel},
          body=s.NotificationChannelUpdate, errors=(409,)),
    Route("DELETE", NCH + "/{id}", notifications.delete_channel, "Delete a notification channel",
          Access.ADMIN, "notifications", {204: None}, errors=(409,)),
    Route("POST", NCH + "/{id}/test", notifications.test_channel, "Send a test message",
          Access.ADMIN, "notifications", {200: s.NotificationDelivery}),
    Route("POST", NPO, notifications.create_policy, "Add a notification policy", Access.ADMIN,
          "notifications", {201: s.NotificationPolicy}, body=s.NotificationPolicyCreate,
          errors=(404,)),
    Route("GET", NPO, notifications.page_policies, "List notification policies", Access.ADMIN,
          "notifications", {200: s.Page[s.NotificationPolicy]}, query=s.ListQuery),
    Route("GET", NPO + "/{id}", notifications.get_policy, "Read a notification policy",
          Access.ADMIN, "notifications", {200: s.NotificationPolicy}),
    Route("PATCH", NPO + "/{id}", notifications.update_policy, "Change a notification policy",
          Access.ADMIN, "notifications", {200: s.NotificationPolicy},
          body=s.NotificationPolicyUpdate, errors=(409,)),
    Route("DELETE", NPO + "/{id}", notifications.delete_policy, "Delete a notification policy",
          Access.ADMIN, "notifications", {204: None}),
    Route("GET", NDL, notifications.page_deliveries, "The notification delivery log",
          Access.ADMIN, "notifications", {200: s.Page[s.NotificationDelivery]},
          query=s.DeliveryQuery),
    Route("GET", NDL + "/{id}", notifications.get_delivery, "Read a notification delivery",
          Access.ADMIN, "notifications", {200: s.NotificationDelivery}),
    Route("GET", V1 + "/settings/retention", retention.get, "Read the event retention",
          Access.ADMIN, "settings", {200: s.Retention}),
    Route("PUT", V1 + "/settings/retention", retention.put, "Set the event retention",
          Access.ADMIN, "settings", {200: s.Retention}, body=s.RetentionUpdate),
    Route("GET", V1 + "/openapi.json", system.openapi, "This document", Access.PUBLIC,
          "system", {200: "application/json"}),
    Route("GET", "/healthz", system.healthz, "Liveness", Access.PUBLIC, "system",
          {200: "application/json"}),
    Route("GET", "/readyz", system.readyz, "Readiness (the database answers)", Access.PUBLIC,
          "system", {200: "application/json", 503: s.ErrorBody}),
    Route("GET", "/metrics", system.metrics, "Prometheus metrics", Access.PUBLIC, "system",
          {200: "text/plain"}),
)
# fmt: on
