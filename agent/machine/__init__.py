"""The per-deployment state machine: pure functions, no I/O, testable as tables."""
