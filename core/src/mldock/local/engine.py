"""Reaching the Docker engine with the docker SDK, with one clear error when it is not there."""

from __future__ import annotations

import os
from typing import Any

from mldock.errors import BackendUnavailableError
from mldock.interfaces import HealthCheck

ENGINE_HINT = ("start Docker (e.g. 'sudo systemctl start docker' or Docker Desktop), or point"
               " DOCKER_HOST at a running engine")


def docker_client(timeout: int = 120) -> Any:
    """A docker SDK client that has answered a ping; a one-line error if no engine answers."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        where = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        raise BackendUnavailableError(f"cannot reach the Docker engine at {where}:"
                                      f" {short_reason(exc)}", hint=ENGINE_HINT) from None
    return client


REASONS = ("No such file or directory", "Connection refused", "Permission denied",
           "timed out", "Name or service not known", "Connection reset")


def short_reason(exc: BaseException) -> str:
    """The part of a docker SDK connection error a person needs ("Connection refused")."""
    text = str(exc)
    for reason in REASONS:
        if reason.lower() in text.lower():
            return reason.lower() if reason == "timed out" else reason
    return text.splitlines()[0][:160] if text else type(exc).__name__


def engine_health() -> HealthCheck:
    """A doctor check: is an engine reachable, and which version is it?"""
    try:
        client = docker_client(timeout=5)
        version = client.version().get("Version", "?")
        client.close()
    except BackendUnavailableError as exc:
        return HealthCheck("docker engine", False, exc.message, exc.hint or "")
    return HealthCheck("docker engine", True, f"Docker {version}")
