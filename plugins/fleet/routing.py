"""Which server serves a deployment: the PE's shared server, or one of its own.

``shared`` runs one server per prediction environment for every deployment
and its challengers (a portable prediction server: adding a model costs a
load, not a process, container or pod); ``dedicated`` runs one server per
deployment (isolation: a model that leaks memory takes down only itself).
A deployment's server is named by a *key*: ``shared``, or the deployment id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SHARED = "shared"
"""The key of the PE's shared server."""

Mode = Literal["shared", "dedicated"]


@dataclass(frozen=True, slots=True)
class Routing:
    """Deployments to server keys, by mode."""

    mode: Mode = "shared"

    @property
    def dedicated(self) -> bool:
        """Whether each deployment has a server of its own."""
        return self.mode == "dedicated"

    def key(self, deployment_id: str) -> str:
        """The key of the server that serves ``deployment_id``."""
        return deployment_id if self.dedicated else SHARED
