"""Every test here runs against a real Docker engine (see tests/docker_support.py)."""

from tests.docker_support import docker, docker_engine, pilothouse_image

__all__ = ["docker", "docker_engine", "pilothouse_image"]
