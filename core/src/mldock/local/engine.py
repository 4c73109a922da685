"""Reaching the Docker engine with the docker SDK, with one clear error when it is not there."""

from __future__ import annotations

from typing import Any

from mldock.errors import BackendUnavailableError
from mldock.interfaces import HealthCheck

ENGINE_HINT = ("start Docker (e.g. 'sudo systemctl start docker' or Docker Desktop), or point"
               " DOCKER_HOST at a running engine")


def docker_client(timeout: int = 120) -> Any:
    """A docker SDK client that has answered a ping; raises a one-line error if no engine answers."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        reason = str(exc).split("(")[0].strip() or type(exc).__name__
        raise BackendUnavailableError(f"cannot reach the Docker engine: {reason}",
                                      hint=ENGINE_HINT) from None
    return client


def engine_health() -> HealthCheck:
    """A doctor check: is an engine reachable, and which version is it?"""
    try:
        client = docker_client(timeout=5)
        version = client.version().get("Version", "?")
        client.close()
    except BackendUnavailableError as exc:
        return HealthCheck("docker engine", False, exc.message, exc.hint or "")
    return HealthCheck("docker engine", True, f"Docker {version}")
