"""Typed application state shared by the handlers."""

from __future__ import annotations

from aiohttp import web

from pilothouse.serving.deployments import DeploymentRegistry
from pilothouse.serving.endpoints import Endpoints
from pilothouse.serving.inference import PredictionService
from pilothouse.serving.metrics import ServerMetrics
from pilothouse.serving.settings import ServerSettings

SETTINGS = web.AppKey("settings", ServerSettings)
DEPLOYMENTS = web.AppKey("deployments", DeploymentRegistry)
PREDICTIONS = web.AppKey("predictions", PredictionService)
METRICS = web.AppKey("metrics", ServerMetrics)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
