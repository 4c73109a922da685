"""Docker for tests: a pinged client, or a skip that says why (a failure when Docker is required).

Tests that need the engine call :func:`require_docker` (or use the ``docker_client`` fixture that
``pytest -p mldock.testing`` provides) and carry ``@pytest.mark.docker``. On a laptop without Docker
they skip with the reason; in CI, ``MLDOCK_REQUIRE_DOCKER=1`` turns every such skip into a failure,
so a broken engine can never make a suite pass by skipping it.

API (kept small on purpose): :func:`docker_required`, :func:`unavailable`, :func:`require_docker`,
:func:`require_image`, and the :func:`docker_client` fixture.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

REQUIRE_ENV = "MLDOCK_REQUIRE_DOCKER"


def docker_required() -> bool:
    """Whether ``MLDOCK_REQUIRE_DOCKER`` asks for missing Docker to fail tests, not skip them."""
    return os.environ.get(REQUIRE_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def unavailable(reason: str) -> NoReturn:
    """Skip the current test with ``reason``, or fail it when Docker is required."""
    if docker_required():
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1 makes this a failure)", pytrace=False)
    pytest.skip(reason)


def require_docker(timeout: int = 120) -> Any:
    """A docker SDK client whose engine answered a ping; otherwise skip (or fail) the test.

    The caller owns the client (``client.close()`` when done, or let it be collected).
    """
    try:
        from mldock.local.engine import docker_client as connect
    except ImportError as exc:  # the docker SDK itself is missing
        unavailable(f"no Docker engine: the docker SDK is not installed ({exc})")
    from mldock.errors import BackendUnavailableError

    try:
        return connect(timeout=timeout)
    except ImportError as exc:
        unavailable(f"no Docker engine: the docker SDK is not installed ({exc})")
    except BackendUnavailableError as exc:
        unavailable(f"no Docker engine: {exc.message}")


def require_image(client: Any, reference: str) -> None:
    """Skip (or fail) unless the image ``reference`` exists locally (no pull is attempted)."""
    from docker.errors import ImageNotFound

    try:
        client.images.get(reference)
    except ImageNotFound:
        unavailable(f"image {reference!r} is not available locally: build or pull it first")


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """A session-wide pinged docker SDK client; skips (or fails) the test without an engine."""
    client = require_docker()
    yield client
    client.close()
