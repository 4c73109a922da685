"""A search as tracked runs: one parent run (the tune) and one child run per trial.

Tags tie them together in any tracker, without a tracker feature of its own:

* the parent: ``mldock.kind = tune``, ``mldock.tune.fingerprint`` (the search as run: a resumed
  search must be the same search), ``mldock.tune.best`` (the best trial's run id);
* each trial: ``mldock.parent = <tune id>``, ``mldock.trial = <number>``, ``mldock.pruned`` when
  early stopping stopped it (the run itself is then ``killed``).

The parent's metric ``<objective>`` holds each completed trial's final value at step = trial
number, so any page that plots a run's metric (``mldock ui``) plots the objective over trials.
Once the search ends the best trial's model becomes the parent's model, so ``mldock deploy
--run TUNE_ID`` serves it.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Iterable
from typing import Any

from mldock.interfaces import ArtifactRef, Metric, RunRecord, RunStatus
from mldock.session import Session
from mldock.tuning.spec import TuneSection

TAG_KIND = "mldock.kind"
TAG_PARENT = "mldock.parent"
TAG_TRIAL = "mldock.trial"
TAG_PRUNED = "mldock.pruned"
TAG_FINGERPRINT = "mldock.tune.fingerprint"
TAG_BEST = "mldock.tune.best"
TAG_OBJECTIVE = "mldock.tune.objective"
TAG_DIRECTION = "mldock.tune.direction"
KIND_TUNE = "tune"
MODEL_KEY = "runs/{run_id}/model"
SCAN_LIMIT = 100_000  # trials of a search are found by tag among the project's runs


def fingerprint(spec: TuneSection, hyperparameters: dict[str, Any], deployer: str) -> str:
    """What makes two searches the same one: the spec as ``deployer`` runs it and the fixed
    hyperparameters (trial budget and parallelism excluded: a resumed search may change them)."""
    data = spec.model_dump(mode="json", exclude={"max_trials", "parallel_trials"})
    blob = json.dumps([data, hyperparameters, deployer], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def is_tune(run: RunRecord) -> bool:
    return run.tags.get(TAG_KIND) == KIND_TUNE


def trial_number(run: RunRecord) -> int | None:
    try:
        return int(run.tags[TAG_TRIAL])
    except (KeyError, ValueError):
        return None


def trials_of(session: Session, tune_id: str) -> list[RunRecord]:
    """The child runs of ``tune_id``, by trial number (a retried number: newest last)."""
    runs = session.tracker.list_runs(session.project, limit=SCAN_LIMIT)
    found = [r for r in runs if r.tags.get(TAG_PARENT) == tune_id]
    return sorted(found, key=lambda r: (trial_number(r) or 0, r.started_at))


def objective_of(run: RunRecord, objective: str) -> float | None:
    value = run.metrics.get(objective)
    return value if value is not None and math.isfinite(value) else None


def ranked(trials: Iterable[RunRecord], objective: str, direction: str) -> list[RunRecord]:
    """Trials best first: finished ones with an objective by value, then the rest by number."""
    trials = list(trials)
    scored = [r for r in trials if r.status is RunStatus.FINISHED
              and objective_of(r, objective) is not None]
    scored.sort(key=lambda r: objective_of(r, objective) or 0.0,
                reverse=direction == "maximize")
    rest = sorted((r for r in trials if r not in scored), key=lambda r: trial_number(r) or 0)
    return scored + rest


def create_parent(session: Session, spec: TuneSection, *, platform: str, search: str,
                  tags: dict[str, str]) -> str:
    """The parent run of a new search; its params are the search's settings."""
    tracker = session.tracker
    run_id = tracker.create_run(session.project, tags={
        TAG_KIND: KIND_TUNE, TAG_FINGERPRINT: search, TAG_OBJECTIVE: spec.objective,
        TAG_DIRECTION: spec.direction, "mldock.platform": platform, **tags})
    tracker.log_params(run_id, {
        "tune.objective": spec.objective, "tune.direction": spec.direction,
        "tune.strategy": spec.strategy, "tune.early_stopping": spec.stopping,
        "tune.max_trials": spec.max_trials, "tune.parallel_trials": spec.parallel_trials,
        "tune.space": json.dumps(spec.model_dump(mode="json")["space"], sort_keys=True)})
    tracker.flush()
    return run_id


def record_objective(session: Session, tune_id: str, objective: str, number: int,
                     value: float) -> None:
    """A completed trial's final objective on the parent, at step = trial number."""
    session.tracker.log_metrics(tune_id, [Metric(key=objective, value=value, step=number)])
    session.tracker.flush()


def register_best(session: Session, tune_id: str, best: RunRecord) -> ArtifactRef | None:
    """The best trial's model as the parent's model, and its values as the parent's params.

    A model in the project's store is stored again under the parent's key (content-addressed:
    no byte is uploaded twice); a platform's own model URI is recorded as it is.
    """
    from mldock.training.runner import model_artifact

    tracker = session.tracker
    tracker.set_tags(tune_id, {TAG_BEST: best.id})
    tracker.log_params(tune_id, {k: v for k, v in best.params.items()
                                 if not k.startswith("tune.")})
    found = model_artifact(best)
    if found is None:
        return None
    key = MODEL_KEY.format(run_id=tune_id)
    if found.kind == "remote":
        ref = ArtifactRef(key=key, uri=found.uri, sha256=found.sha256, size=found.size,
                          kind="remote")
    else:
        scratch = session.state_dir / "tmp" / f"best-{tune_id}"
        shutil.rmtree(scratch, ignore_errors=True)
        try:
            session.storage.get_tree(found.key, scratch)
            ref = session.storage.put_tree(scratch, key)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    tracker.log_artifact(tune_id, ref)
    tracker.flush()
    return ref
