"""Log context: the deployment a log line is about, carried by a context variable.

A worker sets :data:`deployment_id` once; every log record made while it runs
(in the worker, the action runner, the plugin) then carries the id, without
each call site passing it along.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

deployment_id: ContextVar[str | None] = ContextVar("pilothouse_deployment_id", default=None)


class ContextFilter(logging.Filter):
    """Adds ``deployment_id`` to every record from the context (unless already set)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate ``record``; never drops it."""
        if getattr(record, "deployment_id", None) is None:
            record.deployment_id = deployment_id.get()
        return True
