"""The ``test`` plugin: a simulated infrastructure for tests, benchmarks and demos."""

from plugins.test.plugin import Call, TestPlugin, TestPluginSettings

__all__ = ["Call", "TestPlugin", "TestPluginSettings"]
