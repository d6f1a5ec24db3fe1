"""What the agent reads to make statistics windows: cumulative counters per loaded model.

The server never cuts windows itself. It keeps counters that only grow, per
loaded model (an *instance*: a package loaded once), and answers them whole on
``GET /admin/deployments/{id}/statistics``; the agent subtracts two readings of
the same instance to get what happened in between. So a reading lost or taken
twice changes nothing, and a restarted server (a new ``server`` id, new
instances) simply starts over.

A replaced model keeps its counters here for a while after it stopped serving
(:data:`RETIRED_KEPT` instances per deployment), so the requests it answered
between the agent's last reading and the swap are not lost, and the agent can
compare the old package's last figures with the new one's.

Associations — which request id got which predictions, so that actuals can be
joined later — are kept in a bounded ring per deployment with a sequence
number; the agent asks for those after the last one it took.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from pilothouse.foundation.domain.monitoring import MAX_ASSOCIATED_ROWS, MAX_ASSOCIATIONS
from pilothouse.serving.served import SERVER_ID, ServedModel

RETIRED_KEPT = 8
"""Replaced models whose final counters stay readable, per deployment."""
MAX_REQUEST_ID = 64


class Associations:
    """The most recent request ids and their predictions, numbered (a bounded ring).

    Each is kept as one small JSON ``bytes`` object: not a container the garbage
    collector has to walk, so ten thousand of them cost the request path nothing
    at collection time.
    """

    __slots__ = ("_items", "_seq")

    def __init__(self, size: int = MAX_ASSOCIATIONS) -> None:
        self._items: deque[bytes] = deque(maxlen=size)
        self._seq = 0

    def add(self, instance: str, request_id: str, predictions: Any) -> None:
        """Keep what ``request_id`` was answered (a list or array of its first rows)."""
        if len(request_id) > MAX_REQUEST_ID:
            return  # a client's own V2 id too long to join by: nothing to associate
        self._seq += 1
        listed = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
        self._items.append(orjson.dumps((instance, request_id, listed[:MAX_ASSOCIATED_ROWS])))

    @property
    def last_seq(self) -> int:
        """The number of the newest association (0: none yet)."""
        return self._seq

    def after(self, seq: int) -> list[dict[str, Any]]:
        """Every association kept that is newer than ``seq``, oldest first."""
        if seq >= self._seq:
            return []
        first = self._seq - len(self._items) + 1
        start = max(0, seq + 1 - first)
        out = []
        for n, raw in enumerate(itertools.islice(self._items, start, None), first + start):
            instance, request_id, predictions = orjson.loads(raw)
            out.append({"seq": n, "instance": instance, "request_id": request_id,
                        "predictions": predictions})  # fmt: skip
        return out


class Mirror:
    """Which share of requests is replayed on challengers: exact, without randomness.

    Each request adds ``percent / 100`` credit; a request that brings the credit
    to one or more is mirrored and spends one. 100 mirrors all, 0 none, 25
    every fourth.
    """

    __slots__ = ("_credit", "percent")

    def __init__(self, percent: float = 100.0) -> None:
        self.percent = percent
        self._credit = 0.0

    def take(self) -> bool:
        """Whether this request is mirrored."""
        if self.percent >= 100.0:
            return True
        self._credit += self.percent / 100.0
        if self._credit >= 1.0:
            self._credit -= 1.0
            return True
        return False


@dataclass(slots=True)
class DeploymentStatistics:
    """One deployment's counters across its replacements (owned by the registry)."""

    associations: Associations = field(default_factory=Associations)
    mirror: Mirror = field(default_factory=Mirror)
    _models: dict[str, ServedModel] = field(default_factory=dict)

    def serving(self, models: Iterable[ServedModel]) -> None:
        """The models that serve now; older ones stay readable up to :data:`RETIRED_KEPT`."""
        current = list(models)
        for model in current:
            self._models.pop(model.instance, None)
            self._models[model.instance] = model  # newest last
        live = {m.instance for m in current}
        retired = [k for k in self._models if k not in live]
        for instance in retired[: max(0, len(retired) - RETIRED_KEPT)]:
            del self._models[instance]

    def reading(
        self,
        deployment_id: str,
        generation: int,
        champion: ServedModel,
        challengers: tuple[ServedModel, ...],
        *,
        server: str | None,
        associations_after: int | None,
    ) -> dict[str, Any]:
        """The cumulative counters of every model kept, and the associations asked for.

        ``associations_after`` None: no associations (a reading only for counts).
        """
        roles = {champion.instance: "champion"} | {c.instance: "challenger" for c in challengers}
        classifier = champion.model.manifest.is_classifier
        after = associations_after if server == SERVER_ID else 0
        items = [] if associations_after is None else self.associations.after(after or 0)
        return {
            "deployment_id": deployment_id,
            "server": SERVER_ID,
            "taken_at": time.time(),
            "generation": generation,
            "mirror_percent": self.mirror.percent,
            "models": [
                _model_reading(m, roles.get(m.instance, "retired"), classifier)
                for m in self._models.values()
            ],
            "associations": {
                "last_seq": self.associations.last_seq,
                "items": items,
            },
        }


def _model_reading(model: ServedModel, role: str, classifier: bool) -> dict[str, Any]:
    return {
        "instance": model.instance,
        "package_id": model.package_id,
        "role": role,
        "since": model.loaded_at,
        "requests": model.requests.cumulative(),
        "monitor": model.monitor.cumulative(),
        "shadow": model.shadow.cumulative(classifier=classifier),
    }
