"""The ``test`` plugin: a simulated infrastructure for tests, benchmarks and demos."""

from pilothouse.plugins.simulated.plugin import Call, SimulatedPlugin, SimulatedPluginSettings

__all__ = ["Call", "SimulatedPlugin", "SimulatedPluginSettings"]
