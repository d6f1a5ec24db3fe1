"""Prediction statistics at the hub: ingest, time series, drift status, actuals, retraining.

The agent ships statistics windows
(:class:`~pilothouse.foundation.domain.monitoring.StatsWindow`);
:mod:`.ingest` stores them once each and judges drift (:mod:`.drift`) on the
way in; :mod:`.series` answers ``GET /deployments/{id}/monitoring`` from the
stored counts (never from per-window figures); :mod:`.actuals` joins posted
actuals to stored predictions; :mod:`.retraining` calls a webhook or runs a
command when a deployment's policy says so, at most once per cooldown.
"""
