"""Rollbacks in force: the desired state as the agent applies it after rolling back.

When the guard rolls a deployment back from package B to A, the desired state
still names B (until the hub records the rollback, or for good in standalone
mode). :meth:`Overrides.amend` rewrites every desired spec the dispatcher
routes, so B is never applied again by accident — a reconnecting hub re-sending
the old snapshot, an agent restart — which is what makes a rollback never loop.

An override ends when the desired state names B again *in a new revision after
the rollback was recorded*: in hub mode, a generation newer than one in which
the hub's desired champion was no longer B (the hub recorded the rollback, or a
user chose another package); in standalone mode, a generation newer than the
one rolled back (the user edited the file). Until then B at any generation is
applied as A, with the spec otherwise as desired.

Overrides are kept in the monitoring store (see :mod:`.store`), so they survive
a restart; a changed override is marked dirty here and written by the guard.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError

from pilothouse.foundation.domain.desired import DesiredDeployment

log = logging.getLogger("pilothouse.monitoring")


class Override(BaseModel):
    """One rollback in force."""

    model_config = ConfigDict(extra="forbid")

    deployment_id: str
    from_package_id: str
    to_package_id: str
    generation: int
    """The generation that was rolled back."""
    released_after: int | None = None
    """A desired spec naming ``from_package_id`` at a newer generation ends the override."""
    at: datetime
    reason: str


class Overrides:
    """Every rollback in force, by deployment."""

    def __init__(self) -> None:
        self._by_id: dict[str, Override] = {}
        self.dirty: set[str] = set()
        """Deployments whose override changed since it was last stored."""

    def load(self, stored: Mapping[str, bytes]) -> None:
        """What the store kept from a previous run (unreadable entries are logged and dropped)."""
        for deployment_id, body in stored.items():
            try:
                self._by_id[deployment_id] = Override.model_validate_json(body)
            except ValidationError as exc:
                log.error("ignoring the stored rollback of %s: %s", deployment_id, exc)
                self.dirty.add(deployment_id)

    def get(self, deployment_id: str) -> Override | None:
        """The override of a deployment, if one is in force."""
        return self._by_id.get(deployment_id)

    def add(self, override: Override) -> None:
        """A rollback was decided: apply ``to_package_id`` instead of ``from_package_id``."""
        self._by_id[override.deployment_id] = override
        self.dirty.add(override.deployment_id)

    def amend(self, desired: DesiredDeployment) -> DesiredDeployment:
        """``desired`` as the agent applies it (the dispatcher's amend hook; no I/O)."""
        override = self._by_id.get(desired.id)
        if override is None:
            return desired
        if desired.model_package_id != override.from_package_id:
            released = override.released_after
            if released is None or desired.generation > released:
                override.released_after = desired.generation
                self.dirty.add(desired.id)
            return desired
        released = override.released_after
        if released is not None and desired.generation > released:
            log.info(
                "%s: %s asked for again at generation %d; the rollback no longer holds",
                desired.id, override.from_package_id, desired.generation,
            )  # fmt: skip
            del self._by_id[desired.id]
            self.dirty.add(desired.id)
            return desired
        return desired.model_copy(update={"model_package_id": override.to_package_id})

    def pop_dirty(self) -> dict[str, Override | None]:
        """The changed overrides (None: removed), to be stored; clears the mark."""
        changed = {k: self._by_id.get(k) for k in self.dirty}
        self.dirty.clear()
        return changed
