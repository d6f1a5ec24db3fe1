"""The vocabulary of DESIGN.md as types: states, statuses, actions, events, desired state."""
