"""Azure ML command jobs through the real azure-ai-ml client, against the fake, which runs them.

The image is a real mldock image (``mldock build`` of a project whose ``train`` reports what the
runtime gave it), pushed by core into a registry that only accepts the ACR user and the refresh
token the fake's exchange hands out. The fake runs each job's processes as containers, with the
variables Azure ML sets (``AZUREML_*``; PyTorch's ``MASTER_ADDR``, ``RANK``…), mounts the inputs
and uploads the ``model`` output to the workspace's datastore on Azurite, and serves the user
logs through run history: so a job here really trains, and what the runtime saw is checked.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azureml_parts import build_deployer, build_training_image, facts
from mldock.errors import MldockError, UsageError
from mldock.interfaces import TrainingJob
from mldock.local.build import DockerBuilder
from mldock.publish import publish
from mldock.testing.docker import require_docker, require_image
from mldock_azure.names import ACR_USER, job_name
from mldock_azure.training import hyperparameter_args, input_key, result_of

BASE_IMAGE = "python:3.11-slim"


def run_id() -> str:
    return uuid.uuid4().hex[:14]


@pytest.fixture(scope="module")
def acr(start_registry, azureml_fake):
    """A real registry accepting only the ACR user with the fake's exchanged refresh token."""
    return start_registry((ACR_USER, azureml_fake.acr_refresh_token))


@pytest.fixture(scope="module")
def training_image(tmp_path_factory) -> Iterator[str]:
    engine = require_docker()
    require_image(engine, BASE_IMAGE)
    tag = build_training_image(tmp_path_factory.mktemp("training-project"))
    yield tag
    for image in engine.images.list(name=tag.split(":")[0]):
        with contextlib.suppress(Exception):
            engine.images.remove(image.id, force=True)
    engine.close()


@pytest.fixture
def pushed(azureml_env, azureml_fake, acr, training_image) -> str:
    """The image as every mldock command pushes it: the deployer's registry target (exchange
    against the fake), then core's push; later calls find it there and send nothing."""
    deployer = build_deployer(azureml_fake, registry_host=acr.host)
    return publish(training_image, deployer.registry_target(training_image),
                   DockerBuilder()).pinned


@pytest.fixture
def make_deployer(azureml_fake, acr):
    """``make_deployer(**options)``: a deployer on the fake that pulls from ``acr``."""
    return lambda **changes: build_deployer(azureml_fake, registry_host=acr.host, **changes)


@pytest.fixture
def datastore_data(azureml_fake) -> str:
    """A ``train.csv`` in the workspace's default datastore; its ``azureml://`` folder URI."""
    folder = f"data/{uuid.uuid4().hex[:8]}"
    container = azureml_fake.blob.service().get_container_client(
        f"azureml-blobstore-{azureml_fake.workspace}")
    container.upload_blob(f"{folder}/train.csv", b"x,y\n1,2\n2,4\n")
    return f"azureml://datastores/workspaceblobstore/paths/{folder}"


def model_blobs(azureml_fake, name: str) -> dict[str, bytes]:
    container = azureml_fake.blob.service().get_container_client(
        f"azureml-blobstore-{azureml_fake.workspace}")
    prefix = f"azureml/{name}/model/"
    return {blob.name[len(prefix):]: container.download_blob(blob.name).readall()
            for blob in container.list_blobs(name_starts_with=prefix)}


# --- a job runs ------------------------------------------------------------------------------


@pytest.mark.docker
def test_a_job_trains_with_a_staged_channel_logs_and_live_metrics(make_deployer,
        azureml_fake, azureml_env, pushed, tmp_path, monkeypatch):
    """One node on the compute cluster; the channel is local data staged to ``az://`` by the
    project's store, which the deployer turns into the blob URL Azure ML mounts."""
    from mldock_azure.config import BlobOptions
    from mldock_azure.store import BlobArtifactStore

    azurite = azureml_fake.blob.azurite
    monkeypatch.setenv("MLDOCK_TEST_AZURITE", azurite.connection_string)
    bucket = f"stage-{uuid.uuid4().hex[:8]}"
    azureml_fake.blob.create_container(bucket)
    options = BlobOptions(account=azurite.account, account_url=azurite.blob_endpoint,
                          connection_string="env:MLDOCK_TEST_AZURITE")
    store = BlobArtifactStore(f"az://{bucket}/proj", options)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train.csv").write_text("x,y\n1,2\n")
    staged = store.stage_data(tmp_path / "data", "ab" * 32)
    deployer = make_deployer(open_store=lambda uri: BlobArtifactStore(uri, options))
    run = run_id()
    lines: list[str] = []
    batches: list[list[Any]] = []
    job = TrainingJob(run_id=run, image=pushed, inputs={"train": staged},
                      hyperparameters={"epochs": 3, "name": "a b", "layers": [64, 32]},
                      environment={"MLDOCK_TEST_MARK": "m1"})
    result = deployer.train(job, progress=lines.append, on_metrics=batches.append)
    name = job_name("proj", run)
    assert (result.run_id, result.status, result.job_id) == (run, "finished", name), lines
    assert result.model_uri == f"azureml://jobs/{name}/outputs/model"
    assert result.failure_reason is None
    (seen,) = facts(lines)
    assert seen["platform"] == "azureml" and seen["job"] == name and seen["run"] == run
    assert (seen["rank"], seen["world"], seen["primary"]) == (0, 1, True)
    assert seen["hp"] == {"epochs": 3, "name": "a b", "layers": [64, 32]}
    assert seen["files"] == ["train.csv"] and seen["env"] == "m1"
    assert "trained" in lines and f"job {name}: Completed" in lines
    assert f"{name}: status Running" in lines
    metrics = [(m.key, m.value, m.step) for batch in batches for m in batch]
    assert metrics == [("loss", 1.0, 1), ("loss", 0.5, 2)]
    assert result.metrics == {"loss": 0.5}
    blobs = model_blobs(azureml_fake, name)
    assert json.loads(blobs["model.json"])["rank"] == 0 and "mldock-model.json" in blobs
    sent = json.loads(azureml_fake.sent("PUT", f"/jobs/{name}$")[-1].body)
    assert sent["properties"]["inputs"]["train"]["uri"] == store.https_url(staged)


@pytest.mark.docker
def test_every_option_is_sent_and_two_nodes_get_their_ranks(make_deployer,
        azureml_fake, ml_client, pushed, datastore_data):
    """Serverless, low priority, 2 nodes with PyTorch: the job read back from the service has
    every field, and both ranks report what the runtime read from Azure's variables."""
    deployer = make_deployer(compute=None, instance_type="Standard_NC6s_v3",
                              instance_count=2, distribution="pytorch", low_priority=True,
                              timeout_s=7200, tags={"team": "ml"},
                              environment={"MLDOCK_TEST_MARK": "from-config"})
    run = run_id()
    lines: list[str] = []
    batches: list[list[Any]] = []
    job = TrainingJob(run_id=run, image=pushed, inputs={"train": datastore_data},
                      hyperparameters={"lr": 0.1})
    result = deployer.train(job, progress=lines.append, on_metrics=batches.append)
    name = job_name("proj", run)
    assert result.status == "finished", lines
    found = ml_client.jobs.get(name)
    assert found.command == ("mldock-runtime train --model-dir=${{outputs.model}}"
                             " --input-train=${{inputs.train}} --lr=0.1")
    assert found.experiment_name == "proj" and found.display_name == f"proj {run}"
    assert found.tags == {"team": "ml", "mldock-project": "proj", "mldock-role": "training",
                          "mldock-run": run}
    assert found.environment_variables == {"MLDOCK_TEST_MARK": "from-config",
                                           "MLDOCK_RUN_ID": run, "MLDOCK_PROJECT": "proj"}
    assert (found.resources.instance_count, found.resources.instance_type) == (
        2, "Standard_NC6s_v3")
    assert found.distribution.type == "pytorch"
    assert found.distribution.process_count_per_instance == 1
    assert found.queue_settings.job_tier.lower() == "spot"
    assert found.limits.timeout == 7200
    assert found.inputs["train"].path == datastore_data
    assert found.inputs["train"].mode == "ro_mount" and found.outputs["model"].mode == "rw_mount"
    env_name, env_version = str(found.environment).removeprefix("azureml:").rsplit(":", 1)
    assert ml_client.environments.get(env_name, env_version).image == pushed
    ranks = sorted(facts(lines), key=lambda seen: seen["rank"])
    assert [(s["rank"], s["world"], s["primary"], s["master"]) for s in ranks] == [
        (0, 2, True, "127.0.0.1"), (1, 2, False, "127.0.0.1")]
    assert all(s["hp"] == {"lr": 0.1} and s["env"] == "from-config" for s in ranks)
    assert any(line.startswith("[rank 1] facts ") for line in lines)
    assert [m.value for batch in batches for m in batch] == [1.0, 0.5]  # rank 0's only
    assert json.loads(model_blobs(azureml_fake, name)["model.json"])["rank"] == 0


@pytest.mark.docker
def test_a_failing_job_reports_the_reason(make_deployer, azureml_fake, azureml_env, pushed):
    deployer = make_deployer()
    run = run_id()
    lines: list[str] = []
    result = deployer.train(TrainingJob(run_id=run, image=pushed,
                                        hyperparameters={"fail": True}), progress=lines.append)
    assert (result.status, result.model_uri) == ("failed", None), lines
    assert "failing on purpose: column 'species' is missing" in result.failure_reason
    assert any("ValueError: failing on purpose" in line for line in lines)  # the traceback


# --- Ctrl-C and cancel -------------------------------------------------------------------------


class InterruptWhenRunning:
    """A progress sink raising KeyboardInterrupt once the training prints its first line (its
    containers run), as core's SIGINT handler would while ``train`` waits; records every
    line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.fired = False

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if line.startswith("facts ") and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


def _status(ml_client, name: str) -> str:
    status = ml_client.jobs.get(name).status
    return str(getattr(status, "value", status))


@pytest.mark.docker
def test_ctrl_c_on_a_terminal_asks_and_cancels_the_job(make_deployer, azureml_fake, ml_client,
                                                        pushed):
    deployer = make_deployer()
    asked: list[str] = []
    deployer.training.interactive = lambda: True
    deployer.training.ask = lambda question: asked.append(question) or True
    sink, run = InterruptWhenRunning(), run_id()
    with pytest.raises(KeyboardInterrupt):
        deployer.train(TrainingJob(run_id=run, image=pushed, hyperparameters={"sleep": 120}),
                       progress=sink)
    name = job_name("proj", run)
    assert asked == [f"cancel job {name} on Azure ML? [y/N] "]
    assert azureml_fake.sent("POST", f"/jobs/{name}/cancel$")
    assert any(line.startswith(f"canceling job {name}") for line in sink.lines)
    assert azureml_fake.wait_for(lambda: _status(ml_client, name) == "Canceled", 120)


@pytest.mark.docker
def test_ctrl_c_without_a_terminal_leaves_the_job_running(make_deployer, azureml_fake,
                                                          ml_client, pushed):
    deployer = make_deployer()
    deployer.training.interactive = lambda: False
    sink, run = InterruptWhenRunning(), run_id()
    with pytest.raises(KeyboardInterrupt):
        deployer.train(TrainingJob(run_id=run, image=pushed, hyperparameters={"sleep": 120}),
                       progress=sink)
    name = job_name("proj", run)
    scope = f"-g {azureml_fake.resource_group} -w {azureml_fake.workspace}"
    assert f"job {name} keeps running on Azure ML; follow it with:" in sink.lines
    assert f"cancel it with: az ml job cancel -n {name} {scope}" in sink.lines
    assert not azureml_fake.sent("POST", f"/jobs/{name}/cancel$")
    assert _status(ml_client, name) == "Running"
    ml_client.jobs.begin_cancel(name)  # clean up what the test left running


@pytest.mark.docker
def test_a_job_canceled_elsewhere_ends_killed(make_deployer, azureml_fake, ml_client, pushed):
    deployer = make_deployer()
    run = run_id()
    name = job_name("proj", run)
    lines: list[str] = []

    def cancel_once_running(line: str) -> None:
        lines.append(line)
        if line.startswith("facts "):  # its containers run
            ml_client.jobs.begin_cancel(name)  # as 'az ml job cancel' or the studio would

    result = deployer.train(TrainingJob(run_id=run, image=pushed,
                                        hyperparameters={"sleep": 120}),
                            progress=cancel_once_running)
    assert (result.status, result.failure_reason, result.model_uri) == (
        "killed", "the job was canceled", None), lines


# --- refused before anything is created ---------------------------------------------------------


def test_local_channels_and_local_images_are_refused_with_the_fix(azureml_fake, azureml_env):
    deployer = build_deployer(azureml_fake)
    acr_image = "mldockfakeacr.azurecr.io/proj@sha256:" + "a" * 64
    run = run_id()
    with pytest.raises(UsageError) as info:
        deployer.train(TrainingJob(run_id=run, image=acr_image,
                                   inputs={"train": "/home/me/iris/data"}))
    assert "data channel 'train'" in info.value.message and "[storage] uri" in info.value.hint
    with pytest.raises(UsageError, match="az://data/iris: no Azure Blob store to resolve it with"):
        deployer.train(TrainingJob(run_id=run, image=acr_image,
                                   inputs={"train": "az://data/iris"}))
    with pytest.raises(MldockError) as pulled:
        deployer.train(TrainingJob(run_id=run, image="iris:0123abcd"))
    assert pulled.value.message == ("Azure ML cannot pull iris:0123abcd: it is not in an Azure"
                                    " Container Registry")
    assert not azureml_fake.sent("PUT", f"/jobs/{job_name('proj', run)}$")


def test_hyperparameters_become_quoted_arguments_and_bindings_are_refused():
    assert hyperparameter_args({"lr": 0.1, "name": "it's", "flag": True, "n": [1]}) == [
        "--lr=0.1", "'--name=it'\"'\"'s'", "--flag=true", "'--n=[1]'"]
    with pytest.raises(UsageError, match="Azure ML reads as a binding"):
        hyperparameter_args({"x": "${{inputs.secret}}"})
    with pytest.raises(UsageError, match="cannot be a command-line option"):
        hyperparameter_args({"a b": 1})
    with pytest.raises(UsageError, match="at most 100"):
        hyperparameter_args({f"p{i}": i for i in range(101)})
    assert (input_key("my-data"), input_key("2023"), input_key("train")) == (
        "my_data", "ch_2023", "train")


def test_outcomes_the_fake_does_not_produce():
    timeout = {"error": {"error": {"code": "JobTimeout",
                                   "message": "The job exceeded its maximum run time"}}}
    late = result_of("proj-r1", "Canceled", timeout, "r1")
    assert late.status == "failed" and "raise [deploy.azureml] timeout_s" in late.failure_reason
    silent = result_of("proj-r1", "Failed", {}, "r1")
    assert silent.failure_reason == "Azure ML reported the job Failed without a reason"
    gone = result_of("proj-r1", "NotResponding", {}, "r1")
    assert gone.status == "failed" and "NotResponding" in gone.failure_reason


def test_job_options_override_the_config_and_are_validated(azureml_fake):
    from mldock_azure.training import effective_options

    options = build_deployer(azureml_fake).options
    mpi = effective_options(options, {"instance_count": 4, "distribution": "mpi",
                                      "work_dir": "/ignored"})
    assert (mpi.instance_count, mpi.distribution) == (4, "mpi")
    # mldock train --instances 2 with no distribution configured: PyTorch's launcher gives ranks
    two = effective_options(options, {"instance_count": 2})
    assert (two.instance_count, two.distribution, two.processes_per_node) == (2, "pytorch", 1)
    with pytest.raises(UsageError) as info:
        effective_options(options, {"instance_count": 0})
    assert info.value.message.startswith("job option instance_count:")
    assert effective_options(options, {}) is options

