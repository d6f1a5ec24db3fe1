"""Labels and names: how the plugin finds its own containers and volumes on a shared engine.

Every container and volume the plugin creates carries these labels, and
listing, adoption after an agent restart, the event stream's filter and
cleanup all select by them — the engine's own state, not a file of the agent's:

==============================  =============================================================
label                           value
==============================  =============================================================
``io.pilothouse.owner``         ``plugin_settings.owner`` (one installation among several)
``io.pilothouse.pe``            the prediction environment
``io.pilothouse.role``          ``server`` (a prediction server) or ``front`` (the stable
                                entry of a dedicated deployment, see :mod:`.fronts`)
``io.pilothouse.mode``          ``shared`` or ``dedicated``
``io.pilothouse.key``           the server's key: ``shared``, or the deployment id
``io.pilothouse.deployment``    the deployment (dedicated servers and fronts)
``io.pilothouse.generation``    the deployment's generation the server was started for
``io.pilothouse.model-package`` its champion model package at that generation
``io.pilothouse.spec``          a digest of what the server was started with (models,
                                resources, environment): a change of it needs a new server
==============================  =============================================================

A shared server serves many deployments, which change without a new
container: its labels name none (its admin API lists them). A container
without the owner's and the PE's labels is never touched.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import orjson

from pilothouse.foundation.domain.desired import DesiredDeployment

PREFIX = "io.pilothouse."
OWNER = PREFIX + "owner"
PE = PREFIX + "pe"
ROLE = PREFIX + "role"
MODE = PREFIX + "mode"
KEY = PREFIX + "key"
DEPLOYMENT = PREFIX + "deployment"
GENERATION = PREFIX + "generation"
MODEL_PACKAGE = PREFIX + "model-package"
SPEC = PREFIX + "spec"

SERVER = "server"
FRONT = "front"


def spec_digest(spec: DesiredDeployment) -> str:
    """What a dedicated server is started with, as a short digest (models, resources, env)."""
    doc = {
        "model_package_id": spec.model_package_id,
        "challenger_ids": list(spec.challenger_ids),
        "settings": spec.settings.model_dump(mode="json"),
    }
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def alias(name: str) -> str:
    """The DNS name of a container on the plugin's network (any id is safe in it)."""
    return "ph-" + hashlib.sha256(name.encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class Scope:
    """What this agent owns on the engine: one owner's containers of one PE."""

    owner: str
    pe: str
    mode: str

    def filters(self, role: str | None = None, *, any_mode: bool = False) -> dict[str, list[str]]:
        """The engine's list/event filter for this scope (``label=…`` each)."""
        wanted = [f"{OWNER}={self.owner}", f"{PE}={self.pe}"]
        if role is not None:
            wanted.append(f"{ROLE}={role}")
        if not any_mode:
            wanted.append(f"{MODE}={self.mode}")
        return {"label": wanted}

    def labels(self, role: str, key: str, spec: DesiredDeployment | None = None) -> dict[str, str]:
        """The labels of a new container or volume."""
        labels = {OWNER: self.owner, PE: self.pe, ROLE: role, MODE: self.mode, KEY: key}
        if self.mode == "dedicated":
            labels[DEPLOYMENT] = key
        if spec is not None:
            labels |= {
                GENERATION: str(spec.generation),
                MODEL_PACKAGE: spec.model_package_id,
                SPEC: spec_digest(spec),
            }
        return labels

    def name(self, role: str, key: str) -> str:
        """A new container's (and its volume's) name: readable, and unique on the engine."""
        suffix = "front" if role == FRONT else secrets.token_hex(3)
        return f"{self.owner}-{self.pe}-{key}-{suffix}"

    def owns(self, labels: dict[str, str] | None) -> bool:
        """Whether an object with ``labels`` is this scope's (any mode)."""
        labels = labels or {}
        return labels.get(OWNER) == self.owner and labels.get(PE) == self.pe
