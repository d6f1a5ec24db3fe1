"""Schemathesis hooks for the conformance test: the two rules a static schema cannot state.

* An event's ``time`` must lie within the hub's clock-skew allowance of *now*
  (``events.max_clock_skew_s`` ahead, ``events.max_age_days`` behind); a fixed
  OpenAPI document cannot say that, so a schema-valid event dated 2000-01-01 is
  rightly refused with 422.
* A model package upload is any bytes to OpenAPI (``format: binary``); whether
  they are a valid package is the manifest's schema, inside a tar.gz. Random
  bytes are rightly refused with 422 ``package_rejected``.

* A statistics window's counts must add up — a latency histogram has one count
  more than its bounds, a window ends after it starts and has no more errors
  than requests, a distribution has one baseline fraction per count — and its
  times lie within the allowance; its counts are integers as JSON numbers
  (``3.0`` is not one, as everywhere the hub reads agents' counts strictly); and
  a body past ``monitoring.max_batch_bytes`` is refused whole (413).

For those three operations the conformance test turns schemathesis's
``positive_data_acceptance`` off and runs :func:`valid_input_accepted` instead:
the same check, except that a 422 is accepted when — and only when — it is for
exactly that reason (every field named is an event ``time`` that is indeed
outside the allowance; the error code is ``package_rejected``). Any other
refusal of valid input still fails the run. Uploads are sent as the raw bytes
generated for them (the octet-stream serializer).

Loaded by the schemathesis subprocess through ``SCHEMATHESIS_HOOKS``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis

from pilothouse.hub.settings import EventSettings

EVENTS = "POST /api/v1/events"
UPLOAD = "POST /api/v1/model-packages"
MONITORING = "POST /api/v1/agent/monitoring"
WINDOW_RULES = (
    "counts must have one more entry than bounds",
    "bounds must increase",
    "end must be after start",
    "more errors than requests",
    "a distribution has either edges",
    "baseline must have one fraction per count",
    "edges must have one more entry than counts",
    "labels must have one entry per count",
    "input should be a valid integer",
    "is ahead of the hub's clock",
    "is older than the hub keeps",
)
"""What a 422 of the statistics upload may say of a schema-valid body (rules of counts)."""
ACCEPTED = {*range(200, 400), 401, 403, 404, 409, 429, *range(500, 600)}
ALLOWANCE = EventSettings()  # the conformance hub runs with the default allowance
SLACK = timedelta(seconds=30)  # the hub's "now" and this process's differ a little


schemathesis.serializer.alias("application/gzip", "application/octet-stream")


@schemathesis.check
def valid_input_accepted(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """``positive_data_acceptance`` for events and uploads, knowing their dynamic rules."""
    meta = case.meta
    label = case.operation.label
    if label not in (EVENTS, UPLOAD, MONITORING) or meta is None:
        return None
    if not meta.generation.mode.is_positive:
        return None
    if label == MONITORING and response.status_code == 413:
        return None  # over monitoring.max_batch_bytes: a configured size, not in any schema
    if response.status_code in ACCEPTED or (
        response.status_code == 422 and _explained(label, case, response)
    ):
        return None
    raise AssertionError(f"valid input refused with {response.status_code}: {response.text[:500]}")


def _explained(label: str, case: schemathesis.Case, response: schemathesis.Response) -> bool:
    if label == UPLOAD:
        return bool(json.loads(response.content).get("error") == "package_rejected")
    if label == MONITORING:
        fields = json.loads(response.content).get("fields", [])
        return bool(fields) and all(
            any(rule in problem["message"] for rule in WINDOW_RULES) for problem in fields
        )
    return _only_times_outside_the_allowance(case, response)


def _only_times_outside_the_allowance(
    case: schemathesis.Case, response: schemathesis.Response
) -> bool:
    fields = json.loads(response.content).get("fields", [])
    events: list[dict[str, Any]] = (case.body or {}).get("events", [])
    if not fields:
        return False
    for problem in fields:
        parts = problem["field"].split(".")
        if len(parts) != 3 or parts[0] != "events" or parts[2] != "time":
            return False
        if _within(events[int(parts[1])]["time"]):
            return False
    return True


def _within(text: str) -> bool:
    at = datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    now = datetime.now(UTC)
    earliest = now - timedelta(days=ALLOWANCE.max_age_days) + SLACK
    latest = now + timedelta(seconds=ALLOWANCE.max_clock_skew_s) - SLACK
    return earliest <= at <= latest
