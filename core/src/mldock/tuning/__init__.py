"""Hyperparameter search: ``[tune]`` (:mod:`.spec`), its space (:mod:`.space`), what each
deployer supports (:mod:`.support`), the local Optuna tuner (:mod:`.local`) and the cloud path
(:mod:`.remote`). Importing this package imports neither Optuna nor a cloud SDK."""

from __future__ import annotations

__all__: list[str] = []  # the modules are the API: mldock.tuning.spec, .support, .local …
