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
