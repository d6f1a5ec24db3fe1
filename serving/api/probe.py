"""``GET /v1/health/predict``: ready only when predictions work (a Kubernetes readiness probe).

200 when every deployment concerned predicted its sample rows (see
:mod:`pilothouse.serving.probing`), 503 otherwise, with a JSON body saying
which deployment failed and why. ``?deployment=ID`` narrows it to one.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from pilothouse.serving.api import responses
from pilothouse.serving.api.keys import DEPLOYMENTS
from pilothouse.serving.probing import PredictionProbe

PROBE = web.AppKey("prediction probe", PredictionProbe)

PROBE_MIN_INTERVAL_S = 1.0
"""A champion that predicted its rows this recently is not asked again (probes are frequent)."""


def add_routes(app: web.Application, executor: ThreadPoolExecutor) -> None:
    """Register the probe, predicting on ``executor`` (the server's prediction threads)."""
    app[PROBE] = PredictionProbe(app[DEPLOYMENTS], executor, PROBE_MIN_INTERVAL_S)
    app.router.add_get("/v1/health/predict", predict_probe)


async def predict_probe(request: web.Request) -> web.Response:
    """``GET /v1/health/predict[?deployment=ID]``."""
    ready, view = await request.app[PROBE].check(request.query.get("deployment") or None)
    return responses.json(view, status=200 if ready else 503)
