"""Vertex AI hyperparameter tuning: the HyperparameterTuningJob mldock sends, and trials run on
the fake.

Offline: how each kind of parameter maps onto Vizier's specs, and that a trial's worker pools are
the ones a training job gets. On the fake (Docker): the job is parsed into
``aiplatform_v1.HyperparameterTuningJob``, checked, read back, and its trials really run as custom
jobs of a small image that writes the hypertune file from the values Vertex appended to its
arguments; the fake reads the file back from each trial's container. What the fake cannot do:
Vizier's Bayesian search (it samples at random; grid is exact) and early stopping (accepted, not
applied), so pruning is checked on Trial answers only.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pytest
from google.cloud import aiplatform_v1 as aip
from mldock.interfaces import TrainingJob, TuneRequest
from mldock.records import FactoryContext
from mldock.testing import TuningContract, TuningReadback, registered_record
from mldock.tuning.space import to_neutral
from mldock.tuning.spec import TuneSection
from mldock.tuning.support import options_for, support_problem
from mldock_gcp.config import VertexOptions
from mldock_gcp.plugin import TUNING
from mldock_gcp.training import custom_job, effective_options
from mldock_gcp.tuning import parameter_specs, study_spec, trial_of, tuning_job

IMAGE = "us-central1-docker.pkg.dev/p/mldock/proj@sha256:" + "ef" * 32
REGISTRY_HOST = "127.0.0.1:5999"  # never contacted: the fake finds the image on the engine
TRIAL = '''\
"""A trial: objective = depth / 10 + lr, written to the hypertune file as cloudml-hypertune does;
depth 3 fails, depth 4 reports nothing."""
import json, os, sys

args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--") and "=" in a)
print("ARGS " + json.dumps(sys.argv[1:]))
print("ENV " + json.dumps({k: os.environ.get(k) for k in (
    "CLOUD_ML_TRIAL_ID", "CLOUD_ML_HP_METRIC_TAG", "AIP_MODEL_DIR", "MLDOCK_RUN_ID")}))
depth = int(args["depth"])
if depth == 3:
    sys.exit("depth 3 breaks the model")
if depth == 4:
    sys.exit(0)
tag = os.environ["CLOUD_ML_HP_METRIC_TAG"]
os.makedirs("/tmp/hypertune", exist_ok=True)
with open("/tmp/hypertune/output.metrics", "w") as out:
    for step in (1, 2):
        value = (depth / 10 + float(args["lr"])) * step / 2
        out.write(json.dumps({tag: str(value), "global_step": str(step),
                              "trial": os.environ["CLOUD_ML_TRIAL_ID"]}) + "\\n")
'''


def spec(**changes: Any) -> TuneSection:
    values = {"objective": "val_accuracy", "direction": "maximize", "space": {
        "lr": {"type": "float", "low": 1e-4, "high": 0.1, "scale": "log"},
        "depth": {"type": "int", "low": 2, "high": 8},
        "trees": {"type": "int", "low": 50, "high": 200, "step": 50},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "step": 0.25},
        "optimizer": ["adam", "sgd"], "layers": [1, 2, 3], "flag": [True, "x"]}}
    values.update(changes)
    return TuneSection.model_validate(values)


def tune_request(section: TuneSection, **changes: Any) -> TuneRequest:
    values: dict[str, Any] = {
        "tune_id": uuid.uuid4().hex[:14], "image": IMAGE, "objective": section.objective,
        "direction": section.direction, "space": to_neutral(section.space),
        "strategy": section.strategy, "early_stopping": section.stopping,
        "max_trials": section.max_trials, "parallel_trials": section.parallel_trials,
        "hyperparameters": {"epochs": 5}, "environment": {"MLDOCK_OBJECTIVE": "val_accuracy"}}
    values.update(changes)
    return TuneRequest(**values)


# --- offline ----------------------------------------------------------------------------------


def test_every_kind_of_parameter_maps_onto_vizier():
    specs = {s["parameter_id"]: s for s in parameter_specs(to_neutral(spec().space))}
    assert specs["lr"] == {"parameter_id": "lr", "scale_type": "UNIT_LOG_SCALE",
                           "double_value_spec": {"min_value": 1e-4, "max_value": 0.1}}
    assert specs["depth"] == {"parameter_id": "depth", "scale_type": "UNIT_LINEAR_SCALE",
                              "integer_value_spec": {"min_value": 2, "max_value": 8}}
    assert specs["trees"]["discrete_value_spec"] == {"values": [50.0, 100.0, 150.0, 200.0]}
    assert specs["dropout"]["discrete_value_spec"] == {"values": [0.0, 0.25, 0.5]}
    assert specs["layers"] == {"parameter_id": "layers",
                               "discrete_value_spec": {"values": [1.0, 2.0, 3.0]}}
    assert specs["optimizer"] == {"parameter_id": "optimizer",
                                  "categorical_value_spec": {"values": ["adam", "sgd"]}}
    assert specs["flag"]["categorical_value_spec"] == {"values": ["true", "x"]}
    # each is a valid StudySpec.ParameterSpec as proto-plus reads it
    for item in specs.values():
        aip.StudySpec.ParameterSpec(item)


def test_the_study_strategy_and_early_stopping():
    request = tune_request(spec(strategy="random", early_stopping="median"))
    found = study_spec(request)
    assert found["metrics"] == [{"metric_id": "val_accuracy", "goal": "MAXIMIZE"}]
    assert found["algorithm"] == "RANDOM_SEARCH"
    assert found["median_automated_stopping_spec"] == {"use_elapsed_duration": False}
    assert study_spec(tune_request(spec()))["algorithm"] == "ALGORITHM_UNSPECIFIED"  # Vizier
    section = spec(direction="minimize", vertex={"measurement": "best",
                                                 "observation_noise": "high",
                                                 "max_failed_trials": 2})
    extra = options_for(section, "vertex", TUNING)
    found = study_spec(tune_request(section, tune_options=extra))
    assert found["metrics"][0]["goal"] == "MINIMIZE"
    assert found["measurement_selection_type"] == "BEST_MEASUREMENT"
    assert found["observation_noise"] == "HIGH"
    aip.StudySpec(found)


def test_trials_get_the_worker_pools_a_training_job_gets():
    options = VertexOptions(project="my-project", region="us-central1",
                            machine_type="n1-highmem-8", replica_count=2, spot=True,
                            labels={"team": "ml"})
    request = tune_request(spec(max_trials=8, parallel_trials=2),
                           options={"machine_type": "n1-standard-16"})
    body = tuning_job(request, effective_options(options, request.options),
                      display_name="proj-t1", base_output_dir="gs://b/t", project="proj")
    training = custom_job(TrainingJob(
        run_id=request.tune_id, image=IMAGE, hyperparameters={"epochs": 5},
        environment={"MLDOCK_OBJECTIVE": "val_accuracy",
                     "CLOUD_ML_HP_METRIC_TAG": "val_accuracy"},
        options={"machine_type": "n1-standard-16"}),
        options.model_copy(update={"machine_type": "n1-standard-16"}),
        display_name="proj-t1", base_output_dir="gs://b/t", project="proj")
    assert body["trial_job_spec"] == training["job_spec"]
    assert [p["replica_count"] for p in body["trial_job_spec"]["worker_pool_specs"]] == [1, 1]
    assert (body["max_trial_count"], body["parallel_trial_count"]) == (8, 2)
    assert body["labels"] == {"team": "ml", "mldock-project": "proj",
                              "mldock-run": request.tune_id, "mldock-role": "tuning"}
    aip.HyperparameterTuningJob(body)


def test_validate_names_what_vertex_has_no_equivalent_for():
    where, problem, hint = support_problem(spec(strategy="hyperband"), "vertex", TUNING)
    assert where == ("strategy",) and "no 'hyperband' strategy" in problem
    assert "[tune.vertex]" in hint
    assert support_problem(spec(strategy="hyperband", vertex={"strategy": "random"}),
                           "vertex", TUNING) is None
    with pytest.raises(ValueError, match="measurement"):
        options_for(spec(vertex={"measurement": "median"}), "vertex", TUNING)


def test_a_trial_stopped_by_vizier_is_pruned_and_keeps_its_model():
    trial = aip.Trial(name="projects/1/locations/l/studies/2/trials/3", id="3",
                      state=aip.Trial.State.SUCCEEDED, custom_job="projects/1/x/customJobs/9",
                      parameters=[aip.Trial.Parameter(parameter_id="depth", value=4.0)],
                      final_measurement=aip.Measurement(metrics=[aip.Measurement.Metric(
                          metric_id="val_accuracy", value=0.4)]))
    found = trial_of(trial, objective="val_accuracy", static={"epochs": 5},
                     base_output_dir="gs://b/t", pruned=True)
    assert (found.number, found.status, found.pruned, found.objective) == (2, "killed", True,
                                                                          0.4)
    assert found.hyperparameters == {"epochs": 5, "depth": 4}
    assert found.job_id == "projects/1/x/customJobs/9"
    assert found.model_uri == "gs://b/t/3/model"


# --- on the fake ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trial_image(docker_engine, tmp_path_factory):
    import os

    from mldock.testing.docker import require_image
    from vertex_fake import PROJECT

    base = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
    require_image(docker_engine, base)
    context = tmp_path_factory.mktemp("vertex-trial-image")
    (context / "trial.py").write_text(TRIAL)
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY trial.py /app/trial.py\nLABEL mldock.test=gcp-tuning\n"
        'ENTRYPOINT ["python3", "-u", "/app/trial.py"]\n')
    tag = f"{REGISTRY_HOST}/{PROJECT}/mldock/vertex-trial:{uuid.uuid4().hex[:12]}"
    docker_engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    from docker.errors import APIError, ImageNotFound

    with contextlib.suppress(ImageNotFound, APIError):
        docker_engine.images.remove(tag)


@pytest.fixture
def make_deployer(vertex_fake, make_gcs_bucket, gcp_service_account, monkeypatch):
    from mldock_gcp.deployer import VertexDeployer

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account.path))
    bucket = make_gcs_bucket("mldock-gcp-tune")

    def make(**overrides: Any) -> VertexDeployer:
        values = {"project": vertex_fake.project, "region": "us-central1",
                  "api_endpoint": vertex_fake.url, "registry_host": REGISTRY_HOST,
                  "staging_bucket": f"gs://{bucket}/staging", **overrides}
        return VertexDeployer(VertexOptions(**values), project="proj", poll_s=0.2)

    return make


GRID = {"depth": {"type": "int", "low": 1, "high": 4}, "lr": [0.01],
        "optimizer": ["adam"]}


@pytest.mark.docker
def test_a_grid_runs_as_trials_and_the_best_is_read_from_the_hypertune_file(
        make_deployer, trial_image, vertex_fake):
    deployer = make_deployer(labels={"team": "ml"})
    section = spec(strategy="grid", space=GRID, max_trials=4, parallel_trials=2)
    request = tune_request(section, image=trial_image)
    seen: list[Any] = []
    lines: list[str] = []
    result = deployer.tune(request, on_trial=seen.append, progress=lines.append)
    found = vertex_fake.find("hyperparameterTuningJobs", result.job_id)
    assert found.display_name == f"proj-{request.tune_id}"
    assert found.study_spec.algorithm == aip.StudySpec.Algorithm.GRID_SEARCH
    assert [(p.parameter_id, type(p).pb(p).WhichOneof("parameter_value_spec"))
            for p in found.study_spec.parameters] == [
        ("depth", "integer_value_spec"), ("lr", "discrete_value_spec"),
        ("optimizer", "categorical_value_spec")]
    assert (found.max_trial_count, found.parallel_trial_count) == (4, 2)
    assert found.labels["mldock-role"] == "tuning" and found.labels["team"] == "ml"
    assert found.state == aip.JobState.JOB_STATE_SUCCEEDED
    assert sorted(t.number for t in seen) == [0, 1, 2, 3]  # each reported once
    by_number = {t.number: t for t in result.trials}
    assert by_number[0].objective == pytest.approx(0.11)
    assert by_number[1].objective == pytest.approx(0.21)
    assert by_number[1].hyperparameters == {"epochs": 5, "depth": 2, "lr": 0.01,
                                            "optimizer": "adam"}
    assert by_number[2].status == "failed" and "depth 3" in by_number[2].failure_reason
    assert by_number[3].status == "failed" and "no value" in by_number[3].failure_reason
    assert (result.status, result.best) == ("finished", 1)
    base = f"{deployer.staging}/tunes/proj-{request.tune_id}"
    assert by_number[1].model_uri == f"{base}/2/model"
    # the trial's custom job: the values appended to the args, the trial's own output folder
    trial_job = vertex_fake.custom_job(by_number[1].job_id)
    (pool,) = trial_job.job_spec.worker_pool_specs
    assert list(pool.container_spec.args) == ["train", "--epochs=5", "--depth=2", "--lr=0.01",
                                              "--optimizer=adam"]
    env = {e.name: e.value for e in pool.container_spec.env}
    assert env["CLOUD_ML_HP_METRIC_TAG"] == "val_accuracy"
    assert env["CLOUD_ML_TRIAL_ID"] == "2" and env["MLDOCK_RUN_ID"] == request.tune_id
    assert trial_job.job_spec.base_output_directory.output_uri_prefix == f"{base}/2"


@pytest.mark.docker
def test_the_fake_refuses_what_vertex_refuses(vertex_clients, trial_image, vertex_fake):
    from google.api_core.exceptions import BadRequest

    options = VertexOptions(project=vertex_fake.project, region="us-central1")
    continuous = spec(space={"lr": {"type": "float", "low": 0.1, "high": 0.5}})
    body = tuning_job(tune_request(continuous, image=trial_image), options, display_name="bad",
                      base_output_dir="gs://b/t", project="proj")
    body["study_spec"]["algorithm"] = "GRID_SEARCH"  # a continuous range in a grid
    parent = f"projects/{vertex_fake.project}/locations/us-central1"
    with pytest.raises(BadRequest, match="GRID_SEARCH cannot search a DOUBLE"):
        vertex_clients.job.create_hyperparameter_tuning_job(
            parent=parent, hyperparameter_tuning_job=aip.HyperparameterTuningJob(body))
    body["study_spec"]["algorithm"] = "RANDOM_SEARCH"
    body["study_spec"]["metrics"] = []
    with pytest.raises(BadRequest, match="exactly one metric"):
        vertex_clients.job.create_hyperparameter_tuning_job(
            parent=parent, hyperparameter_tuning_job=aip.HyperparameterTuningJob(body))


@pytest.mark.docker
def test_ctrl_c_cancels_the_tuning_job(make_deployer, trial_image, vertex_fake):
    deployer = make_deployer()
    request = tune_request(spec(strategy="grid", space=GRID, max_trials=4, parallel_trials=1),
                           image=trial_image)
    lines: list[str] = []

    def progress(line: str) -> None:
        lines.append(line)
        if line.startswith("hyperparameter tuning job ") and line.endswith(": running"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        deployer.tune(request, progress=progress)
    assert any(line.startswith("cancelling hyperparameter tuning job") for line in lines)
    (job,) = [j for j in vertex_fake.list("hyperparameterTuningJobs")
              if j.labels.get("mldock-run") == request.tune_id]
    vertex_fake_wait(lambda: vertex_fake.find("hyperparameterTuningJobs", job.name).state
                     == aip.JobState.JOB_STATE_CANCELLED)
    assert len(vertex_fake.find("hyperparameterTuningJobs", job.name).trials) < 4


def vertex_fake_wait(check: Any, timeout: float = 120.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the fake's job never ended"
        time.sleep(0.2)


# --- the conformance contract ----------------------------------------------------------------

TRAINER = '''\
def train(ctx):
    depth, lr = int(ctx.param("depth")), float(ctx.param("lr"))
    bonus = 0.05 if ctx.param("optimizer") == "adam" else 0.0
    ctx.log_metric("val_acc", depth / 10 + lr + bonus, step=1)
    (ctx.model_dir / "model.txt").write_text(f"depth {depth}")
'''
ALGORITHM_NAMES = {"ALGORITHM_UNSPECIFIED": "bayesian", "RANDOM_SEARCH": "random",
                   "GRID_SEARCH": "grid"}


@pytest.fixture(scope="module")
def runtime_trial_image(docker_engine, tmp_path_factory):
    """mldock's own runtime with a ``train`` logging ``val_acc``: the runtime writes the
    hypertune file the fake reads, from ``ctx.log_metric`` alone."""
    import os

    from mldock.imaging.context import RUNTIME_DIR, runtime_files
    from mldock.testing.docker import require_image
    from vertex_fake import PROJECT

    base = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
    require_image(docker_engine, base)
    context = tmp_path_factory.mktemp("vertex-tuning-runtime")
    for relative, data in runtime_files().items():
        path = context / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if "/bin/" in relative else 0o644)
    (context / "trainer.py").write_text(TRAINER)
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY {RUNTIME_DIR}/mldock/ /opt/mldock/mldock/\n"
        f"COPY {RUNTIME_DIR}/bin/ /usr/local/bin/\nCOPY trainer.py /app/trainer.py\n"
        'ENV PYTHONPATH="/opt/mldock:/app" MLDOCK_TRAIN="trainer:train" PYTHONUNBUFFERED=1\n'
        'LABEL mldock.test=gcp-tuning\nENTRYPOINT ["mldock-runtime"]\n')
    tag = f"{REGISTRY_HOST}/{PROJECT}/mldock/vertex-tuning-runtime:{uuid.uuid4().hex[:12]}"
    docker_engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    from docker.errors import APIError, ImageNotFound

    with contextlib.suppress(ImageNotFound, APIError):
        docker_engine.images.remove(tag)


def _neutral(spec: Any) -> dict[str, Any]:
    kind = type(spec).pb(spec).WhichOneof("parameter_value_spec")
    scale = "log" if spec.scale_type.name == "UNIT_LOG_SCALE" else "linear"
    if kind == "double_value_spec":
        return {"type": "float", "low": spec.double_value_spec.min_value,
                "high": spec.double_value_spec.max_value, "scale": scale}
    if kind == "integer_value_spec":
        return {"type": "int", "low": int(spec.integer_value_spec.min_value),
                "high": int(spec.integer_value_spec.max_value), "scale": scale}
    if kind == "discrete_value_spec":
        return {"type": "categorical", "values": list(spec.discrete_value_spec.values)}
    return {"type": "categorical", "values": list(spec.categorical_value_spec.values)}


@pytest.mark.docker
class TestVertexTuningContract(TuningContract):
    """mldock's tuning contract on the Vertex fake: trials really run (mldock's runtime in a
    container per trial, the objective through the hypertune file) and the job is read back
    from the fake."""

    record = registered_record("deployer", "vertex")

    @pytest.fixture
    def deployer(self, vertex_fake, make_gcs_bucket, gcp_service_account, monkeypatch,
                 tmp_path):
        from mldock_gcp.deployer import VertexDeployer

        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account.path))
        bucket = make_gcs_bucket("mldock-gcp-tune-contract")
        options = VertexOptions(project=vertex_fake.project, region="us-central1",
                                api_endpoint=vertex_fake.url, registry_host=REGISTRY_HOST)
        built = self.record.build(FactoryContext(options=options, project="contract",
                                                 project_dir=tmp_path,
                                                 storage_uri=f"gs://{bucket}/contract"))
        assert isinstance(built, VertexDeployer)
        built.tuning.poll_s = 0.2
        self.fake = vertex_fake
        return built

    @pytest.fixture
    def trial_image(self, runtime_trial_image) -> str:
        return str(runtime_trial_image)

    def read_back(self, deployer: Any, result: Any) -> TuningReadback:
        found = self.fake.find("hyperparameterTuningJobs", result.job_id)
        study = found.study_spec
        pool = found.trial_job_spec.worker_pool_specs[0]
        fixed = dict(arg[2:].split("=", 1) for arg in pool.container_spec.args
                     if arg.startswith("--") and "=" in arg and not arg.startswith("--input-"))
        return TuningReadback(
            objective=study.metrics[0].metric_id, direction=study.metrics[0].goal.name.lower(),
            strategy=ALGORITHM_NAMES[study.algorithm.name],
            early_stopping="median" if "median_automated_stopping_spec" in study else "none",
            max_trials=found.max_trial_count, parallel_trials=found.parallel_trial_count,
            space={p.parameter_id: _neutral(p) for p in study.parameters},
            hyperparameters=fixed, image=pool.container_spec.image_uri,
            environment={e.name: e.value for e in pool.container_spec.env})
