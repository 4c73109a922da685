"""Building (and pushing) the one container image a project runs everywhere."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from mldock.interfaces.common import HealthCheck, ProgressSink, null_progress


@dataclass(frozen=True)
class BuildRequest:
    """What to build.

    Attributes:
        context_dir: the build context (the project folder, filtered by ``.dockerignore``).
        dockerfile: the Dockerfile text to build with (rendered by core or supplied by the user).
        tag: the image reference to produce, ``name:tag``; the tag hashes the build inputs.
        labels: labels to set on the image.
        build_args: ``--build-arg`` values.
        platform: target platform, ``linux/amd64`` by default.
        extra_files: files to add to the context: path inside the context -> bytes.
        include: the context paths the Dockerfile reads (its ``COPY``/``ADD`` sources, as
            :func:`mldock.imaging.copies.copy_sources` finds them): a builder sends only the
            entries at or under these paths, plus the Dockerfile. Set for mldock's rendered
            Dockerfile, so files the image never contains are neither sent nor hashed. ``None``
            (a user's Dockerfile): the whole context, as ``docker build`` would send it.
            :func:`mldock.imaging.context.write_context_tar` honours it; the extra
            ``.dockerignore`` encodes it too, for builders that apply ``.dockerignore`` themselves.
    """

    context_dir: Path
    dockerfile: str
    tag: str
    labels: Mapping[str, str] = field(default_factory=dict)
    build_args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    extra_files: Mapping[str, bytes] = field(default_factory=dict)
    include: tuple[str, ...] | None = None


@dataclass(frozen=True)
class BuildResult:
    """A built image. ``skipped`` is true when the tag already existed and nothing was built."""

    tag: str
    image_id: str
    skipped: bool = False
    seconds: float = 0.0
    size: int = 0


@dataclass(frozen=True)
class PushResult:
    """A pushed image: ``digest`` is the registry's content digest, ``sha256:…``."""

    reference: str
    digest: str


class Builder(ABC):
    """Builds images and, with the ``push`` capability, pushes them.

    Contract: :meth:`build` raises :class:`mldock.errors.MldockError` naming the failing step when a
    build fails (never reports a failed build as success); it skips the build when ``request.tag``
    already exists; it never prunes the user's build cache.
    """

    @abstractmethod
    def build(self, request: BuildRequest, *,
              progress: ProgressSink = null_progress) -> BuildResult:
        """Build ``request.tag`` unless it already exists."""

    @abstractmethod
    def exists(self, tag: str) -> bool:
        """Whether the image ``tag`` exists locally."""

    def push(self, tag: str, repository: str, *, auth: Mapping[str, str] | None = None,
             progress: ProgressSink = null_progress) -> PushResult:
        """Tag ``tag`` as ``repository:<same tag>`` and push it (capability ``push``).

        Contract: every line the registry answers is checked, and any error line raises
        :class:`mldock.errors.MldockError` with a hint (a failed push is never a success); the
        returned digest is the registry's own (``sha256:…``, what ``repository@digest`` pulls);
        ``auth`` (``{"username", "password"}``, fetched by the deployer just before) is used for
        this push only and never shown in ``progress`` nor stored. ``None`` uses the engine's
        own login. Core calls this from :mod:`mldock.publish` for every remote use of the image.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot push images")

    def pushed_digest(self, tag: str, repository: str, *,
                      auth: Mapping[str, str] | None = None) -> str | None:
        """The digest under which ``repository`` already holds this very image, else ``None``.

        Lets core skip a push that would send nothing. "This very image" means the registry's
        ``repository:<tag>`` is the content the local ``tag`` was pushed as before, not merely
        an image with the same tag. A builder that cannot tell cheaply (one registry request at
        most) returns ``None``, which only costs a push. Default: ``None``.
        """
        return None

    def check(self) -> list[HealthCheck]:
        """Health checks for ``mldock doctor`` (engine reachable). Default: none."""
        return []
