"""Keeping the agent's long-running tasks alive: guarded tasks, restarts, backoff."""
