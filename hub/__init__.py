"""The Pilothouse hub: the control plane that holds what should run where, and every event."""
