"""Pilothouse's built-in plugins; each registers under the ``pilothouse.plugins`` entry points."""
