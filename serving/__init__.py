"""The multi-model prediction server.

One aiohttp process serves many deployments, each a champion model package
plus optional challengers: Open Inference Protocol V2 (``/v2/...``), a plain
rows endpoint (``/v1/deployments/{id}/predict``), statistics and Prometheus
metrics, and an admin API that loads, replaces (without dropping a request)
and unloads models. Embedding::

    from pilothouse.serving import ServerSettings, serve

    await serve(ServerSettings.load({"admin_token": token, "port": 0}), stop=event)

It builds only on :mod:`modelpkg`; frameworks are imported when a package of
their format is loaded, so the server starts fast.

Endpoints (the V2 model name is the deployment id; ``versions/{v}`` picks the
champion or a challenger by model package id):

=========================================================  =====================================
``GET  /v2``, ``/v2/health/live``, ``/v2/health/ready``     server metadata, liveness, readiness
``GET  /v2/models/{name}[/versions/{v}][/ready]``          model metadata / readiness
``POST /v2/models/{name}[/versions/{v}]/infer``            V2 inference (tensor or per-feature)
``POST /v1/deployments/{id}/predict``                      ``{"rows": [...]}`` or ``text/csv``
``GET  /v1/deployments/{id}/stats``                        requests, latency, features, drift
``GET  /metrics``                                          Prometheus text (own registry)
``GET|PUT|DELETE /admin/deployments[/{id}]``               load, replace, unload (Bearer token)
=========================================================  =====================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pilothouse.serving.api.app import create_app
    from pilothouse.serving.errors import ServingError, SettingsError
    from pilothouse.serving.running import serve
    from pilothouse.serving.settings import ServerSettings

# Imported on first use (PEP 562): reading the settings (for ``--help``, say)
# must not load NumPy and the web application.
_EXPORTS = {
    "ServerSettings": "pilothouse.serving.settings",
    "ServingError": "pilothouse.serving.errors",
    "SettingsError": "pilothouse.serving.errors",
    "create_app": "pilothouse.serving.api.app",
    "serve": "pilothouse.serving.running",
}


def __getattr__(name: str) -> Any:
    try:
        module = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'pilothouse.serving' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)


__all__ = ["ServerSettings", "ServingError", "SettingsError", "create_app", "serve"]
