"""Azure ML sweep jobs: the sweep mldock builds, and sweeps run on the fake with a real image.

Offline: how each kind of parameter and each setting maps onto ``command(...).sweep(...)`` and
what Azure ML's samplers refuse. On the fake (Docker): the real azure-ai-ml client sends the
sweep, the fake checks it against the SDK's REST models and the service's rules, runs every trial
as a child command job of a real mldock image (``mldock build`` of a project whose ``train``
turns its hyperparameters into the objective), and the sweep, its children and their values are
read back. What the fake cannot do: Bayesian sampling (it draws at random; grid is exact), apply
early termination, or read MLflow (it reads the objective from the children's ``mldock-metric``
lines, where the service reads their MLflow runs).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azureml_parts import build_deployer, mldock
from azureml_parts import options_for as options_for_fake
from mldock.errors import UsageError
from mldock.interfaces import TuneRequest
from mldock.local.build import DockerBuilder
from mldock.publish import publish
from mldock.records import FactoryContext
from mldock.testing import TuningContract, TuningReadback, registered_record
from mldock.testing.docker import require_docker, require_image
from mldock.tuning.space import to_neutral
from mldock.tuning.spec import TuneSection
from mldock.tuning.support import options_for, support_problem
from mldock_azure.config import AzureMLOptions
from mldock_azure.names import ACR_USER, job_name
from mldock_azure.plugin import TUNING
from mldock_azure.tuning import sweep_job, trial_values

BASE_IMAGE = "python:3.11-slim"
OPTIONS = AzureMLOptions(subscription_id="11111111-2222-3333-4444-555555555555",
                         resource_group="mldock-rg", workspace="mldock-ws", compute="cpu-cluster")
TRAIN = '''\
import json
from pathlib import Path


def train(ctx):
    depth, lr = int(ctx.param("depth")), float(ctx.param("lr"))
    print("values " + json.dumps(ctx.hyperparameters, sort_keys=True), flush=True)
    if depth == 3:
        raise ValueError("depth 3 breaks the model")
    ctx.log_metric("val_accuracy", depth / 10 + lr, step=1)
    ctx.log_metric("val_acc", depth / 10 + lr, step=1)  # the conformance contract's objective
    model = {"feature": "x", "target": "y", "slope": float(depth), "intercept": lr}
    (Path(ctx.model_dir) / "model.json").write_text(json.dumps(model))
'''


def spec(**changes: Any) -> TuneSection:
    values = {"objective": "val_accuracy", "direction": "maximize", "space": {
        "lr": {"type": "float", "low": 1e-4, "high": 0.1, "scale": "log"},
        "depth": {"type": "int", "low": 2, "high": 8},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "trees": {"type": "float", "low": 50, "high": 200, "step": 50},
        "optimizer": ["adam", "sgd"]}}
    values.update(changes)
    return TuneSection.model_validate(values)


def tune_request(section: TuneSection, **changes: Any) -> TuneRequest:
    values: dict[str, Any] = {
        "tune_id": uuid.uuid4().hex[:14], "image": "mldockfakeacr.azurecr.io/proj:1",
        "objective": section.objective, "direction": section.direction,
        "space": to_neutral(section.space), "strategy": section.strategy,
        "early_stopping": section.stopping, "max_trials": section.max_trials,
        "parallel_trials": section.parallel_trials, "hyperparameters": {"epochs": 5},
        "seed": section.seed,
        "environment": {"MLDOCK_OBJECTIVE": "val_accuracy"}}
    values.update(changes)
    return TuneRequest(**values)


def rest(sweep: Any) -> dict[str, Any]:
    """The sweep as the SDK sends it (environment left as built)."""
    job = sweep._to_job()
    job.environment = "azureml:env:1"
    found = job._to_rest_object()
    return dict(found.as_dict() if hasattr(found, "as_dict") else found)["properties"]


# --- offline ----------------------------------------------------------------------------------


def test_the_sweep_maps_every_kind_of_parameter_and_the_limits():
    section = spec(strategy="random", seed=7, early_stopping="median", max_trials=12,
                   parallel_trials=3)
    request = tune_request(section)
    body = rest(sweep_job(request, OPTIONS, name="proj-t1", project="proj",
                          channels={"train": "azureml://datastores/d/paths/train"}))
    space = body["searchSpace"]
    assert space["lr"][0] == "loguniform"
    assert space["lr"][1] == pytest.approx([math.log(1e-4), math.log(0.1)])
    assert space["depth"] == ["choice", [[2, 3, 4, 5, 6, 7, 8]]]
    assert space["dropout"] == ["uniform", [0.0, 0.5]]
    assert space["trees"] == ["quniform", [50.0, 200.0, 50.0]]
    assert space["optimizer"] == ["choice", [["adam", "sgd"]]]
    assert body["samplingAlgorithm"] == {"samplingAlgorithmType": "Random", "seed": 7}
    assert body["objective"] == {"goal": "maximize", "primaryMetric": "val_accuracy"}
    assert body["earlyTermination"] == {"policyType": "MedianStopping", "evaluationInterval": 1,
                                        "delayEvaluation": 0}
    assert body["limits"]["maxTotalTrials"] == 12 and body["limits"]["maxConcurrentTrials"] == 3
    assert body["limits"]["trialTimeout"] == "P1D"  # [deploy.azureml] timeout_s
    command = body["trial"]["command"]
    assert command.startswith("mldock-runtime train --model-dir=${{outputs.model}}"
                              " --input-train=${{inputs.train}} --epochs=5")
    assert command.endswith("--depth=${{search_space.depth}} --dropout=${{search_space.dropout}}"
                            " --lr=${{search_space.lr}} --optimizer=${{search_space.optimizer}}"
                            " --trees=${{search_space.trees}}")
    assert body["trial"]["environmentVariables"]["MLDOCK_RUN_ID"] == request.tune_id
    assert body["tags"]["mldock-role"] == "tuning"
    assert body["computeId"] == "cpu-cluster"


def test_policies_grid_and_the_sweeps_own_timeout():
    section = spec(strategy="grid", space={"depth": {"type": "int", "low": 1, "high": 3},
                                           "rate": {"type": "float", "low": 0, "high": 1,
                                                    "step": 0.5}},
                   early_stopping="median",
                   azureml={"policy": "bandit", "slack_factor": 0.2, "evaluation_interval": 2,
                            "delay_evaluation": 5, "timeout_s": 7200})
    extra = options_for(section, "azureml", TUNING)
    body = rest(sweep_job(tune_request(section, tune_options=extra), OPTIONS, name="proj-t2",
                          project="proj", channels={}))
    assert body["searchSpace"] == {"depth": ["choice", [[1, 2, 3]]],
                                   "rate": ["choice", [[0.0, 0.5, 1.0]]]}
    assert body["samplingAlgorithm"] == {"samplingAlgorithmType": "Grid"}
    assert body["earlyTermination"] == {"policyType": "Bandit", "slackFactor": 0.2,
                                        "evaluationInterval": 2, "delayEvaluation": 5}
    assert body["limits"]["timeout"] == "PT2H"
    truncation = spec(strategy="random", early_stopping="median",
                      azureml={"policy": "truncation", "truncation_percentage": 20})
    body = rest(sweep_job(tune_request(truncation, tune_options=options_for(
        truncation, "azureml", TUNING)), OPTIONS, name="proj-t3", project="proj", channels={}))
    assert body["earlyTermination"]["policyType"] == "TruncationSelection"
    assert body["earlyTermination"]["truncationPercentage"] == 20


def test_bayesian_sampling_searches_log_ranges_as_log_spaced_choices():
    """Bayesian sampling has no log scale: such a range becomes 32 log-spaced values."""
    section = spec(space={"lr": {"type": "float", "low": 1e-4, "high": 0.1, "scale": "log"},
                          "n": {"type": "int", "low": 1, "high": 1000, "scale": "log"}})
    body = rest(sweep_job(tune_request(section), OPTIONS, name="x", project="proj",
                          channels={}))
    assert body["samplingAlgorithm"] == {"samplingAlgorithmType": "Bayesian"}
    kind, (values,) = body["searchSpace"]["lr"]
    assert kind == "choice" and len(values) == 32
    assert (values[0], values[-1]) == (1e-4, 0.1) and values == sorted(values)
    ratios = [b / a for a, b in itertools.pairwise(values)]
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-3)  # evenly spaced in log space
    kind, (ints,) = body["searchSpace"]["n"]
    assert ints[0] == 1 and ints[-1] == 1000 and all(isinstance(v, int) for v in ints)
    assert len(set(ints)) == len(ints)


def test_bayesian_sampling_takes_no_early_termination():
    linear = spec(space={"lr": {"type": "float", "low": 0.0, "high": 0.1}},
                  early_stopping="median")
    with pytest.raises(UsageError, match=r"tune\.early_stopping") as info:
        sweep_job(tune_request(linear), OPTIONS, name="x", project="proj", channels={})
    assert "[tune.azureml]" in info.value.hint
    with pytest.raises(UsageError, match=r"tune\.strategy: Azure ML has no 'hyperband'"):
        sweep_job(tune_request(spec(), strategy="hyperband"), OPTIONS, name="x",
                  project="proj", channels={})


def test_validate_names_what_azure_ml_has_no_equivalent_for():
    where, problem, _ = support_problem(spec(strategy="hyperband"), "azureml", TUNING)
    assert where == ("strategy",) and "no 'hyperband' strategy" in problem
    with pytest.raises(ValueError, match="slack_factor or slack_amount"):
        options_for(spec(azureml={"policy": "bandit"}), "azureml", TUNING)
    with pytest.raises(ValueError, match="policy"):
        options_for(spec(azureml={"policy": "asha"}), "azureml", TUNING)


def test_trial_values_as_hyperdrive_tags_them():
    tags = {"proj-t_0": json.dumps({"--depth": 2, "lr": "0.01", "optimizer": "adam"})}
    assert trial_values(tags, "proj-t_0") == {"depth": 2, "lr": 0.01, "optimizer": "adam"}
    assert trial_values(tags, "proj-t_1") == {}
    assert trial_values({"proj-t_2": "not json"}, "proj-t_2") == {}


# --- on the fake ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acr(start_registry, azureml_fake):
    return start_registry((ACR_USER, azureml_fake.acr_refresh_token))


@pytest.fixture(scope="module")
def tuning_image(tmp_path_factory) -> Iterator[str]:
    """``mldock build`` of a minimal project whose train reports depth / 10 + lr."""
    engine = require_docker()
    require_image(engine, BASE_IMAGE)
    root = tmp_path_factory.mktemp("tuning-project")
    name = f"aztune{uuid.uuid4().hex[:8]}"
    mldock("init", name, "--template", "minimal", "--no-input", cwd=root)
    package = next(p for p in (root / name / "src").iterdir() if p.is_dir())
    (package / "train.py").write_text(TRAIN)
    tag = str(json.loads(mldock("build", "--json", "--quiet", cwd=root / name).stdout)["tag"])
    yield tag
    for image in engine.images.list(name=tag.split(":")[0]):
        with contextlib.suppress(Exception):
            engine.images.remove(image.id, force=True)
    engine.close()


@pytest.fixture
def pushed(azureml_env, azureml_fake, acr, tuning_image) -> str:
    deployer = build_deployer(azureml_fake, registry_host=acr.host)
    return publish(tuning_image, deployer.registry_target(tuning_image), DockerBuilder()).pinned


GRID = {"depth": {"type": "int", "low": 1, "high": 4}, "lr": [0.01]}


@pytest.mark.docker
def test_a_grid_sweep_runs_its_trials_and_reads_them_back(azureml_fake, azureml_env, acr,
                                                          pushed):
    deployer = build_deployer(azureml_fake, registry_host=acr.host)
    request = tune_request(spec(strategy="grid", space=GRID, max_trials=4, parallel_trials=2),
                           image=pushed)
    seen: list[Any] = []
    lines: list[str] = []
    result = deployer.tune(request, on_trial=seen.append, progress=lines.append)
    name = job_name("proj", request.tune_id)
    assert (result.status, result.job_id) == ("finished", name), lines
    (sent,) = [r.json for r in azureml_fake.sent("PUT", f"/jobs/{name}$")]
    assert sent["properties"]["jobType"] == "Sweep"
    assert sent["properties"]["searchSpace"] == {"depth": ["choice", [[1, 2, 3, 4]]],
                                                 "lr": ["choice", [[0.01]]]}
    found = azureml_fake.ml_client().jobs.get(name)  # read back through the SDK
    assert found.type == "sweep" and found.objective.primary_metric == "val_accuracy"
    assert found.limits.max_total_trials == 4 and found.limits.max_concurrent_trials == 2
    assert found.properties["best_child_run_id"] == f"{name}_3"
    assert sorted(t.number for t in seen) == [0, 1, 2, 3]  # each reported once
    by_number = {t.number: t for t in result.trials}
    assert by_number[0].objective == pytest.approx(0.11)
    assert by_number[1].hyperparameters == {"epochs": 5, "depth": 2, "lr": 0.01}
    assert by_number[2].status == "failed" and "depth 3" in by_number[2].failure_reason
    assert result.best == 3 and by_number[3].objective == pytest.approx(0.41)
    assert by_number[3].model_uri == f"azureml://jobs/{name}_3/outputs/model"
    assert by_number[3].job_id == f"{name}_3"
    assert any(line.startswith("values ") for line in lines) is False  # trial logs stay quiet


@pytest.mark.docker
def test_ctrl_c_cancels_the_sweep(azureml_fake, azureml_env, acr, pushed):
    deployer = build_deployer(azureml_fake, registry_host=acr.host)
    request = tune_request(spec(strategy="grid", space=GRID, max_trials=4, parallel_trials=1),
                           image=pushed)
    name = job_name("proj", request.tune_id)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line == f"{name}: status Running":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deployer.tune(request, progress=progress)
    assert f"canceling sweep job {name}: Azure ML stops its running trials" in lines
    assert azureml_fake.sent("POST", f"/jobs/{name}/cancel")
    azureml_fake.wait_for(lambda: azureml_fake.ml_client().jobs.get(name).status == "Canceled",
                          timeout=120)


# --- the conformance contract ----------------------------------------------------------------


def _neutral(distribution: Any) -> dict[str, Any]:
    """An SDK search distribution in mldock's neutral terms (an exact choice of consecutive
    integers is the int range it was made from; loguniform bounds are logarithms)."""
    kind = type(distribution).__name__
    if kind == "Choice":
        values = list(distribution.values)
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values) and \
                values == list(range(values[0], values[-1] + 1)):
            return {"type": "int", "low": values[0], "high": values[-1], "scale": "linear"}
        return {"type": "categorical", "values": values}
    if kind == "LogUniform":
        return {"type": "float", "low": math.exp(distribution.min_value),
                "high": math.exp(distribution.max_value), "scale": "log"}
    return {"type": "float", "low": distribution.min_value, "high": distribution.max_value,
            "scale": "linear"}


@pytest.mark.docker
class TestAzureMLTuningContract(TuningContract):
    """mldock's tuning contract on the Azure ML fake: the trials are child command jobs of a
    real mldock image, and the sweep is read back through azure-ai-ml. The contract's search is
    asked with random sampling: its space has a log-scale range, which Azure ML's Bayesian
    sampling only approximates (a choice of log-spaced values; checked above)."""

    record = registered_record("deployer", "azureml")

    @pytest.fixture
    def deployer(self, azureml_fake, azureml_env, acr, tmp_path):
        from mldock_azure.clients import AzureIdentity
        from mldock_azure.deployer import AzureMLDeployer

        built = self.record.build(FactoryContext(
            options=options_for_fake(azureml_fake, registry_host=acr.host), project="contract",
            project_dir=tmp_path, env="azure"))
        assert isinstance(built, AzureMLDeployer)
        built.clients.identity = AzureIdentity(azureml_fake.credential())
        built.tuning.poll_s = 0.2
        self.fake = azureml_fake
        return built

    @pytest.fixture
    def trial_image(self, pushed) -> str:
        return str(pushed)

    def tune_request(self, image: str, **changes: Any) -> TuneRequest:
        return super().tune_request(image, **{"strategy": "random", **changes})

    def read_back(self, deployer: Any, result: Any) -> TuningReadback:
        import shlex

        client = self.fake.ml_client()
        job = client.jobs.get(result.job_id)
        sampling = job.sampling_algorithm
        strategy = str(getattr(sampling, "type", sampling)).lower()
        words = shlex.split(job.trial.command)
        fixed = dict(word[2:].split("=", 1) for word in words[2:]
                     if word.startswith("--") and "=" in word and "${{" not in word)
        environment = str(job.trial.environment)
        name, version = environment.rstrip("/").split("/")[-3], environment.rsplit("/", 1)[-1]
        return TuningReadback(
            objective=job.objective.primary_metric, direction=str(job.objective.goal).lower(),
            strategy=strategy, early_stopping="median" if job.early_termination else "none",
            max_trials=job.limits.max_total_trials,
            parallel_trials=job.limits.max_concurrent_trials,
            space={key: _neutral(value) for key, value in job.search_space.items()},
            hyperparameters=fixed, image=client.environments.get(name, version).image,
            environment=dict(job.trial.environment_variables or {}))
