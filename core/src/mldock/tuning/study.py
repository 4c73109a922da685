"""The Optuna study of a local search: its sampler, its pruner, and where it is kept.

The study lives in a journal file beside the parent run's log (``.mldock/runs/<tune id>/
optuna.journal``): Optuna's append-only file storage, safe for several threads and processes,
with no server or database to run. A killed ``mldock tune`` leaves the journal as it was at the
last finished write, which is what lets the next one resume the study where it stopped.
Optuna is imported here only, when a local search starts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mldock.errors import MldockError
from mldock.tuning.spec import TuneSection

JOURNAL = "optuna.journal"


class LocalTuneOptions(BaseModel):
    """``[tune.local]``: settings only the local tuner has (Optuna's pruners)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    startup_trials: int = Field(
        default=5, ge=0, le=1000,
        description="trials that complete before median early stopping stops any")
    warmup_steps: int = Field(
        default=0, ge=0, description="steps a trial reports before it can be stopped early")
    min_resource: int = Field(
        default=1, ge=1, description="hyperband: the fewest steps a trial runs")
    reduction_factor: int = Field(default=3, ge=2, le=10, description="hyperband: its eta")


def require_optuna() -> Any:
    """The ``optuna`` module, or one line saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise MldockError("a local 'mldock tune' needs Optuna, which is not installed",
                          hint="pip install 'mldock-core[tune]'", exit_code=3) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def sampler_for(spec: TuneSection) -> Any:
    optuna = require_optuna()
    samplers = optuna.samplers
    if spec.strategy == "random":
        return samplers.RandomSampler(seed=spec.seed)
    if spec.strategy == "grid":  # the points are queued (local._reopen_study): none sampled
        return samplers.RandomSampler(seed=spec.seed)
    return samplers.TPESampler(seed=spec.seed)  # bayesian, and hyperband's sampler


def pruner_for(spec: TuneSection, options: LocalTuneOptions | None) -> Any:
    optuna = require_optuna()
    options = options or LocalTuneOptions()
    pruners = optuna.pruners
    if spec.stopping == "median":
        return pruners.MedianPruner(n_startup_trials=options.startup_trials,
                                    n_warmup_steps=options.warmup_steps)
    if spec.stopping == "hyperband":
        return pruners.HyperbandPruner(min_resource=options.min_resource,
                                       reduction_factor=options.reduction_factor)
    return pruners.NopPruner()


def open_study(folder: Path, tune_id: str, spec: TuneSection,
               options: LocalTuneOptions | None) -> Any:
    """The study of ``tune_id`` (created, or loaded to resume)."""
    optuna = require_optuna()
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    folder.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(folder / JOURNAL)))
    return optuna.create_study(
        study_name=tune_id, storage=storage, load_if_exists=True, direction=spec.direction,
        sampler=sampler_for(spec), pruner=pruner_for(spec, options))
