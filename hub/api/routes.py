"""The route table: every endpoint once, with what the OpenAPI document needs to describe it.

:func:`hub.api.app.create_app` registers these routes and builds the OpenAPI
document from the same table, so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp.typedefs import Handler
from pydantic import BaseModel

from hub.api import schemas as s
from hub.api.handlers import agents, deployments, environments, events, packages, system, watch
from hub.api.keys import Access

Body = type[BaseModel] | str | None
"""A JSON model, a media type (raw bytes or text), or no body."""

V1 = "/api/v1"
PE = f"{V1}/prediction-environments"
MP = f"{V1}/model-packages"
DEP = f"{V1}/deployments"


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
    Route("POST", PE + "/{id}/agent-tokens", environments.issue_token,
          "Issue an agent token (shown once)", Access.ADMIN, "prediction environments",
          {201: s.AgentToken}),
    Route("GET", PE + "/{id}/desired-state", agents.desired_state,
          "Desired state of the PE (agent channel)", Access.AGENT, "agent channel",
          {200: s.DesiredStateSnapshot}),
    Route("GET", PE + "/{id}/watch", watch.watch,
          "Stream desired-state changes (server-sent events)", Access.AGENT, "agent channel",
          {200: "text/event-stream"}, query=s.WatchQuery,
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
          Access.AGENT, "model packages", {200: "application/gzip", 304: None},
          headers={"If-None-Match": "The archive's sha256 (its ETag): 304 if unchanged."}),
    Route("POST", DEP, deployments.create, "Create a deployment", Access.ADMIN, "deployments",
          {201: s.Deployment}, body=s.DeploymentCreate),
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
          {204: None}, body=s.ObservedStatus),
    Route("GET", DEP + "/{id}/service-health", deployments.service_health,
          "Service health and recent events", Access.ADMIN, "deployments",
          {200: s.ServiceHealthView}),
    Route("POST", V1 + "/events", events.ingest, "Post a batch of events (idempotent)",
          Access.AGENT, "events", {200: s.EventBatchResult}, body=s.EventBatch),
    Route("GET", V1 + "/events", events.page, "Search events, newest first", Access.ADMIN,
          "events", {200: s.Page[s.EventOut]}, query=s.EventQuery),
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
