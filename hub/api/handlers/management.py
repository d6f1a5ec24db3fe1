"""``PATCH /api/v1/prediction-environments/{id}``: the Use Management Agent switch."""

from __future__ import annotations

from aiohttp import web

from pilothouse.hub.api import bodies
from pilothouse.hub.api.schemas import PredictionEnvironmentUpdate


async def update(request: web.Request) -> web.Response:
    """Change the PE: turning Use Management Agent off freezes what its agent receives.

    While it is off, the PE's agent keeps what it runs and receives no
    desired-state changes (its snapshot and watch stream stay where they were);
    changes made meanwhile are recorded and reach it once it is turned on.
    """
    body = await bodies.parse(request, PredictionEnvironmentUpdate)
    switch = bodies.services(request).management
    return bodies.respond(await switch.update(request.match_info["id"], body))
