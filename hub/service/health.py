"""The service-health rule of DESIGN.md, as one pure function.

Each source (agent, hub, user, monitor) has a latest non-informational status
for a deployment — latest as the hub received it, not as the sender dated it,
so no sender's clock decides. The service health is the worst of them —
``failing`` over ``at_risk`` over ``passing`` — so a red agent report is never
hidden by a green one from elsewhere (nor the other way round), and ``unknown``
stands only when nothing else is known. The deciding report gives the reason;
among equally bad reports the one received last decides.
"""

from __future__ import annotations

from collections.abc import Iterable

from pilothouse.foundation.domain.vocabulary import Status
from pilothouse.hub.api.schemas import ServiceHealth
from pilothouse.hub.store.records import SourceStatus

SEVERITY = {Status.UNKNOWN: 0, Status.PASSING: 1, Status.AT_RISK: 2, Status.FAILING: 3}


def decide(latest: Iterable[SourceStatus]) -> ServiceHealth:
    """The service health from each source's latest status."""
    ranked = [s for s in latest if s.status in SEVERITY]
    if not ranked:
        return ServiceHealth()
    worst = max(ranked, key=lambda s: (SEVERITY[s.status], s.seq, s.event_id))
    return ServiceHealth(
        status=worst.status, reason=worst.message, event_id=worst.event_id, source=worst.source
    )
