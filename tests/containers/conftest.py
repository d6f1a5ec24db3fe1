"""The compose stack's tests run against a real Docker engine (see tests/docker_support.py)."""

from tests.docker_support import docker_compose, docker_engine, pilothouse_image

__all__ = ["docker_compose", "docker_engine", "pilothouse_image"]
