"""The whole path with the real CLI in a rendered sklearn project: build for real, then
``mldock --env aws push / train / deploy / predict / batch / undeploy`` against moto, the image
pushed with the ECR token into the local registry.

What moto cannot do here: run the training container (the job is Completed at once and no
model.tar.gz is written: the run records the URI SageMaker would write), or run the endpoint
(predict returns the answer queued in moto). The image itself is run exactly as SageMaker runs it
by core's tests/e2e/test_sagemaker_contract.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MLDOCK = str(Path(sys.executable).parent / "mldock")
PROJECT = f"awsiris-{uuid.uuid4().hex[:8]}"  # this session's own images and endpoint
ROLE = "arn:aws:iam::123456789012:role/mldock-e2e"


def mldock(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    done = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=1200, env=env, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {done.returncode}\n"
                             f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
    return done


AWS_ENV = """

# --- added by the mldock-aws tests: SageMaker and S3 on moto, ECR pushes to a local registry ---
[env.{env}.deploy]
deployer = "sagemaker"

[env.{env}.deploy.sagemaker]
region = "us-east-1"
role_arn = "{role}"
instance_type = "ml.m5.large"
metrics = ["accuracy"]
endpoint_url = "{moto}"
ecr_registry = "{registry}"

[env.{env}.storage]
uri = "s3://{bucket}/{project}"

[env.{env}.storage.s3]
endpoint_url = "{moto}"
addressing_style = "path"
"""
S3_DATA = """
[env.{env}.data]
train = "s3://{bucket}/datasets/iris/iris.csv"
"""


@pytest.fixture(scope="module")
def project(engine, moto, bucket, registry, untag, tmp_path_factory):
    """The sklearn template rendered and built once (a cold build installs scikit-learn); its
    image tags, local and pushed, are removed afterwards (layers stay as build cache)."""
    root = tmp_path_factory.mktemp("aws-e2e")
    mldock("init", PROJECT, "--template", "sklearn", "--no-input", cwd=root)
    folder = root / PROJECT
    values = {"role": ROLE, "moto": moto.url, "registry": registry.host, "bucket": bucket,
              "project": PROJECT}
    with open(folder / "mldock.toml", "a", encoding="utf-8") as toml:
        toml.write(AWS_ENV.format(env="aws", **values))
        toml.write(AWS_ENV.format(env="awsdata", **values) + S3_DATA.format(env="awsdata",
                                                                             **values))
    import boto3

    boto3.client("s3", endpoint_url=moto.url, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").put_object(
        Bucket=bucket, Key="datasets/iris/iris.csv",
        Body=(folder / "data" / "iris.csv").read_bytes())
    try:
        mldock("build", cwd=folder)
        yield folder
    finally:
        untag(f"{registry.host}/{PROJECT}", keep_parents=False)
        untag(PROJECT)


def test_one_build_then_aws_train(project, registry, bucket, aws):
    """The README flow: ``mldock build`` (the fixture's, without --env), then ``mldock --env aws
    train`` with no second build: an overlay of [storage]/[deploy] keeps the image tag."""
    built = json.loads(mldock("build", "--json", cwd=project).stdout)
    assert built["skipped"] is True
    run_id, _, _ = train_and_check(project, registry, bucket, aws, "aws")
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
    assert run["lineage"]["image"] == built["tag"]


def test_instances_become_the_jobs_instance_count(project, registry, aws):
    """``mldock --env aws train --instances 3``: core passes ``options["instance_count"]``, the
    deployer sends it as ``ResourceConfig.InstanceCount`` (the config's count stays 1)."""
    train = mldock("--env", "aws", "train", "--instances", "3", cwd=project)
    run_id = train.stdout.strip().splitlines()[-1]
    job = f"{PROJECT}-{run_id}"
    assert f"training job {job} created: 3 x ml.m5.large" in train.stderr
    described = aws("sagemaker").describe_training_job(TrainingJobName=job)
    assert described["ResourceConfig"]["InstanceCount"] == 3


def test_push_uses_the_deployers_registry(project, registry):
    """``mldock --env aws push`` without --repository: ECR repository and token from the
    deployer, the push into the registry standing in for ECR."""
    data = json.loads(mldock("--env", "aws", "push", "--json", cwd=project).stdout)
    tag = data["image"].split(":", 1)[1]
    assert data["reference"] == f"{registry.host}/{PROJECT}:{tag}"
    assert data["digest"] == registry.manifest_digest(PROJECT, tag)
    again = mldock("--env", "aws", "push", cwd=project)  # the registry has it: nothing is sent
    assert again.stdout.strip() == data["digest"]
    assert f"{data['reference']} is {data['digest']} already: nothing to push" in again.stderr


def test_train_with_local_data_then_serve(project, registry, moto, bucket, aws):
    """Local data (the template's data/iris.csv) is staged in S3 by the s3 store."""
    run_id, job, channel = train_and_check(project, registry, bucket, aws, "aws")
    staged = channel["DataSource"]["S3DataSource"]["S3Uri"]
    assert staged.startswith(f"s3://{bucket}/{PROJECT}/")
    key = staged.split("/", 3)[3].rstrip("/") + "/iris.csv"
    body = aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == (project / "data" / "iris.csv").read_bytes()
    serve_and_check(project, moto, bucket, aws, "aws", run_id, job)


def test_train_with_data_already_in_s3_then_serve(project, registry, moto, bucket, aws):
    """A storage URI in [data] goes to SageMaker as it is (nothing staged). The build finds the
    one image already there: [data] never reaches the image."""
    mldock("--env", "awsdata", "build", cwd=project)
    run_id, job, channel = train_and_check(project, registry, bucket, aws, "awsdata")
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{bucket}/datasets/iris/iris.csv")
    serve_and_check(project, moto, bucket, aws, "awsdata", run_id, job)


def train_and_check(project, registry, bucket, aws, env):
    """``mldock --env ENV train``: image pushed, job created as configured, run tracked."""
    train = mldock("--env", env, "train", cwd=project)
    run_id = train.stdout.strip().splitlines()[-1]
    job = f"{PROJECT}-{run_id}"
    assert f"training job {job} created: 1 x ml.m5.large" in train.stderr
    assert f"{job}: status Completed / Completed" in train.stderr
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
    assert run["status"] == "finished" and run["params"]["n_estimators"] == 100
    lineage = run["lineage"]
    assert lineage["platform"] == "sagemaker" and lineage["job_id"] == job
    digest = lineage["image_digest"]
    assert digest.startswith(f"{registry.host}/{PROJECT}@sha256:")
    assert digest.split("@")[1] == registry.manifest_digest(PROJECT, lineage["image"].split(":")[1])
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    model_uri = f"s3://{bucket}/{PROJECT}/sagemaker/{job}/output/model.tar.gz"
    assert (model["kind"], model["uri"]) == ("remote", model_uri)
    assert run["metrics"]["train:progress"] == 100.0  # moto's FinalMetricDataList

    sagemaker = aws("sagemaker")
    described = sagemaker.describe_training_job(TrainingJobName=job)
    assert described["AlgorithmSpecification"]["TrainingImage"] == digest
    assert described["HyperParameters"]["n_estimators"] == "100"
    assert described["HyperParameters"]["target"] == "species"
    (channel,) = described["InputDataConfig"]
    assert channel["ChannelName"] == "train"
    return run_id, job, channel


def serve_and_check(project, moto, bucket, aws, env, run_id, job):
    """deploy → predict → list → batch → undeploy of the run, all through the CLI."""
    sagemaker = aws("sagemaker")
    digest = sagemaker.describe_training_job(TrainingJobName=job)["AlgorithmSpecification"][
        "TrainingImage"]
    model_uri = f"s3://{bucket}/{PROJECT}/sagemaker/{job}/output/model.tar.gz"
    try:
        deployed = mldock("--env", env, "deploy", "--run", run_id, cwd=project)
        host = digest.split("/", 1)[0]  # trained there: core uses the run's reference as it is
        assert f"{digest} is in {host} already: not pushed" in deployed.stderr
        assert deployed.stdout.strip().endswith(f"/endpoints/{PROJECT}/invocations")
        endpoint = sagemaker.describe_endpoint(EndpointName=PROJECT)
        assert endpoint["EndpointStatus"] == "InService"
        container = sagemaker.describe_model(ModelName=endpoint["EndpointConfigName"])[
            "PrimaryContainer"]
        assert (container["Image"], container["ModelDataUrl"]) == (digest, model_uri)

        moto.queue_endpoint_results({"Body": json.dumps({"predictions": ["setosa", "virginica"]}),
                                     "ContentType": "application/json",
                                     "InvokedProductionVariant": "AllTraffic",
                                     "CustomAttributes": ""})
        answer = mldock("--env", env, "predict", "--data", "sample.json", cwd=project)
        assert json.loads(answer.stdout) == {"predictions": ["setosa", "virginica"]}
        listed = json.loads(mldock("--env", env, "deploy", "--list", "--json",
                                   cwd=project).stdout)
        assert [(d["name"], d["status"], d["run_id"]) for d in listed
                if d["name"] == PROJECT] == [(PROJECT, "ready", run_id)]

        # --- batch transform of the same run ---------------------------------------------------
        batch = mldock("--env", env, "batch", "--run", run_id, "--input", f"s3://{bucket}/batch/in/",
                       "--output", f"s3://{bucket}/batch/out/", "--content-type", "text/csv",
                       "--json", cwd=project)
        result = json.loads(batch.stdout)
        assert result["status"] == "finished"
        transform = sagemaker.describe_transform_job(TransformJobName=result["job_id"])
        assert transform["TransformInput"]["SplitType"] == "Line"
    finally:
        mldock("--env", env, "undeploy", cwd=project, check=False)
    listed = json.loads(mldock("--env", env, "deploy", "--list", "--json", cwd=project).stdout)
    assert PROJECT not in [d["name"] for d in listed]


def test_doctor_reports_the_aws_checks(project):
    done = mldock("doctor", "--json", cwd=project, check=False)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    assert checks["deployer sagemaker (env aws): AWS credentials"]["ok"]
    assert checks["deployer sagemaker (env aws): AWS region"]["detail"] == "us-east-1"
    role = checks["deployer sagemaker (env aws): SageMaker role"]
    assert not role["ok"] and "mldock-e2e" in role["detail"]  # no such role in moto's IAM
