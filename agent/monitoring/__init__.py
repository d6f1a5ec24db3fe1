"""Monitoring in the agent: statistics windows to the hub, and the health-gated rollback.

- :mod:`.readings` — a prediction server's cumulative counters, and the windows between two;
- :mod:`.relay` — every ``monitoring.interval_s``, each served deployment's windows, stored;
- :mod:`.store` — the durable store of windows, cursors, rollback notices and overrides;
- :mod:`.shipping` — windows and rollback notices from the store to the hub;
- :mod:`.judging` — whether a new model regressed (a pure verdict on counts);
- :mod:`.guard` — watches each replacement and rolls regressions back;
- :mod:`.overrides` — rollbacks in force, so a rolled-back package is never re-applied by itself;
- :mod:`.service` — all of it as one part of the agent.
"""
