"""Structured logging, written off the event loop.

Records go through a ``QueueHandler`` to a listener thread that formats and
writes them, so a slow terminal or a full pipe never blocks the event loop.
``format=json`` writes one JSON object a line (time, level, logger, message,
deployment id and any event fields), ready for a log shipper.

In a container the defaults (``auto``) are JSON lines on stdout, what ``docker logs`` and
Kubernetes collect; elsewhere text on stderr. A container is told by the ``container``
environment variable (the convention of systemd, set by podman and by our image), not by
``/.dockerenv``: CI jobs and development shells often run in a container themselves, and a
developer's terminal there should keep readable text.
"""

from __future__ import annotations

import copy
import logging
import logging.handlers
import os
import queue
import sys
from datetime import UTC, datetime
from typing import TextIO

import orjson

from pilothouse.foundation.logcontext import ContextFilter
from pilothouse.foundation.settings import LogSettings

_EXTRA_FIELDS = ("deployment_id", "event_id", "event_type", "status")


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as compact JSON."""
        out: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exception"] = record.exc_text
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """Human-readable lines, with the deployment id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` with a ``[deployment]`` tag."""
        line = super().format(record)
        dep = getattr(record, "deployment_id", None)
        return f"{line} [{dep}]" if dep else line


class _QueueHandler(logging.handlers.QueueHandler):
    """Hands records to the listener thread with their traceback kept apart.

    The standard ``prepare`` folds the traceback into the message; the JSON
    formatter needs it in its own field.
    """

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        """Freeze the message and the traceback text; drop unpicklable parts."""
        out = copy.copy(record)
        out.msg = record.getMessage()
        out.args = None
        if record.exc_info and not record.exc_text:
            out.exc_text = _FORMATTER.formatException(record.exc_info)
        out.exc_info = None
        out.stack_info = None
        return out


_FORMATTER = logging.Formatter()


class LogHandle:
    """A configured logging pipeline; :meth:`close` flushes and stops its thread."""

    def __init__(self, listener: logging.handlers.QueueListener, handler: logging.Handler) -> None:
        self._listener = listener
        self._handler = handler

    def close(self) -> None:
        """Write what is queued and detach from the root logger."""
        self._listener.stop()
        logging.getLogger().removeHandler(self._handler)


def in_container() -> bool:
    """Whether this process runs in a container, by the ``container`` variable."""
    return bool(os.environ.get("container"))  # noqa: SIM112 (the convention is lower case)


def resolved(settings: LogSettings) -> tuple[str, str]:
    """The format (``json``/``text``) and stream (``stdout``/``stderr``) ``auto`` stands for."""
    container = in_container()
    fmt = settings.format if settings.format != "auto" else ("json" if container else "text")
    where = settings.stream if settings.stream != "auto" else ("stdout" if container else "stderr")
    return fmt, where


def configure(settings: LogSettings, stream: TextIO | None = None) -> LogHandle:
    """Route all ``pilothouse`` logging through a queue to ``stream`` (else as settings say)."""
    fmt, where = resolved(settings)
    out = logging.StreamHandler(stream or (sys.stdout if where == "stdout" else sys.stderr))
    out.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    handler = _QueueHandler(records)
    handler.addFilter(ContextFilter())
    listener = logging.handlers.QueueListener(records, out, respect_handler_level=False)
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(settings.level)
    listener.start()
    return LogHandle(listener, handler)
