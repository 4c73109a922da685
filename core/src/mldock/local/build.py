"""The built-in ``docker`` builder: builds and pushes with the Docker engine through the docker SDK.

It uses the engine's classic build API with a context tar made by :mod:`mldock.imaging.context`,
streams every output line to the progress sink, and treats *any* stream line carrying ``error`` or
``errorDetail`` as a failure naming the step that failed (a failed build is never reported as a
success). It keeps every intermediate image (the classic builder's layer cache) and never prunes
anything: the cache is the user's. ``forcerm=True`` removes only the build *containers*, including
the one a failed step leaves behind (with ``rm=True`` alone it stays in ``docker ps -a``); it
touches no image.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from mldock.errors import MldockError
from mldock.imaging import BuildFailedError
from mldock.imaging.context import write_context_tar
from mldock.imaging.dockerfile import DOCKERFILE_PATH
from mldock.interfaces import (
    Builder,
    BuildRequest,
    BuildResult,
    HealthCheck,
    ProgressSink,
    PushResult,
    null_progress,
)
from mldock.local.engine import docker_client, engine_health

LONG_TIMEOUT = 3600
"""Seconds the SDK waits for the next stream chunk: a quiet ``RUN`` step may take long."""
LOG_TAIL = 40


class DockerBuilder(Builder):
    """Builds the project image with the local Docker engine (``[build] builder = "docker"``)."""

    def __init__(self, client: Any = None):
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = docker_client(timeout=LONG_TIMEOUT)
        return self._client

    # --- Builder interface ------------------------------------------------------------------------
    def exists(self, tag: str) -> bool:
        return self._image(tag) is not None

    def build(self, request: BuildRequest, *,
              progress: ProgressSink = null_progress) -> BuildResult:
        started = time.monotonic()
        existing = self._image(request.tag)
        if existing is not None:
            self._tag_latest(existing["Id"], request.tag)
            progress(f"{request.tag} is up to date: nothing to build")
            return BuildResult(tag=request.tag, image_id=existing["Id"], skipped=True,
                               seconds=time.monotonic() - started, size=existing.get("Size", 0))
        image_id = self._run_build(request, progress)
        image = self._image(request.tag)
        if image is None:  # the stream said nothing wrong, but there is no image: still a failure
            raise BuildFailedError(None, f"the engine finished without producing {request.tag}")
        self._tag_latest(image["Id"], request.tag)
        return BuildResult(tag=request.tag, image_id=image_id or image["Id"], skipped=False,
                           seconds=time.monotonic() - started, size=image.get("Size", 0))

    def push(self, tag: str, repository: str, *, auth: Mapping[str, str] | None = None,
             progress: ProgressSink = null_progress) -> PushResult:
        from docker.errors import APIError

        name, _, version = tag.rpartition(":")
        if not name or "/" in version:
            raise MldockError(f"cannot push {tag!r}: expected 'name:tag'")
        reference = f"{repository}:{version}"
        try:
            self.client.api.tag(tag, repository, version)
            stream = self.client.images.push(repository, tag=version, stream=True, decode=True,
                                             auth_config=dict(auth) if auth else None)
            digest = _push_digest(stream, reference, progress)
        except APIError as exc:
            raise MldockError(f"push of {reference} failed: {_api_message(exc)}",
                              hint=_push_hint(_api_message(exc))) from None
        progress(f"pushed {reference}@{digest}")
        return PushResult(reference=reference, digest=digest)

    def pushed_digest(self, tag: str, repository: str, *,
                      auth: Mapping[str, str] | None = None) -> str | None:
        """The digest the engine recorded when it pushed ``tag`` to ``repository`` before
        (``RepoDigests``), if the registry still serves it under the same tag: one request to
        the registry through the engine (``docker manifest inspect``'s distribution API)."""
        from docker.errors import APIError

        image = self._image(tag)
        version = tag.rpartition(":")[2]
        if image is None or not version:
            return None
        known = {entry.partition("@")[2] for entry in image.get("RepoDigests") or []
                 if entry.partition("@")[0] == repository}
        if not known:
            return None
        try:
            found = self.client.api.inspect_distribution(
                f"{repository}:{version}", auth_config=dict(auth) if auth else None)
        except APIError:  # absent, deleted or unreadable: pushing settles it
            return None
        digest = str((found.get("Descriptor") or {}).get("digest") or "")
        return digest if digest in known else None

    def check(self) -> list[HealthCheck]:
        return [engine_health()]

    # --- helpers ----------------------------------------------------------------------------------
    def _image(self, tag: str) -> dict[str, Any] | None:
        from docker.errors import ImageNotFound

        try:
            return self.client.api.inspect_image(tag)
        except ImageNotFound:
            return None

    def _tag_latest(self, image_id: str, tag: str) -> None:
        repository = tag.rpartition(":")[0]
        self.client.api.tag(image_id, repository, "latest", force=True)

    def _run_build(self, request: BuildRequest, progress: ProgressSink) -> str | None:
        from docker.errors import APIError, BuildError

        with write_context_tar(request) as context:
            try:
                stream = self.client.api.build(
                    fileobj=context, custom_context=True, dockerfile=DOCKERFILE_PATH,
                    tag=request.tag, labels=dict(request.labels) or None,
                    buildargs=dict(request.build_args) or None, platform=request.platform,
                    rm=True, forcerm=True, pull=False, decode=True)
                return _follow_build(stream, progress)
            except (APIError, BuildError) as exc:
                raise BuildFailedError(None, _api_message(exc),
                                       hint="check the Dockerfile and the engine's log") from None


class _BuildLog:
    """Splits the engine's stream into lines and remembers the current step and the last lines."""

    def __init__(self, progress: ProgressSink):
        self.progress = progress
        self.step: str | None = None
        self.tail: deque[str] = deque(maxlen=LOG_TAIL)
        self._partial = ""

    def feed(self, text: str) -> None:
        text = self._partial + text
        *lines, self._partial = text.split("\n")
        for line in lines:
            self._line(line)

    def flush(self) -> None:
        if self._partial:
            self._line(self._partial)
            self._partial = ""

    def _line(self, line: str) -> None:
        line = line.rstrip("\r")
        if not line.strip():
            return
        if line.startswith("Step "):
            self.step = line.strip()
            self.tail.clear()
        self.tail.append(line)
        self.progress(line)


def _follow_build(stream: Iterable[dict[str, Any]], progress: ProgressSink) -> str | None:
    """Consume the build stream; return the image id, raise on the first error line."""
    log = _BuildLog(progress)
    image_id: str | None = None
    for chunk in stream:
        if not isinstance(chunk, dict):
            continue
        if "stream" in chunk:
            log.feed(str(chunk["stream"]))
        if "status" in chunk and chunk.get("status"):
            log.feed(str(chunk["status"]) + "\n")
        if "error" in chunk or "errorDetail" in chunk:
            log.flush()
            detail = chunk.get("errorDetail") or {}
            message = (detail.get("message") if isinstance(detail, dict) else None) \
                or chunk.get("error") or "unknown error"
            raise BuildFailedError(log.step, str(message).strip(), log_tail=tuple(log.tail),
                                   hint="the step's output is shown above")
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
    log.flush()
    return image_id


def _push_digest(stream: Iterable[dict[str, Any]], reference: str,
                 progress: ProgressSink) -> str:
    """Consume the push stream; raise on any error line; return the digest from the ``aux`` line."""
    digest: str | None = None
    reported: set[tuple[str, str]] = set()
    for chunk in stream:
        if not isinstance(chunk, dict):
            continue
        if "error" in chunk or "errorDetail" in chunk:
            detail = chunk.get("errorDetail") or {}
            message = str((detail.get("message") if isinstance(detail, dict) else None)
                          or chunk.get("error") or "unknown error").strip()
            raise MldockError(f"push of {reference} failed: {message}", hint=_push_hint(message))
        aux = chunk.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            digest = str(aux["Digest"])
        status = chunk.get("status")
        if status and status not in ("Pushing", "Waiting", "Preparing"):
            layer = str(chunk.get("id", ""))
            if (layer, status) not in reported:  # one line per layer and state, no progress bars
                reported.add((layer, status))
                progress(f"{layer}: {status}" if layer else str(status))
    if not digest:
        raise MldockError(f"push of {reference} ended without a digest from the registry",
                          hint="check the registry's logs; the push may be incomplete")
    return digest


def _push_hint(message: str) -> str:
    lowered = message.lower()
    if any(word in lowered for word in ("unauthorized", "authentication", "denied", "401", "403",
                                        "credentials")):  # "no basic auth credentials"
        return ("check the registry credentials (--username with --password-env, or"
                " 'docker login')")
    if any(word in lowered for word in ("connection refused", "no such host", "timeout",
                                        "dial tcp")):
        return "check that the registry address is right and reachable"
    return "see the registry's message above"


def _api_message(exc: Exception) -> str:
    explanation = getattr(exc, "explanation", None)
    text = explanation.decode() if isinstance(explanation, bytes) else explanation
    return str(text or getattr(exc, "msg", None) or exc).strip()
