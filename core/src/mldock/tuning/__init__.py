"""Hyperparameter search: ``[tune]`` (:mod:`.spec`), its space (:mod:`.space`), what each
deployer supports (:mod:`.support`), the local Optuna tuner (:mod:`.local`) and the cloud path
(:mod:`.remote`). Importing this package imports neither Optuna nor a cloud SDK."""
