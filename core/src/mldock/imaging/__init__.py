"""The image recipe, shared by every builder: Dockerfile, build context, input hash and tag.

A builder plugin (the built-in Docker one, or a kaniko/buildah/cloud-build one) receives a
:class:`~mldock.interfaces.BuildRequest` made by :func:`build_request` and only has to turn it into
an image; everything that decides *what* goes into the image lives here, so all builders produce the
same layout (the one ``CONTAINER-CONTRACT.md`` describes) and the same tag for the same inputs.

Modules:
    dockerfile: renders the Dockerfile from ``[project]`` and ``[build]`` (or reads the user's).
    context: which project files go into the build context, plus the runtime files mldock adds;
        writes the context tar (``.dockerignore`` matching is the docker SDK's own).
    inputs: the content hash of all build inputs, which names the image tag.
    request: ``build_request(config)`` and ``image_for(config)``.

Nothing here imports docker at module level: ``mldock train`` can ask for the image tag cheaply.
"""

from __future__ import annotations

from mldock.errors import MldockError


class BuildFailedError(MldockError):
    """An image build failed at a known step.

    Attributes:
        step: the failing step as the builder reports it (``Step 4/9 : RUN pip install ...``), or
            ``None`` when the failure came before any step.
        detail: the builder's error text.
        log_tail: the last output lines before the failure (shown when progress was hidden).
    """

    def __init__(self, step: str | None, detail: str, *, log_tail: tuple[str, ...] = (),
                 hint: str | None = None):
        where = f" at {step}" if step else ""
        super().__init__(f"image build failed{where}: {detail}", hint=hint)
        self.step = step
        self.detail = detail
        self.log_tail = log_tail


__all__ = ["BuildFailedError"]
