"""A minimal third-party Pilothouse plugin: deployments published as files in a directory."""

from pilothouse_directory.plugin import DirectoryPlugin, DirectorySettings

__all__ = ["DirectoryPlugin", "DirectorySettings"]
