"""How people and machines look at a running agent: logs, /healthz, /metrics."""
