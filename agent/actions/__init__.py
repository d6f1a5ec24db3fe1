"""Running plugin actions: time budgets, retries with backoff, cancellation."""
