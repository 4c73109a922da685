"""Vertex AI custom jobs: the CustomJob mldock sends, and jobs run to their end on the fake.

The first half checks the pure request builder offline (what the runtime will see in ``args``
and ``env``). The second half drives the real GAPIC client against the local Vertex fake, which
parses every request into the API's own message types, stores the job, really runs its container
on the Docker engine (one container per replica, with Vertex's variables) and serves its output
through Cloud Logging's ``entries:list``: every field is read back from the fake, as the aws
tests read jobs back from moto.
"""

from __future__ import annotations

import json
import uuid

import pytest
from google.cloud import aiplatform_v1 as aip
from mldock.errors import UsageError
from mldock.interfaces import TrainingJob
from mldock_gcp.config import VertexOptions
from mldock_gcp.training import container_args, custom_job, effective_options, result_of

IMAGE = "us-central1-docker.pkg.dev/p/mldock/proj@sha256:" + "ab" * 32
KMS = "projects/p/locations/us-central1/keyRings/ring/cryptoKeys/key"


def run_id() -> str:
    return uuid.uuid4().hex[:14]


def job_for(run: str, **changes) -> TrainingJob:
    values = {"run_id": run, "image": IMAGE,
              "hyperparameters": {"n_estimators": 100, "learning_rate": 0.1,
                                  "criterion": "gini", "bootstrap": True, "layers": [64, 32]},
              "inputs": {"train": "gs://bkt/proj/data/" + "1" * 64 + "/",
                         "test": "gs://bkt/datasets/iris/test.csv"},
              "environment": {"EXTRA": "1"},
              "options": {"work_dir": "/tmp/ignored-by-vertex", "extra_hosts": {}}}
    values.update(changes)
    return TrainingJob(**values)


# --- the request, offline ------------------------------------------------------------------------


def test_args_carry_train_hyperparameters_and_channels():
    args = container_args(job_for("r1"))
    assert args == ["train", "--n_estimators=100", "--learning_rate=0.1", "--criterion=gini",
                    "--bootstrap=true", "--layers=[64, 32]",
                    "--input-test=gs://bkt/datasets/iris/test.csv",
                    "--input-train=gs://bkt/proj/data/" + "1" * 64]


def test_the_runtime_decodes_those_args_back():
    """The other side of the contract: mldock's runtime reads the same values back."""
    from mldock.runtime.hyperparameters import parse_arguments, split_reserved

    reserved, params = split_reserved(parse_arguments(container_args(job_for("r1"))[1:]))
    assert params == {"n_estimators": 100, "learning_rate": 0.1, "criterion": "gini",
                      "bootstrap": True, "layers": [64, 32]}
    assert reserved == {"input-test": "gs://bkt/datasets/iris/test.csv",
                        "input-train": "gs://bkt/proj/data/" + "1" * 64}


def test_local_channels_are_refused_with_the_fix():
    with pytest.raises(UsageError) as info:
        container_args(job_for("r1", inputs={"train": "/home/me/iris/data"}))
    assert "data channel 'train'" in info.value.message and "Cloud Storage" in info.value.message
    assert "[storage] uri" in (info.value.hint or "")
    with pytest.raises(UsageError, match="too large"):
        container_args(job_for("r1", hyperparameters={"big": "x" * 200_000}))


def test_every_option_in_the_custom_job():
    options = VertexOptions(
        machine_type="a2-highgpu-1g", accelerator_type="NVIDIA_TESLA_A100",
        accelerator_count=1, replica_count=3, boot_disk_size_gb=200, timeout_s=7200, spot=True,
        restart_on_worker_restart=True, service_account="sa@p-123.iam.gserviceaccount.com",
        network="projects/123/global/networks/vpc", encryption_key=KMS, labels={"team": "ml"})
    body = custom_job(job_for("r1"), options, display_name="proj-r1",
                      base_output_dir="gs://bkt/vertex/jobs/proj-r1", project="proj")
    message = aip.CustomJob(body)  # the API's own type accepts every field
    wire = json.loads(aip.CustomJob.to_json(message))
    spec = wire["jobSpec"]
    pools = spec["workerPoolSpecs"]
    assert [p["replicaCount"] for p in pools] == ["1", "2"]
    for pool in pools:
        assert pool["machineSpec"]["machineType"] == "a2-highgpu-1g"
        assert pool["machineSpec"]["acceleratorType"] == aip.AcceleratorType.NVIDIA_TESLA_A100
        assert pool["machineSpec"]["acceleratorCount"] == 1
        assert pool["diskSpec"] == {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 200}
        assert pool["containerSpec"]["imageUri"] == IMAGE
        assert pool["containerSpec"]["args"][0] == "train"
        assert pool["containerSpec"]["env"] == [{"name": "EXTRA", "value": "1"},
                                                {"name": "MLDOCK_RUN_ID", "value": "r1"}]
    assert spec["scheduling"]["timeout"] == "7200s"
    assert spec["scheduling"]["restartJobOnWorkerRestart"] is True
    assert spec["scheduling"]["strategy"] == aip.Scheduling.Strategy.SPOT
    assert spec["baseOutputDirectory"] == {"outputUriPrefix": "gs://bkt/vertex/jobs/proj-r1"}
    assert spec["serviceAccount"] == "sa@p-123.iam.gserviceaccount.com"
    assert spec["network"] == "projects/123/global/networks/vpc"
    assert wire["encryptionSpec"] == {"kmsKeyName": KMS}
    assert wire["labels"] == {"team": "ml", "mldock-project": "proj", "mldock-run": "r1",
                              "mldock-role": "training"}
    assert wire["displayName"] == "proj-r1"


def test_defaults_send_one_pool_and_nothing_optional():
    body = custom_job(job_for("r1"), VertexOptions(), display_name="proj-r1",
                      base_output_dir="gs://b/x", project="proj")
    assert len(body["job_spec"]["worker_pool_specs"]) == 1
    assert body["job_spec"]["worker_pool_specs"][0]["machine_spec"] == {
        "machine_type": "n1-standard-4"}
    assert "strategy" not in body["job_spec"]["scheduling"]
    for absent in ("service_account", "network"):
        assert absent not in body["job_spec"]
    assert "encryption_spec" not in body


def test_a_job_may_override_the_machines_and_is_validated():
    options = effective_options(VertexOptions(), {"replica_count": 4, "spot": True,
                                                  "work_dir": "/ignored"})
    assert (options.replica_count, options.spot) == (4, True)
    assert effective_options(options, {}) is options
    with pytest.raises(ValueError, match="go together"):
        effective_options(VertexOptions(), {"accelerator_type": "NVIDIA_TESLA_T4"})


# --- outcomes, from the API's own messages -------------------------------------------------------


def ended(state: str, message: str = "") -> aip.CustomJob:
    return aip.CustomJob(name="projects/1/locations/us-central1/customJobs/42",
                         state=getattr(aip.JobState, state),
                         error={"code": 3, "message": message} if message else None)


def test_outcomes_of_every_terminal_state():
    done = result_of(ended("JOB_STATE_SUCCEEDED"), "r1", "gs://b/x/model")
    assert (done.status, done.model_uri, done.failure_reason) == ("finished", "gs://b/x/model",
                                                                  None)
    assert done.job_id == "projects/1/locations/us-central1/customJobs/42"
    failed = result_of(ended("JOB_STATE_FAILED", "The replica workerpool0-0 exited with a"
                                                 " non-zero status of 1."), "r1", "gs://b/x")
    assert failed.status == "failed" and "non-zero status of 1" in failed.failure_reason
    assert failed.model_uri is None
    bare = result_of(ended("JOB_STATE_FAILED"), "r1", "gs://b/x")
    assert "without a reason" in bare.failure_reason
    late = result_of(ended("JOB_STATE_EXPIRED"), "r1", "gs://b/x")
    assert late.status == "failed" and "timeout_s" in late.failure_reason
    cancelled = result_of(ended("JOB_STATE_CANCELLED"), "r1", "gs://b/x")
    assert (cancelled.status, cancelled.failure_reason) == ("killed",
                                                            "the custom job was cancelled")


# --- jobs run for real on the Vertex fake --------------------------------------------------------
#
# The image holds mldock's own in-container runtime (copied from the installed package, as
# ``mldock build`` does) and a tiny train(ctx): the runtime reads Vertex's variables, the channel
# (downloaded from the GCS emulator: the fake mounts no /gcs), writes the model to AIP_MODEL_DIR
# on the emulator and prints the mldock-metric lines this plugin reads back from Cloud Logging.

TRAINER = '''\
import json, os, time

def train(ctx):
    folder = ctx.input_dir("train")
    print("channel train:", sorted(p.name for p in folder.iterdir()), flush=True)
    print("params:", json.dumps(ctx.hyperparameters, sort_keys=True), flush=True)
    print(f"rank {ctx.rank} of {ctx.world_size} on {ctx.platform}", flush=True)
    for step in (1, 2):
        ctx.log_metric("accuracy", 0.9 + step / 100, step)
    time.sleep(float(os.environ.get("SLEEP_S", "0")))
    if os.environ.get("FAIL"):
        raise RuntimeError(os.environ["FAIL"])
    if ctx.is_primary:
        (ctx.model_dir / "model.txt").write_text("trained on " + folder.name)
'''
REGISTRY_HOST = "127.0.0.1:5999"  # never contacted: the fake finds the image on the engine


@pytest.fixture(scope="module")
def runtime_image(docker_engine, tmp_path_factory):
    """``127.0.0.1:5999/<project>/mldock/vertex-runtime:<hex>``, built from the base image with
    mldock's runtime; removed at the end."""
    import os

    from mldock.imaging.context import RUNTIME_DIR, runtime_files
    from mldock.testing.docker import require_image
    from vertex_fake import PROJECT

    base = os.environ.get("MLDOCK_TEST_BASE_IMAGE", "python:3.11-slim")
    require_image(docker_engine, base)
    context = tmp_path_factory.mktemp("vertex-runtime-image")
    for relative, data in runtime_files().items():
        path = context / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if "/bin/" in relative else 0o644)
    (context / "trainer.py").write_text(TRAINER)
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY {RUNTIME_DIR}/mldock/ /opt/mldock/mldock/\n"
        f"COPY {RUNTIME_DIR}/bin/ /usr/local/bin/\nCOPY trainer.py /app/trainer.py\n"
        'ENV PYTHONPATH="/opt/mldock:/app" MLDOCK_TRAIN="trainer:train"'
        ' MLDOCK_PREDICTOR="trainer:Predictor" PYTHONUNBUFFERED=1\n'
        'LABEL mldock.test=gcp-training\nENTRYPOINT ["mldock-runtime"]\n')
    tag = f"{REGISTRY_HOST}/{PROJECT}/mldock/vertex-runtime:{uuid.uuid4().hex[:12]}"
    docker_engine.images.build(path=str(context), tag=tag, rm=True, forcerm=True)
    yield tag
    import contextlib

    from docker.errors import APIError, ImageNotFound

    with contextlib.suppress(ImageNotFound, APIError):
        docker_engine.images.remove(tag)


@pytest.fixture(scope="module")
def bucket(make_gcs_bucket, gcs_emulator):
    """A bucket with one data file at ``data/train/iris.csv``."""
    from mldock.testing.processes import http_request

    name = make_gcs_bucket("mldock-gcp-train")
    status, _, body = http_request(
        "POST", f"{gcs_emulator}/upload/storage/v1/b/{name}/o?uploadType=media"
                f"&name=data/train/iris.csv", b"5.1,3.5,1.4,0.2,setosa\n",
        {"Content-Type": "text/csv"})
    assert status < 300, body
    return name


def read_object(gcs_emulator: str, bucket: str, name: str) -> bytes | None:
    from urllib.parse import quote

    from mldock.testing.processes import http_request

    status, _, body = http_request(
        "GET", f"{gcs_emulator}/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media")
    return body if status == 200 else None


@pytest.fixture
def make_deployer(vertex_fake, gcp_service_account, bucket, monkeypatch):
    """``make_deployer(**option_overrides)``: a deployer on the fake, credentials from the
    service-account key through Application Default Credentials (token from the fake's
    ``/token``); polls every 0.2 s."""
    from mldock_gcp.deployer import VertexDeployer

    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account.path))

    def make(**overrides):
        values = {"project": vertex_fake.project, "region": "us-central1",
                  "api_endpoint": vertex_fake.url, "registry_host": REGISTRY_HOST,
                  "staging_bucket": f"gs://{bucket}/staging", **overrides}
        return VertexDeployer(VertexOptions(**values), project="proj", poll_s=0.2)

    return make


def lines_and_metrics():
    lines, batches = [], []
    return lines, batches, lines.append, batches.append


@pytest.mark.docker
def test_a_job_with_every_option_is_read_back_from_vertex(make_deployer, runtime_image,
                                                          vertex_fake, bucket):
    deployer = make_deployer(
        machine_type="n1-highmem-8", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1,
        boot_disk_size_gb=150, timeout_s=3600, spot=True, restart_on_worker_restart=True,
        service_account="trainer@mldock-fake-project.iam.gserviceaccount.com",
        network="projects/123456789012/global/networks/vpc", encryption_key=KMS,
        labels={"team": "ml"})
    run = run_id()
    result = deployer.train(job_for(run, image=runtime_image,
                                    inputs={"train": f"gs://{bucket}/data/train"}))
    found = vertex_fake.custom_job(result.job_id)
    assert found.display_name == f"proj-{run}"
    assert dict(found.labels) == {"team": "ml", "mldock-project": "proj", "mldock-run": run,
                                  "mldock-role": "training"}
    assert found.encryption_spec.kms_key_name == KMS
    spec = found.job_spec
    (pool,) = spec.worker_pool_specs
    assert pool.replica_count == 1
    assert pool.machine_spec.machine_type == "n1-highmem-8"
    assert pool.machine_spec.accelerator_type == aip.AcceleratorType.NVIDIA_TESLA_T4
    assert pool.machine_spec.accelerator_count == 1
    assert (pool.disk_spec.boot_disk_type, pool.disk_spec.boot_disk_size_gb) == ("pd-ssd", 150)
    assert pool.container_spec.image_uri == runtime_image
    assert list(pool.container_spec.args) == [
        "train", "--n_estimators=100", "--learning_rate=0.1", "--criterion=gini",
        "--bootstrap=true", "--layers=[64, 32]", f"--input-train=gs://{bucket}/data/train"]
    assert {e.name: e.value for e in pool.container_spec.env} == {"MLDOCK_RUN_ID": run,
                                                                "EXTRA": "1"}
    assert spec.scheduling.timeout.total_seconds() == 3600
    assert spec.scheduling.restart_job_on_worker_restart is True
    assert spec.scheduling.strategy == aip.Scheduling.Strategy.SPOT
    assert spec.service_account == "trainer@mldock-fake-project.iam.gserviceaccount.com"
    assert spec.network == "projects/123456789012/global/networks/vpc"
    base = f"gs://{bucket}/staging/jobs/proj-{run}"
    assert spec.base_output_directory.output_uri_prefix == base
    assert (result.status, result.model_uri) == ("finished", f"{base}/model")


@pytest.mark.docker
def test_a_job_runs_to_the_end_with_its_log_and_metrics_streamed(make_deployer, runtime_image,
                                                                 vertex_fake, bucket,
                                                                 gcs_emulator):
    deployer = make_deployer()
    run = run_id()
    lines, batches, progress, on_metrics = lines_and_metrics()
    result = deployer.train(job_for(run, image=runtime_image, environment={"SLEEP_S": "1"},
                                    inputs={"train": f"gs://{bucket}/data/train"}),
                            progress=progress, on_metrics=on_metrics)
    assert (result.run_id, result.status, result.failure_reason) == (run, "finished", None)
    job_id = result.job_id.rsplit("/", 1)[-1]
    assert any(line.startswith(f"custom job proj-{run} created (") for line in lines)
    assert f"custom job {job_id}: running" in lines
    assert f"custom job {job_id}: succeeded" in lines
    assert lines[-1] == f"custom job proj-{run}: finished"
    assert any(line.startswith("console: https://console.cloud.google.com/vertex-ai/") and
               f"/training/{job_id}/" in line for line in lines)
    # the container's own lines, each once, in order; the channel was a folder with the file
    assert lines.count("channel train: ['iris.csv']") == 1
    assert "rank 0 of 1 on vertex" in lines
    params = next(line for line in lines if line.startswith("params: "))
    assert json.loads(params.removeprefix("params: ")) == {
        "n_estimators": 100, "learning_rate": 0.1, "criterion": "gini", "bootstrap": True,
        "layers": [64, 32]}
    metrics = [(m.key, m.value, m.step) for batch in batches for m in batch]
    assert metrics == [("accuracy", 0.91, 1), ("accuracy", 0.92, 2)]
    assert all(m.timestamp > 0 for batch in batches for m in batch)
    # the runtime wrote the model (and its manifest) under AIP_MODEL_DIR itself
    prefix = f"staging/jobs/proj-{run}/model"
    assert read_object(gcs_emulator, bucket, f"{prefix}/model.txt") == b"trained on train"
    manifest = json.loads(read_object(gcs_emulator, bucket, f"{prefix}/mldock-model.json"))
    assert manifest["run_id"] == run and "model.txt" in manifest["files"]
    assert result.model_uri == f"gs://{bucket}/{prefix}"


@pytest.mark.docker
def test_two_replicas_run_as_one_job_with_metrics_from_the_primary(make_deployer, runtime_image,
                                                                   vertex_fake, bucket,
                                                                   gcs_emulator):
    deployer = make_deployer(replica_count=2)
    run = run_id()
    lines, batches, progress, on_metrics = lines_and_metrics()
    result = deployer.train(job_for(run, image=runtime_image,
                                    inputs={"train": f"gs://{bucket}/data/train"}),
                            progress=progress, on_metrics=on_metrics)
    assert result.status == "finished", result.failure_reason
    pools = vertex_fake.custom_job(result.job_id).job_spec.worker_pool_specs
    assert [p.replica_count for p in pools] == [1, 1]
    assert "[workerpool0-0] rank 0 of 2 on vertex" in lines
    assert "[workerpool1-0] rank 1 of 2 on vertex" in lines
    metrics = [(m.key, m.step) for batch in batches for m in batch]
    assert metrics == [("accuracy", 1), ("accuracy", 2)]  # once, from workerpool0-0
    prefix = f"staging/jobs/proj-{run}/model"
    assert read_object(gcs_emulator, bucket, f"{prefix}/model.txt") == b"trained on train"


@pytest.mark.docker
def test_a_failing_job_reports_vertex_s_reason(make_deployer, runtime_image, bucket):
    deployer = make_deployer()
    run = run_id()
    lines, _, progress, _ = lines_and_metrics()
    result = deployer.train(job_for(run, image=runtime_image,
                                    environment={"FAIL": "KeyError: species"},
                                    inputs={"train": f"gs://{bucket}/data/train"}),
                            progress=progress)
    assert (result.status, result.model_uri) == ("failed", None)
    assert "workerpool0-0 exited with a non-zero status of 1" in result.failure_reason
    assert "KeyError: species" in result.failure_reason
    assert any("RuntimeError: KeyError: species" in line for line in lines)  # the traceback
    assert lines[-1].startswith(f"custom job proj-{run}: failed (")


class InterruptWhenRunning:
    """A progress sink raising KeyboardInterrupt once the job runs, as core's SIGINT handler
    would while ``train`` waits; records every line."""

    def __init__(self):
        self.lines: list[str] = []
        self.fired = False

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if line.endswith(": running") and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


def wait_for_state(vertex_fake, name: str, states: set[str], limit: float = 120.0) -> str:
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        state = vertex_fake.custom_job(name).state.name
        if state in states:
            return state
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {states}")


@pytest.mark.docker
def test_ctrl_c_on_a_terminal_asks_and_cancels_the_job(make_deployer, runtime_image, bucket,
                                                       vertex_fake):
    deployer = make_deployer()
    asked: list[str] = []
    deployer.training.interactive = lambda: True
    deployer.training.ask = lambda question: asked.append(question) or True
    sink = InterruptWhenRunning()
    with pytest.raises(KeyboardInterrupt):
        deployer.train(job_for(run_id(), image=runtime_image, environment={"SLEEP_S": "60"},
                               inputs={"train": f"gs://{bucket}/data/train"}), progress=sink)
    name = next(line.split("(", 1)[1].split(")", 1)[0] for line in sink.lines
                if line.startswith("custom job proj-"))
    assert asked == [f"cancel custom job {name} on Vertex AI? [y/N] "]
    assert vertex_fake.requests_to(r"POST /v1/.*customJobs/\d+:cancel")
    assert any(line.startswith("cancelling custom job ") for line in sink.lines)
    assert wait_for_state(vertex_fake, name, {"JOB_STATE_CANCELLED"}) == "JOB_STATE_CANCELLED"


@pytest.mark.docker
def test_ctrl_c_without_a_terminal_leaves_the_job_running(make_deployer, runtime_image, bucket,
                                                          vertex_fake):
    deployer = make_deployer()
    deployer.training.interactive = lambda: False
    sink = InterruptWhenRunning()
    with pytest.raises(KeyboardInterrupt):
        deployer.train(job_for(run_id(), image=runtime_image, environment={"SLEEP_S": "3"},
                               inputs={"train": f"gs://{bucket}/data/train"}), progress=sink)
    name = next(line.split("(", 1)[1].split(")", 1)[0] for line in sink.lines
                if line.startswith("custom job proj-"))
    job_id = name.rsplit("/", 1)[-1]
    assert f"custom job {job_id} keeps running on Vertex AI; follow it with:" in sink.lines
    assert (f"  gcloud ai custom-jobs stream-logs {job_id} --region=us-central1"
            in sink.lines)
    assert not vertex_fake.requests_to(rf"POST /v1/.*customJobs/{job_id}:cancel")
    assert wait_for_state(vertex_fake, name, {"JOB_STATE_SUCCEEDED"}) == "JOB_STATE_SUCCEEDED"


def test_a_local_image_is_refused_before_anything_is_created(make_deployer, vertex_fake):
    from mldock.errors import MldockError

    before = len(vertex_fake.requests_to("customJobs"))
    with pytest.raises(MldockError, match="cannot pull iris:0123"):
        make_deployer().train(job_for(run_id(), image="iris:0123"))
    assert len(vertex_fake.requests_to("customJobs")) == before
