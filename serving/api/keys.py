"""Typed application state shared by the handlers."""

from __future__ import annotations

from aiohttp import web

from serving.deployments import DeploymentRegistry
from serving.endpoints import Endpoints
from serving.inference import PredictionService
from serving.metrics import ServerMetrics
from serving.settings import ServerSettings

SETTINGS = web.AppKey("settings", ServerSettings)
DEPLOYMENTS = web.AppKey("deployments", DeploymentRegistry)
PREDICTIONS = web.AppKey("predictions", PredictionService)
METRICS = web.AppKey("metrics", ServerMetrics)
ENDPOINTS = web.AppKey("endpoints", Endpoints)
