"""Conformance tests for a deployer's tuning capability (:meth:`Deployer.tune`).

Subclass :class:`TuningContract`, set ``record``, and give three things: a ``deployer`` fixture
built through the record's factory (pointed at the platform's emulator or fake), a
``trial_image`` fixture (an image reference the platform accepts, pushed if it must be), and
:meth:`TuningContract.read_back`: the tuning job the deployer created, read back *from the
service* and described in mldock's neutral terms (:class:`TuningReadback`). The contract then
checks that what the platform holds is what was asked, that trials are reported once each with
values inside the space, that the best trial is the best, and that what the record's
:class:`~mldock.interfaces.TuningSupport` declares is what the deployer takes::

    class TestMyTuner(TuningContract):
        record = registered_record("deployer", "mydeployer")

        @pytest.fixture
        def deployer(self, fake, tmp_path):
            return self.record.build(FactoryContext(options=..., project_dir=tmp_path))

        @pytest.fixture
        def trial_image(self):
            return "registry.example/p@sha256:..."

        def read_back(self, deployer, result):
            job = my_sdk.get_tuning_job(result.job_id)  # from the fake, not from memory
            return TuningReadback(objective=job.metric, ...)

A fake that cannot run trials (it ends a job with none) declares the tests that need trials as
``expected_failure(reason=...)``, naming the fake's limit; it never skips them. No Docker engine
is needed: the platform runs the trials.
"""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from mldock.errors import MldockError
from mldock.interfaces import Deployer, TrialResult, TuneRequest, TuneResult, TuningSupport
from mldock.interfaces.deploy import EARLY_STOPPING, TUNE_STRATEGIES
from mldock.runtime.names import ENV_OBJECTIVE
from mldock.testing._common import Capability, ContractBase, require_capability

SPACE: dict[str, dict[str, Any]] = {
    "depth": {"type": "int", "low": 2, "high": 8, "step": 1, "scale": "linear"},
    "lr": {"type": "float", "low": 0.0001, "high": 0.1, "scale": "log"},
    "optimizer": {"type": "categorical", "values": ["adam", "sgd"]},
}
GRID_SPACE: dict[str, dict[str, Any]] = {
    "depth": {"type": "int", "low": 2, "high": 3, "step": 1, "scale": "linear"},
    "optimizer": {"type": "categorical", "values": ["adam", "sgd"]},
}
STATUSES = ("finished", "failed", "killed")


@dataclass(frozen=True)
class TuningReadback:
    """A created tuning job as the platform holds it, in mldock's neutral terms.

    Attributes:
        objective, direction: the metric the platform optimizes and which way.
        strategy, early_stopping: mldock's names for the platform's algorithm and stopping rule.
        max_trials, parallel_trials: the budget the platform holds.
        space: the searched parameters in the neutral JSON of :attr:`TuneRequest.space`
            (categorical values the platform keeps as text may come back as text).
        hyperparameters: the fixed values every trial gets.
        image: the image its trials run.
        environment: the variables its trials' containers get.
    """

    objective: str
    direction: str
    strategy: str
    early_stopping: str
    max_trials: int
    parallel_trials: int
    space: Mapping[str, Mapping[str, Any]]
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    image: str = ""
    environment: Mapping[str, str] = field(default_factory=dict)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9)
    return str(a) == str(b) if isinstance(a, str) != isinstance(b, str) else a == b


def same_space(held: Mapping[str, Mapping[str, Any]],
               asked: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether the platform holds the asked space (numbers compared as numbers)."""
    if sorted(held) != sorted(asked):
        return False
    for name, param in asked.items():
        got = held[name]
        for key, value in param.items():
            if key == "values":
                if len(got.get("values", ())) != len(value) or not all(
                        _close(x, y) for x, y in zip(got["values"], value, strict=True)):
                    return False
            elif key == "step" and param.get("type") == "int" and value == 1:
                continue  # a platform without steps holds the implicit 1
            elif not _close(got.get(key), value):
                return False
    return True


def value_in_space(value: Any, param: Mapping[str, Any]) -> bool:
    """Whether a trial's (decoded) value is one the parameter allows."""
    kind = param["type"]
    if kind == "categorical":
        return any(_close(value, v) for v in param["values"])
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    inside = param["low"] - 1e-9 <= number <= param["high"] + 1e-9
    return inside and (kind != "int" or float(number).is_integer())


class TuningContract(ContractBase):
    """What a deployer with the ``tuning`` capability promises.

    Capability flag, from the record: ``supports_tuning`` (``tuning``).
    """

    concern = "deployer"
    supports_tuning = Capability("tuning")

    # --- what a subclass provides or overrides ---------------------------------------------
    @pytest.fixture
    def deployer(self) -> Deployer:
        """The deployer under test. Override this fixture in your subclass."""
        raise NotImplementedError(f"{type(self).__name__} must define a `deployer` fixture")

    @pytest.fixture
    def trial_image(self) -> str:
        """The image trials run, as the platform pulls it. Override this fixture."""
        raise NotImplementedError(f"{type(self).__name__} must define a `trial_image` fixture")

    def read_back(self, deployer: Deployer, result: TuneResult) -> TuningReadback:
        """The tuning job ``result.job_id`` read back from the service. Override this."""
        raise NotImplementedError(f"{type(self).__name__} must define read_back()")

    def tune_request(self, image: str, **changes: Any) -> TuneRequest:
        """The contract's small search; a subclass may add inputs or options it needs."""
        strategy = "bayesian" if "bayesian" in self.support.strategies else "random"
        base = TuneRequest(tune_id=f"contract-{uuid.uuid4().hex[:8]}", image=image,
                           objective="val_acc", direction="maximize", space=SPACE,
                           strategy=strategy, early_stopping="none", max_trials=4,
                           parallel_trials=2, hyperparameters={"epochs": 2},
                           environment={ENV_OBJECTIVE: "val_acc"})
        return dataclasses.replace(base, **changes)

    # --- helpers ----------------------------------------------------------------------------
    @property
    def support(self) -> TuningSupport:
        return type(self).record.tuning

    def _tune(self, deployer: Deployer, request: TuneRequest
              ) -> tuple[TuneResult, list[TrialResult]]:
        require_capability(self, "supports_tuning")
        reported: list[TrialResult] = []
        result = deployer.tune(request, on_trial=reported.append)
        return result, reported

    # --- the contract -----------------------------------------------------------------------
    def test_record_declares_what_it_supports(self) -> None:
        """The record's ``tuning`` table is a TuningSupport naming known strategies and
        stopping rules. Fails when the capability is declared without the table."""
        require_capability(self, "supports_tuning")
        support = self.support
        assert isinstance(support, TuningSupport)
        assert support.strategies and support.strategies <= set(TUNE_STRATEGIES)
        assert "none" in support.early_stopping <= set(EARLY_STOPPING)

    def test_created_job_holds_the_request(self, deployer: Deployer, trial_image: str) -> None:
        """The tuning job read back from the service holds the objective, direction, strategy,
        budget, space, fixed hyperparameters, image and the objective's variable. Usually fails
        on a mapping slip: a log scale sent linear, a direction inverted, an int sent as a
        double, the fixed values or the environment left out."""
        request = self.tune_request(trial_image)
        result, _ = self._tune(deployer, request)
        held = self.read_back(deployer, result)
        assert (held.objective, held.direction) == (request.objective, request.direction)
        assert (held.strategy, held.early_stopping) == (request.strategy, request.early_stopping)
        assert (held.max_trials, held.parallel_trials) == (request.max_trials,
                                                           request.parallel_trials)
        assert same_space(held.space, request.space), (held.space, request.space)
        assert {k: str(v) for k, v in held.hyperparameters.items()} == \
            {k: str(v) for k, v in request.hyperparameters.items()}
        assert held.image == request.image
        assert held.environment.get(ENV_OBJECTIVE) == request.objective

    def test_trials_reported_once_within_the_space(self, deployer: Deployer,
                                                   trial_image: str) -> None:
        """Every trial has a unique number and platform job id, a known status, the fixed
        values plus sampled values inside the space, and reached ``on_trial`` exactly once.
        Fails when trials are reported twice (polling without memory) or values come back
        still encoded (``"0.01"`` for a float)."""
        request = self.tune_request(trial_image)
        result, reported = self._tune(deployer, request)
        assert result.tune_id == request.tune_id and result.job_id
        assert result.status in STATUSES
        assert result.trials, "the tuning job ended with no trial"
        assert len(result.trials) <= request.max_trials
        numbers = [t.number for t in result.trials]
        assert len(set(numbers)) == len(numbers)
        assert len({t.job_id for t in result.trials}) == len(numbers)
        assert all(t.job_id for t in result.trials)
        assert sorted(t.number for t in reported) == sorted(numbers)
        for trial in result.trials:
            assert trial.status in STATUSES, trial
            for name, value in request.hyperparameters.items():
                assert str(trial.hyperparameters.get(name)) == str(value), trial
            for name, param in request.space.items():
                assert value_in_space(trial.hyperparameters.get(name), param), (name, trial)

    def test_best_trial_is_the_best(self, deployer: Deployer, trial_image: str) -> None:
        """``best`` names a finished trial with an objective, none better in the request's
        direction, and its model. Fails when the direction is ignored or a pruned trial's
        partial value wins."""
        request = self.tune_request(trial_image)
        result, _ = self._tune(deployer, request)
        scored = [t for t in result.trials
                  if t.status == "finished" and t.objective is not None and not t.pruned]
        assert scored, "no trial finished with an objective"
        best = result.best_trial()
        assert best is not None and best in scored
        values = [t.objective for t in scored if t.objective is not None]
        expected = max(values) if request.direction == "maximize" else min(values)
        assert best.objective == expected
        assert best.model_uri

    @pytest.mark.parametrize("strategy", TUNE_STRATEGIES)
    def test_declared_strategies_are_taken(self, deployer: Deployer, trial_image: str,
                                           strategy: str) -> None:
        """Each strategy the record declares creates a job that holds it; one it does not
        declare is refused with an MldockError before anything is created. Fails when the
        table and the mapping disagree."""
        require_capability(self, "supports_tuning")
        stopping = "hyperband" if strategy == "hyperband" else "none"
        if stopping not in self.support.early_stopping:
            stopping = "none"
        request = self.tune_request(trial_image, strategy=strategy, early_stopping=stopping,
                                    space=GRID_SPACE if strategy == "grid" else SPACE)
        if strategy not in self.support.strategies:
            with pytest.raises(MldockError):
                deployer.tune(request)
            return
        result = deployer.tune(request)
        assert self.read_back(deployer, result).strategy == strategy


__all__ = ["TuningContract", "TuningReadback", "same_space", "value_in_space"]
