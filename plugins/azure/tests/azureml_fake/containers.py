"""Containers on the real Docker engine, the way Azure ML starts them.

Every container is labelled with the test session's id (:data:`SESSION_LABEL`) and the fake's
own label, uses the host's network (so it reaches Azurite and the fake on 127.0.0.1, as a node
of a cluster reaches its storage), and is removed by :meth:`ContainerRunner.stop_all` — by id,
only the ones this runner started. The docker SDK is imported and connected on first use: a
fake that never runs a container needs no engine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

SESSION_LABEL = "mldock.test.session"
FAKE_LABEL = "mldock.test.azureml-fake"
ENGINE_TIMEOUT = 300
REMOVE_ATTEMPTS = 5


class ContainerRunner:
    """Starts, watches and removes the fake's containers."""

    def __init__(self, session_id: str, folder: Path) -> None:
        self.session_id = session_id
        self.folder = folder
        self._client: Any = None
        self._lock = threading.Lock()
        self._started: dict[str, Any] = {}

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import docker

                self._client = docker.from_env(timeout=ENGINE_TIMEOUT)
            return self._client

    def scratch(self, *parts: str) -> Path:
        """A host folder for one job or deployment (bind-mounted into its containers)."""
        path = self.folder.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o777)  # the image may run as another user than the test process
        return path

    def start(self, name: str, image: str, *, command: list[str] | None = None,
              entrypoint: list[str] | None = None, environment: Mapping[str, str],
              binds: Mapping[Path, str], role: str) -> Any:
        """Start one detached container on the host network; ``binds`` maps host folders to
        container paths (read-write)."""
        container = self.client().containers.run(
            image, command=command, entrypoint=entrypoint, environment=dict(environment),
            name=name, detach=True, network_mode="host",
            volumes={str(host): {"bind": inside, "mode": "rw"} for host, inside in binds.items()},
            labels={SESSION_LABEL: self.session_id, FAKE_LABEL: role})
        with self._lock:
            self._started[container.id] = container
        return container

    def start_served(self, name: str, image: str, *, environment: Mapping[str, str],
                     binds: Mapping[Path, str], ports: Mapping[str, int]) -> Any:
        """Start a server container on the default bridge network, each ``"PORT/tcp"`` of
        ``ports`` published on ``127.0.0.1:<host port>``; its own entrypoint and command run."""
        container = self.client().containers.run(
            image, environment=dict(environment), name=name, detach=True,
            ports={inside: ("127.0.0.1", host) for inside, host in ports.items()},
            volumes={str(host): {"bind": inside, "mode": "rw"} for host, inside in binds.items()},
            labels={SESSION_LABEL: self.session_id, FAKE_LABEL: "deployment"})
        with self._lock:
            self._started[container.id] = container
        return container

    def remove(self, container: Any) -> None:
        """Stop and remove one container this runner started (absent is fine)."""
        from docker.errors import APIError, NotFound

        with self._lock:
            self._started.pop(container.id, None)
        for _ in range(REMOVE_ATTEMPTS):  # a loaded engine may answer 409 "removal in progress"
            try:
                container.remove(force=True)
            except NotFound:
                return
            except APIError:
                time.sleep(1)
                continue
            return

    def stop_all(self) -> None:
        """Remove every container this runner started, then any container still carrying this
        session's and the fake's labels (one whose removal failed while the engine was busy)."""
        with self._lock:
            started = list(self._started.values())
            client = self._client
        for container in started:
            self.remove(container)
        if client is None:
            return
        labels = [f"{SESSION_LABEL}={self.session_id}", FAKE_LABEL]
        for container in client.containers.list(all=True, filters={"label": labels}):
            self.remove(container)


def wait(container: Any) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` once the container has exited."""
    result = container.wait()
    stdout = container.logs(stdout=True, stderr=False).decode(errors="replace")
    stderr = container.logs(stdout=False, stderr=True).decode(errors="replace")
    return int(result.get("StatusCode", 1)), stdout, stderr
