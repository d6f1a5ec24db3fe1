"""The hub's HTTP API under ``/api/v1``."""
