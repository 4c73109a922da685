"""A deployer with a tuner, for testing core's side of ``Deployer.tune`` without a cloud.

``FakeTuner.tune`` keeps each created job in :data:`SERVICE` as JSON (what a platform would hold,
read back by the contract), "runs" its trials by sampling the space with a seeded generator, and
scores them with a known function, so the best trial is known. ``flip_direction`` makes a
deployer that stores the direction inverted: the contract must catch it.
"""

from __future__ import annotations

import json
import random
from typing import Any

from mldock.errors import MldockError
from mldock.interfaces import (
    Deployer,
    Deployment,
    DeployRequest,
    Prediction,
    TrialResult,
    TrialSink,
    TuneRequest,
    TuneResult,
    TuningSupport,
)
from mldock.interfaces.common import ProgressSink, null_progress
from mldock.testing.tuning import TuningReadback

SERVICE: dict[str, str] = {}
SUPPORT = TuningSupport(strategies=frozenset({"bayesian", "random", "grid"}),
                        early_stopping=frozenset({"median"}), max_parallel_trials=4)


def score(values: dict[str, Any]) -> float:
    return round(1.0 - abs(float(values.get("lr", 0.01)) - 0.01) - int(values.get("depth", 2))
                 / 100 - (0.05 if values.get("optimizer") == "sgd" else 0.0), 9)


def _sample(param: dict[str, Any], rng: random.Random) -> Any:
    if param["type"] == "categorical":
        return rng.choice(param["values"])
    if param["type"] == "int":
        return rng.randrange(param["low"], param["high"] + 1, param.get("step", 1))
    return rng.uniform(param["low"], param["high"])


class FakeTuner(Deployer):
    """Tunes on :data:`SERVICE`; serving is not its business."""

    flip_direction = False

    def tune(self, request: TuneRequest, *, progress: ProgressSink = null_progress,
             on_trial: TrialSink | None = None) -> TuneResult:
        if request.strategy not in SUPPORT.strategies:
            raise MldockError(f"faketune has no {request.strategy!r} strategy")
        job_id = f"job-{len(SERVICE)}"
        direction = request.direction
        if self.flip_direction:
            direction = "minimize" if direction == "maximize" else "maximize"
        SERVICE[job_id] = json.dumps({
            "objective": request.objective, "direction": direction,
            "strategy": request.strategy, "early_stopping": request.early_stopping,
            "max_trials": request.max_trials, "parallel_trials": request.parallel_trials,
            "space": request.space, "static": {k: str(v) for k, v in
                                                request.hyperparameters.items()},
            "image": request.image, "env": dict(request.environment)})
        rng = random.Random(request.seed or 7)  # noqa: S311 - a fake sampler, no secret
        trials = []
        for number in range(request.max_trials):
            values = {name: _sample(dict(p), rng) for name, p in request.space.items()}
            trial = TrialResult(
                number=number, job_id=f"{job_id}-{number:03d}", status="finished",
                hyperparameters={**request.hyperparameters, **values}, objective=score(values),
                model_uri=f"{request.output_uri}/{job_id}-{number:03d}/model.tar.gz",
                metrics={"loss": 1 - score(values)})
            trials.append(trial)
            if on_trial is not None:
                on_trial(trial)
        pick = max if request.direction == "maximize" else min
        best = pick(trials, key=lambda t: t.objective or 0.0).number
        return TuneResult(tune_id=request.tune_id, job_id=job_id, status="finished",
                          trials=tuple(trials), best=best)

    # serving: none
    def deploy(self, request: DeployRequest, *, progress: ProgressSink = null_progress
               ) -> Deployment:
        raise NotImplementedError

    def undeploy(self, name: str) -> None:
        raise NotImplementedError

    def get(self, name: str) -> Deployment:
        raise NotImplementedError

    def list(self) -> list[Deployment]:
        return []

    def predict(self, name: str, body: bytes, *, content_type: str = "application/json",
                accept: str = "application/json") -> Prediction:
        raise NotImplementedError


def read_back(job_id: str) -> TuningReadback:
    job = json.loads(SERVICE[job_id])
    return TuningReadback(objective=job["objective"], direction=job["direction"],
                          strategy=job["strategy"], early_stopping=job["early_stopping"],
                          max_trials=job["max_trials"], parallel_trials=job["parallel_trials"],
                          space=job["space"], hyperparameters=job["static"], image=job["image"],
                          environment=job["env"])
