"""What the agent measures about itself: Prometheus metrics and log context."""
