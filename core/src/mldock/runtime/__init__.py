"""mldock's in-container runtime: one entrypoint that trains or serves on any platform.

This package is copied into every image (``/opt/mldock/mldock/runtime``) next to a bare
``mldock/__init__.py``, so it may import only the standard library and its own modules: never
typer, pydantic, pluggy, docker, a cloud SDK or another ``mldock`` sub-package. numpy is used
when the image happens to have it, imported where needed; ``gs://`` goes through the standard
library (:mod:`mldock.runtime.gcs`).

Entry points: ``mldock-runtime train|serve`` (:mod:`mldock.runtime.__main__`), user code receives a
:class:`mldock.runtime.context.TrainingContext`; predictors are served by
:mod:`mldock.runtime.server`.
"""

from __future__ import annotations

from mldock.runtime.names import MANIFEST_NAME  # the container contract's names live there

__all__ = ["MANIFEST_NAME"]
