"""The foundation every part of Pilothouse stands on, and nothing above it.

- :mod:`~pilothouse.foundation.domain`: the vocabulary (states, statuses, sources,
  actions), events and their ids, and the desired-state contract between hub and agent;
- :mod:`~pilothouse.foundation.errors`: the base of the error tree;
- :mod:`~pilothouse.foundation.settings`: layered settings and the one error explainer;
- :mod:`~pilothouse.foundation.logs`: structured logging, off the event loop;
- :mod:`~pilothouse.foundation.aio`: the asyncio kit (guarded named tasks, backoff,
  interruptible sleep);
- :mod:`~pilothouse.foundation.cli`: what every foreground command shares (signals,
  exit codes, flags derived from settings).
"""
