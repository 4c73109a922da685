"""Data never goes into the image: refuse a build whose copied folders hold a data location.

Data, model weights, the artifact store and the runs database reach the container as mounted
inputs, never inside the image. Earlier versions excluded the *selected* ``[data]``, ``[storage]``
and ``[tracking]`` folders from the context, which made the image tag depend on the environment
(``--env aws`` switches storage, so it got another tag and "needed" another build). Now the context
holds only what the Dockerfile copies, so such folders are simply not sent, whatever the
environment. A local location *inside* a copied folder (data under ``src/``) would be baked in:
that is refused with a message saying which key and folder, rather than silently excluded
(which, again, would make the tag depend on the environment).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mldock.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from mldock.config import ResolvedConfig
    from mldock.imaging.context import ContextEntry


def local_locations(config: ResolvedConfig) -> list[tuple[str, str]]:
    """``(config key, path relative to the project)`` of every local data, storage and tracking
    location inside the project folder."""
    root = config.project_dir.resolve()
    named = [(f"data.{name}", uri) for name, uri in config.model.data.items()]
    named.append(("storage.uri", config.model.storage.uri))
    tracking = config.model.tracking.uri
    if tracking.startswith("sqlite:///"):
        named.append(("tracking.uri", tracking[len("sqlite:///"):]))
    found: list[tuple[str, str]] = []
    for key, named_location in named:
        parts = urlsplit(named_location)
        location = named_location
        if parts.scheme == "file":
            location = parts.path
        elif parts.scheme and len(parts.scheme) > 1:
            continue  # s3://, gs://, az://, http://: not in the project folder
        path = config.resolve_path(location).resolve()
        try:
            found.append((key, path.relative_to(root).as_posix()))
        except ValueError:
            continue  # outside the project: never in the context
    return found


def refuse_copied_data(config: ResolvedConfig, entries: Iterable[ContextEntry]) -> None:
    """Raise :class:`ConfigError` when a local data/storage/tracking location would be copied
    into the image (it is, or contains, a path of ``entries``)."""
    paths = [entry.path for entry in entries if entry.source is not None]
    for key, relative in local_locations(config):
        inside = relative in ("", ".") or any(
            path == relative or path.startswith(relative + "/") for path in paths)
        if inside:
            raise ConfigError(config.path.name, key,
                              f"{relative or '.'!r} would be copied into the image (it is inside"
                              " a folder the Dockerfile copies)",
                              hint="keep data and artifacts outside [project] source (e.g. in"
                                   " 'data/'), or list the folder in .dockerignore")
