"""The real Docker engine, as Vertex AI's machines: run images, follow output, clean up.

Every container gets host networking (it reaches the GCS emulator and the other replicas on
127.0.0.1, and a serving container is reached on its ``AIP_HTTP_PORT``) and the label
``mldock.test.vertex-fake=<session id>``; :meth:`Containers.remove_all` removes exactly those
when the fake stops. An image missing locally is pulled the way Vertex AI pulls from Artifact
Registry: as ``oauth2accesstoken`` with the fake's access token.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from vertex_fake.fake import SESSION_LABEL

LineSink = Callable[[str, str, str], None]  # (stream "stdout"/"stderr", timestamp, line)


class ImageUnavailable(Exception):
    """The image is neither local nor pullable (the job fails as Vertex's would)."""


class Containers:
    """The fake's containers on the local engine (the docker SDK client is made on first use)."""

    def __init__(self, fake: Any) -> None:
        self.fake = fake
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import docker

                self._client = docker.from_env(timeout=120)
            return self._client

    def ensure_image(self, image: str) -> None:
        """Make ``image`` available locally (pull with the access token if it is not)."""
        import docker.errors

        try:
            self.client.images.get(image)
            return
        except docker.errors.ImageNotFound:
            pass
        repository, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] \
            else (image, "", "latest")
        try:
            self.client.images.pull(repository, tag=tag, auth_config={
                "username": "oauth2accesstoken", "password": self.fake.access_token})
        except docker.errors.APIError as exc:
            raise ImageUnavailable(f"Unable to pull image \"{image}\": {exc.explanation}") \
                from exc

    def run(self, image: str, *, name: str, env: dict[str, str], command: list[str],
            args: list[str], labels: dict[str, str]) -> Any:
        """Start a container as Vertex AI does: ``command`` replaces the entrypoint, ``args``
        the image's command (both as given: no shell)."""
        return self.client.containers.run(
            image, command=args or None, entrypoint=command or None, environment=env,
            name=name, detach=True, network_mode="host",
            labels={SESSION_LABEL: self.fake.session_id, **labels})

    def follow(self, container: Any, sink: LineSink) -> list[threading.Thread]:
        """Threads feeding ``sink`` every output line of ``container`` as it comes, one per
        stream; they end when the container exits."""
        threads = [threading.Thread(target=_pump, args=(container, stream, sink), daemon=True,
                                    name=f"logs-{container.name}-{stream}")
                   for stream in ("stdout", "stderr")]
        for thread in threads:
            thread.start()
        return threads

    def remove(self, container: Any) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            container.remove(force=True)

    def remove_all(self) -> None:
        """Remove every container this fake started (by its session label), running or not."""
        if self._client is None:
            return
        found = self._client.containers.list(
            all=True, filters={"label": f"{SESSION_LABEL}={self.fake.session_id}"})
        for container in found:
            self.remove(container)


def _pump(container: Any, stream: str, sink: LineSink) -> None:
    pending = b""
    with contextlib.suppress(Exception):  # the container was removed under us: nothing to read
        for chunk in container.logs(stream=True, follow=True, timestamps=True,
                                    stdout=stream == "stdout", stderr=stream == "stderr"):
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                _emit(stream, line, sink)
    if pending:
        _emit(stream, pending, sink)


def _emit(stream: str, raw: bytes, sink: LineSink) -> None:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    stamp, _, line = text.partition(" ")
    sink(stream, stamp, line)


def containers(fake: Any) -> Containers:
    """The fake's one :class:`Containers` (made, and registered for clean-up, on first use)."""
    with fake.lock:
        found = fake.extra.get("containers")
        if found is None:
            found = fake.extra["containers"] = Containers(fake)
            fake.extra.setdefault("on_stop", []).append(found.remove_all)
        return found
