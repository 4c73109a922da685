"""Training jobs against SageMaker on moto: every parameter read back, logs and metrics, Ctrl-C.

moto stores what CreateTrainingJob sends and reports the job Completed at once; it runs no
container and writes no model. It replaces ``MetricDefinitions`` with its own and does not return
``Environment``, so those two are checked on the request the deployer sent (recorded by the
``shapes`` fixture, which also checks every request against the service model's patterns and
limits). How a Failed or Stopped job is reported is checked on DescribeTrainingJob answers as
SageMaker documents them, since moto cannot fail a job.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError
from mldock.errors import MldockError, UsageError
from mldock.interfaces import TrainingJob
from mldock_aws.logs import LOG_GROUP, metric_definitions
from mldock_aws.names import training_job_name
from mldock_aws.training import result_of

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj@sha256:" + "ab" * 32
KMS = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def run_id() -> str:
    return uuid.uuid4().hex[:14]


def job_for(run: str, bucket: str, **changes) -> TrainingJob:
    values = {"run_id": run, "image": IMAGE,
              "hyperparameters": {"n_estimators": 100, "learning_rate": 0.1,
                                  "criterion": "gini", "bootstrap": True, "layers": [64, 32],
                                  "extra": {"a": 1}},
              "inputs": {"train": f"s3://{bucket}/proj/data/{'1' * 64}",
                         "test": f"s3://{bucket}/datasets/iris/test.csv"},
              "output_uri": f"s3://{bucket}/proj/runs/{run}/model",
              "options": {"work_dir": "/tmp/ignored-by-sagemaker"}}
    values.update(changes)
    return TrainingJob(**values)


def test_every_option_reaches_sagemaker(make_deployer, aws, bucket, shapes):
    deployer = make_deployer(
        instance_type="ml.c5.xlarge", instance_count=2, volume_size_gb=50, max_runtime_s=7200,
        spot=True, max_wait_s=10800, subnets=["subnet-0abc1234"],
        security_group_ids=["sg-0abc1234"], kms_key_id=KMS, tags={"team": "ml"},
        metrics=["accuracy", "loss"])
    run = run_id()
    result = deployer.train(job_for(run, bucket))
    name = training_job_name("proj", run)
    sagemaker = aws("sagemaker")
    found = sagemaker.describe_training_job(TrainingJobName=name)
    assert found["HyperParameters"] == {"n_estimators": "100", "learning_rate": "0.1",
                                        "criterion": "gini", "bootstrap": "true",
                                        "layers": "[64, 32]", "extra": '{"a": 1}'}
    assert found["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert found["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert found["RoleArn"] == "arn:aws:iam::123456789012:role/mldock-test-sagemaker"
    assert found["InputDataConfig"] == [
        {"ChannelName": name_, "InputMode": "File", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}}}
        for name_, uri in (("test", f"s3://{bucket}/datasets/iris/test.csv"),
                           ("train", f"s3://{bucket}/proj/data/{'1' * 64}"))]
    output = f"s3://{bucket}/proj/sagemaker"
    assert found["OutputDataConfig"] == {"S3OutputPath": output, "KmsKeyId": KMS}
    assert found["ResourceConfig"] == {"InstanceType": "ml.c5.xlarge", "InstanceCount": 2,
                                       "VolumeSizeInGB": 50, "VolumeKmsKeyId": KMS}
    assert found["StoppingCondition"] == {"MaxRuntimeInSeconds": 7200,
                                          "MaxWaitTimeInSeconds": 10800}
    assert found["EnableManagedSpotTraining"] is True
    assert found["CheckpointConfig"] == {"S3Uri": f"{output}/{name}/checkpoints",
                                         "LocalPath": "/opt/ml/checkpoints"}
    assert found["VpcConfig"] == {"Subnets": ["subnet-0abc1234"],
                                  "SecurityGroupIds": ["sg-0abc1234"]}
    tags = {t["Key"]: t["Value"] for t in
            sagemaker.list_tags(ResourceArn=found["TrainingJobArn"])["Tags"]}
    assert tags == {"team": "ml", "mldock.run_id": run, "mldock.project": "proj",
                    "mldock.role": "training"}
    # moto overwrites MetricDefinitions and drops Environment: check what was sent
    sent = shapes.last("CreateTrainingJob")
    assert sent["AlgorithmSpecification"]["MetricDefinitions"] == metric_definitions(
        ["accuracy", "loss"])
    assert sent["Environment"] == {"MLDOCK_RUN_ID": run}
    assert (result.run_id, result.status, result.job_id) == (run, "finished", name)
    assert result.model_uri == f"{output}/{name}/output/model.tar.gz"
    assert result.failure_reason is None


def test_defaults_send_no_spot_vpc_kms_or_metric_definitions(deployer, aws, bucket, shapes):
    run = run_id()
    deployer.train(job_for(run, bucket, hyperparameters={}, inputs={}))
    sent = shapes.last("CreateTrainingJob")
    for absent in ("EnableManagedSpotTraining", "CheckpointConfig", "VpcConfig",
                   "InputDataConfig"):
        assert absent not in sent
    assert "MetricDefinitions" not in sent["AlgorithmSpecification"]
    assert sent["ResourceConfig"] == {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                      "VolumeSizeInGB": 30}
    assert sent["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert sent["HyperParameters"] == {}


def test_a_job_can_override_instances_for_a_distributed_run(deployer, aws, bucket):
    run = run_id()
    deployer.train(job_for(run, bucket, options={"instance_count": 4,
                                                 "instance_type": "ml.g5.xlarge"}))
    found = aws("sagemaker").describe_training_job(TrainingJobName=training_job_name("proj", run))
    assert found["ResourceConfig"]["InstanceCount"] == 4
    assert found["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"


def _put_log(logs, stream: str, lines: list[str]) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=LOG_GROUP)
    logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": line}
                                   for i, line in enumerate(lines)])


def test_log_streamed_and_metrics_tracked_live_and_at_the_end(deployer, aws, bucket):
    """The job's CloudWatch stream (written here as SageMaker would) is shown line by line; the
    runtime's metric lines reach on_metrics; FinalMetricDataList adds what the log did not
    have (moto's ``train:progress``)."""
    run = run_id()
    name = training_job_name("proj", run)
    _put_log(aws("logs"), f"{name}/algo-1-1700000000", [
        "mldock runtime: training on sagemaker", "mldock-metric accuracy=0.93 step=1",
        "mldock-metric accuracy=0.96 step=2", "mldock-metric loss=0.12", "done"])
    lines, batches = [], []
    result = deployer.train(job_for(run, bucket), progress=lines.append,
                            on_metrics=batches.append)
    assert lines.index("mldock runtime: training on sagemaker") < lines.index("done")
    assert sum(line == "done" for line in lines) == 1  # shown once, although polled twice
    assert f"{name}: Starting - Preparing the instances for training" in lines
    assert f"{name}: status Completed / Completed" in lines
    assert any(line.startswith("console: https://us-east-1.console.aws.amazon.com/sagemaker/")
               for line in lines)
    live, final = batches
    assert [(m.key, m.value, m.step) for m in live] == [
        ("accuracy", 0.93, 1), ("accuracy", 0.96, 2), ("loss", 0.12, 0)]
    assert [(m.key, m.value) for m in final] == [("train:progress", 100.0)]
    assert result.metrics == {"train:progress": 100.0}


def test_local_data_channels_are_refused_with_the_fix(deployer, aws, bucket):
    run = run_id()
    with pytest.raises(UsageError) as info:
        deployer.train(job_for(run, bucket, inputs={"train": "/home/me/iris/data"}))
    assert "data channel 'train'" in info.value.message and "S3" in info.value.message
    assert "[storage] uri" in info.value.hint
    with pytest.raises(ClientError, match="Could not find"):  # nothing was created
        aws("sagemaker").describe_training_job(TrainingJobName=training_job_name("proj", run))


def test_hyperparameters_beyond_sagemaker_limits(deployer, bucket):
    with pytest.raises(UsageError, match="'big' is too long"):
        deployer.train(job_for(run_id(), bucket, hyperparameters={"big": "x" * 2501}))
    with pytest.raises(UsageError, match="at most 100"):
        deployer.train(job_for(run_id(), bucket,
                               hyperparameters={f"p{i}": i for i in range(101)}))


def test_output_path_needs_s3(make_deployer, bucket):
    deployer = make_deployer(storage_uri="file:///home/me/iris/.mldock/artifacts")
    with pytest.raises(MldockError) as info:
        deployer.train(job_for(run_id(), bucket))
    assert "needs an S3 location" in info.value.message and "output_path" in info.value.hint
    explicit = make_deployer(storage_uri="file:///x", output_path=f"s3://{bucket}/elsewhere/")
    assert explicit.train(job_for(run_id(), bucket)).model_uri.startswith(
        f"s3://{bucket}/elsewhere/proj-")


# --- Ctrl-C ------------------------------------------------------------------------------------


class InterruptOnStatus:
    """A progress sink raising KeyboardInterrupt at the first status line, as core's SIGINT
    handler would while ``train`` waits; records every line."""

    def __init__(self):
        self.lines: list[str] = []
        self.fired = False

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        if ": status " in line and not self.fired:
            self.fired = True
            raise KeyboardInterrupt


def test_ctrl_c_without_a_terminal_leaves_the_job_running(deployer, aws, bucket, shapes):
    deployer.training.interactive = lambda: False
    sink, run = InterruptOnStatus(), run_id()
    with pytest.raises(KeyboardInterrupt):
        deployer.train(job_for(run, bucket), progress=sink)
    name = training_job_name("proj", run)
    assert f"training job {name} keeps running on SageMaker; follow it with:" in sink.lines
    assert (f"  aws sagemaker describe-training-job --training-job-name {name} --region"
            " us-east-1") in sink.lines
    assert not shapes.sent("StopTrainingJob")
    aws("sagemaker").describe_training_job(TrainingJobName=name)  # still there


def test_ctrl_c_on_a_terminal_asks_and_stops_the_job(deployer, bucket, shapes):
    """moto answers StopTrainingJob with HTTP 500 (not implemented): the request is checked,
    and the failure is reported with the way to follow and stop the job by hand."""
    asked: list[str] = []
    deployer.training.interactive = lambda: True
    deployer.training.ask = lambda question: asked.append(question) or True
    sink, run = InterruptOnStatus(), run_id()
    with pytest.raises(KeyboardInterrupt):
        deployer.train(job_for(run, bucket), progress=sink)
    name = training_job_name("proj", run)
    assert asked == [f"stop training job {name} on SageMaker? [y/N] "]
    assert shapes.last("StopTrainingJob") == {"TrainingJobName": name}
    failed = [line for line in sink.lines if line.startswith("could not stop")]
    if failed:  # moto 5.x: HTTP 500, not implemented
        assert "does not implement StopTrainingJob" in failed[0]
        assert any(f"stop-training-job --training-job-name {name}" in line
                   for line in sink.lines)
    else:  # an emulator (or SageMaker) that stops it
        assert any(line.startswith(f"stopping training job {name}") for line in sink.lines)


def test_ctrl_c_answered_no_or_interrupted_again(deployer, bucket, shapes):
    deployer.training.interactive = lambda: True
    for answer in (lambda q: False, lambda q: (_ for _ in ()).throw(KeyboardInterrupt)):
        deployer.training.ask = answer
        sink = InterruptOnStatus()
        with pytest.raises(KeyboardInterrupt):
            deployer.train(job_for(run_id(), bucket), progress=sink)
        assert any("keeps running on SageMaker" in line for line in sink.lines)
    assert not shapes.sent("StopTrainingJob")


# --- outcomes moto cannot produce --------------------------------------------------------------

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def description(status: str, secondary: str, **extra) -> dict:
    """A DescribeTrainingJob answer with the fields SageMaker documents for ended jobs."""
    return {"TrainingJobName": "proj-r1", "TrainingJobStatus": status,
            "SecondaryStatus": secondary, "CreationTime": NOW,
            "ModelArtifacts": {"S3ModelArtifacts": "s3://b/p/proj-r1/output/model.tar.gz"},
            **extra}


def test_a_failed_job_carries_sagemakers_failure_reason():
    reason = ("AlgorithmError: ExecuteUserScriptError: Command \"train\" exited with code 1:"
              " KeyError: 'species'")
    result = result_of(description("Failed", "Failed", FailureReason=reason), "r1")
    assert (result.status, result.failure_reason, result.model_uri) == ("failed", reason, None)
    bare = result_of(description("Failed", "Failed"), "r1")
    assert bare.status == "failed" and "without a reason" in bare.failure_reason


def test_stopped_and_timed_out_jobs():
    stopped = result_of(description("Stopped", "Stopped"), "r1")
    assert (stopped.status, stopped.failure_reason) == ("killed", "the training job was stopped")
    late = result_of(description("Stopped", "MaxRuntimeExceeded"), "r1")
    assert late.status == "failed" and "max_runtime_s" in late.failure_reason
    spot = result_of(description("Stopped", "MaxWaitTimeExceeded"), "r1")
    assert spot.status == "failed" and "max_wait_s" in spot.failure_reason
