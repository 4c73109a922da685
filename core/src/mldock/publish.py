"""Getting the project's image where a remote target runs it: one path for every command.

``mldock train``, ``deploy``, ``batch`` and ``push`` on a remote target all call
:func:`push_for_target`. The deployer answers only *where* (:meth:`Deployer.registry_target`:
repository and credentials fetched just now); the configured builder pushes (every registry line
checked, the registry's digest returned); the target then runs ``repository@sha256:…``, so what
runs is exactly what was pushed. A cloud plugin therefore never pushes, and never needs Docker.

A push is skipped when the registry already holds this very image (the builder can tell with
one request, :meth:`Builder.pushed_digest`), and an image that already names the target's
registry is used as it is (a run trained there records ``repo@sha256:…``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import Builder, ProgressSink, RegistryTarget, null_progress

if TYPE_CHECKING:  # pragma: no cover
    from mldock.session import Session


@dataclass(frozen=True)
class PublishedImage:
    """An image as a remote target pulls it.

    Attributes:
        image: what was asked for: a local tag (``iris:3f2a…``) or a registry reference.
        reference: ``repository:tag`` as it sits in the registry (or ``image`` when it was
            already a registry reference).
        pinned: what the target must run: ``repository@sha256:…`` (or ``image`` as it was).
        digest: the registry's digest ``sha256:…``; ``None`` for a tag reference used as is.
        pushed: whether anything was sent (``False``: the registry had it already).
    """

    image: str
    reference: str
    pinned: str
    digest: str | None
    pushed: bool


def push_for_target(session: Session, image: str, *, fallback: Sequence[str] = (),
                    progress: ProgressSink = null_progress) -> PublishedImage | None:
    """Make ``image`` pullable by the session's deployer; ``None`` when it runs local images.

    ``fallback``: other names of the same image (a run's local tag behind its pushed
    reference), used when ``image`` is neither in the target's registry nor on this machine.
    """
    target = session.deployer.registry_target(image)
    if target is None:
        return None
    record = session.registry.get("builder", session.builder_name)
    if "push" not in record.capabilities:
        raise MldockError(f"builder {session.builder_name!r} cannot push images, and deployer"
                          f" {session.deployer_name!r} runs them from {target.repository}",
                          hint="use a builder with the 'push' capability ([build] builder ="
                               ' "docker")', exit_code=2)
    return publish(image, target, session.builder, fallback=fallback, progress=progress)


def publish(image: str, target: RegistryTarget, builder: Builder, *,
            fallback: Sequence[str] = (),
            progress: ProgressSink = null_progress) -> PublishedImage:
    """Push ``image`` (or the first local name in ``fallback``) to ``target`` unless the
    registry has it already; see :func:`push_for_target`."""
    names = [image, *fallback]
    for name in names:
        if same_registry(name, target.repository):
            progress(f"{name} is in {registry_host(target.repository)} already: not pushed")
            digest = name.partition("@")[2] or None
            return PublishedImage(name, name, name, digest, pushed=False)
    local = next((name for name in names if "@" not in name and builder.exists(name)), None)
    if local is None:
        raise _nowhere(image, target.repository)
    return _push(local, target, builder, progress)


def _push(tag: str, target: RegistryTarget, builder: Builder,
          progress: ProgressSink) -> PublishedImage:
    repository = target.repository
    reference = f"{repository}:{tag.rpartition(':')[2]}"
    known = builder.pushed_digest(tag, repository, auth=target.auth)
    if known:
        progress(f"{reference} is {known} already: nothing to push")
        return PublishedImage(tag, reference, f"{repository}@{known}", known, pushed=False)
    progress(f"pushing {tag} to {repository}")
    result = builder.push(tag, repository, auth=target.auth, progress=progress)
    return PublishedImage(tag, result.reference, f"{repository}@{result.digest}", result.digest,
                          pushed=True)


def registry_host(reference: str) -> str | None:
    """The registry host of an image reference or repository, ``None`` for a bare local name
    (``iris:abc``, ``team/iris``): the first part counts as a host only when it looks like one."""
    first, slash, _ = reference.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return first
    return None


def same_registry(image: str, repository: str) -> bool:
    """Whether ``image`` already names the registry of ``repository`` (pullable as it is)."""
    host = registry_host(image)
    return host is not None and host == registry_host(repository)


def _nowhere(image: str, repository: str) -> MldockError:
    if registry_host(image) is not None:
        return UsageError(f"{image} is not in {registry_host(repository)}, where the target"
                          " pulls images from, nor on this machine to push it there",
                          hint="build it here ('mldock build'), then retry; the push is"
                               " automatic")
    return NotFoundError(f"image {image} is not on this machine, so it cannot be pushed to"
                         f" {repository}",
                         hint="run 'mldock build' (same code and config as the run), then retry")


__all__ = ["PublishedImage", "publish", "push_for_target", "registry_host", "same_registry"]
