"""SageMaker training jobs: the CreateTrainingJob request, and following the job to its end.

The request is built by a pure function (:func:`training_request`) so what is sent can be read and
checked without AWS. :class:`TrainingRunner` creates the job, then polls it: status and secondary
status transitions and the CloudWatch log go to ``progress``, ``mldock-metric`` lines to
``on_metrics`` as they arrive, and the job's final metrics once it ends.

Ctrl-C (core raises KeyboardInterrupt inside ``train``): on a terminal the user is asked whether
to stop the job (StopTrainingJob: SageMaker sends SIGTERM, the checkpoint hook runs); otherwise the
job is left running and the way to follow it is printed. The interrupt is then re-raised.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.interfaces import (
    MetricsSink,
    ProgressSink,
    TrainingJob,
    TrainingResult,
    null_progress,
)
from mldock.runtime.names import ENV_RUN_ID

from mldock_aws.clients import AwsClients
from mldock_aws.config import SageMakerOptions
from mldock_aws.errors import translated
from mldock_aws.logs import LogFollower, final_metrics, metric_definitions
from mldock_aws.names import TAG_PROJECT, TAG_ROLE, TAG_RUN, tag_list

TERMINAL = {"Completed": "finished", "Failed": "failed", "Stopped": "killed"}
OVER_TIME = {"MaxRuntimeExceeded": "max_runtime_s", "MaxWaitTimeExceeded": "max_wait_s"}
OVERRIDABLE = ("instance_type", "instance_count", "volume_size_gb", "max_runtime_s", "spot",
               "max_wait_s")
"""Keys of ``TrainingJob.options`` that override ``[deploy.sagemaker]`` for one job."""
MAX_HYPERPARAMETERS = 100


def encode_hyperparameters(values: Mapping[str, Any]) -> dict[str, str]:
    """Every value as a string, like SageMaker's SDK: strings as they are, the rest as JSON.

    The runtime decodes them back (``"5"`` → 5, ``"[1, 2]"`` → [1, 2]). SageMaker's limits (100
    entries, 256-character keys, 2,500-character values) are checked here, naming the key.
    """
    if len(values) > MAX_HYPERPARAMETERS:
        raise UsageError(f"{len(values)} hyperparameters: SageMaker accepts at most"
                         f" {MAX_HYPERPARAMETERS}", hint="pass fewer, or a file in a data channel")
    encoded = {}
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value)
        if len(key) > 256 or len(text) > 2500:
            raise UsageError(f"hyperparameter {key!r} is too long for SageMaker (keys up to 256"
                             " characters, values up to 2,500)",
                             hint="put large values in a data channel instead")
        encoded[str(key)] = text
    return encoded


def effective_options(options: SageMakerOptions, overrides: Mapping[str, Any]) -> SageMakerOptions:
    """``options`` with the job's own overrides (instance type, count, spot…) applied, validated."""
    picked = {key: overrides[key] for key in OVERRIDABLE if overrides.get(key) is not None}
    if not picked:
        return options
    return SageMakerOptions.model_validate({**options.model_dump(), **picked})


def input_channels(inputs: Mapping[str, str]) -> list[dict[str, Any]]:
    """``InputDataConfig``: one S3 prefix channel per input, copied whole to every instance."""
    channels = []
    for name, uri in sorted(inputs.items()):
        if not str(uri).startswith("s3://"):
            raise UsageError(f"data channel {name!r} is {uri}: SageMaker reads channels from S3",
                             hint="set [storage] uri = \"s3://<bucket>/<prefix>\" for the aws"
                                  " environment, so local data is staged there, or give an s3://"
                                  " URI in [data]")
        channels.append({"ChannelName": name, "InputMode": "File", "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                             "S3DataDistributionType": "FullyReplicated"}}})
    return channels


def training_request(job: TrainingJob, options: SageMakerOptions, *, job_name: str,
                     output_path: str, project: str) -> dict[str, Any]:
    """The CreateTrainingJob parameters for ``job`` (see the module docstring)."""
    output: dict[str, Any] = {"S3OutputPath": output_path}
    resources: dict[str, Any] = {"InstanceType": options.instance_type,
                                 "InstanceCount": options.instance_count,
                                 "VolumeSizeInGB": options.volume_size_gb}
    if options.kms_key_id:
        output["KmsKeyId"] = options.kms_key_id
        resources["VolumeKmsKeyId"] = options.kms_key_id
    algorithm: dict[str, Any] = {"TrainingImage": job.image, "TrainingInputMode": "File"}
    if options.metrics:
        algorithm["MetricDefinitions"] = metric_definitions(list(options.metrics))
    stopping: dict[str, int] = {"MaxRuntimeInSeconds": options.max_runtime_s}
    request: dict[str, Any] = {
        "TrainingJobName": job_name,
        "AlgorithmSpecification": algorithm,
        "RoleArn": options.role_arn,
        "HyperParameters": encode_hyperparameters(job.hyperparameters),
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "Environment": {ENV_RUN_ID: job.run_id, **dict(job.environment)},
        "Tags": tag_list({**options.tags, TAG_RUN: job.run_id, TAG_PROJECT: project,
                          TAG_ROLE: "training"}),
    }
    channels = input_channels(job.inputs)
    if channels:
        request["InputDataConfig"] = channels
    if options.spot:
        request["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = options.spot_max_wait_s
    checkpoints = options.checkpoint_s3_uri or (
        f"{output_path.rstrip('/')}/{job_name}/checkpoints" if options.spot else None)
    if checkpoints:
        request["CheckpointConfig"] = {"S3Uri": checkpoints, "LocalPath": "/opt/ml/checkpoints"}
    if options.subnets:
        request["VpcConfig"] = {"Subnets": list(options.subnets),
                                "SecurityGroupIds": list(options.security_group_ids)}
    return request


def result_of(description: Mapping[str, Any], run_id: str) -> TrainingResult:
    """How a finished job ended, from its DescribeTrainingJob answer."""
    name = str(description["TrainingJobName"])
    status = TERMINAL[description["TrainingJobStatus"]]
    reason = description.get("FailureReason") or None
    secondary = description.get("SecondaryStatus")
    if status == "killed" and secondary in OVER_TIME:
        status = "failed"
        reason = (f"the job ran out of time ({secondary}); raise [deploy.sagemaker]"
                  f" {OVER_TIME[secondary]}" + (f": {reason}" if reason else ""))
    elif status == "failed" and not reason:
        reason = "SageMaker reported the job Failed without a reason"
    elif status == "killed":
        reason = reason or "the training job was stopped"
    model = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    metrics = {str(m["MetricName"]): float(m["Value"])
               for m in description.get("FinalMetricDataList") or [] if "Value" in m}
    return TrainingResult(run_id=run_id, status=status, job_id=name,
                          model_uri=model if status == "finished" else None,
                          failure_reason=reason if status != "finished" else None,
                          metrics=metrics)


def console_url(region: str, job_name: str) -> str:
    return (f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
            f"#/jobs/{job_name}")


def _ask_terminal(question: str) -> bool:
    sys.stderr.write(question)
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


class TrainingRunner:
    """Runs one job to its end. ``interactive`` and ``ask`` decide what Ctrl-C does (replaced in
    tests); ``poll_s`` is the time between two looks at the job and its log."""

    def __init__(self, clients: AwsClients, options: SageMakerOptions, *, project: str,
                 output_path: str, poll_s: float = 5.0,
                 interactive: Callable[[], bool] = sys.stdin.isatty,
                 ask: Callable[[str], bool] = _ask_terminal):
        self.clients = clients
        self.options = options
        self.project = project
        self.output_path = output_path
        self.poll_s = poll_s
        self.interactive = interactive
        self.ask = ask

    def run(self, job: TrainingJob, job_name: str, *, progress: ProgressSink = null_progress,
            on_metrics: MetricsSink | None = None) -> TrainingResult:
        options = effective_options(self.options, job.options)
        request = training_request(job, options, job_name=job_name,
                                   output_path=self.output_path, project=self.project)
        sagemaker = self.clients.sagemaker
        with translated(f"create training job {job_name}", resource=f"training job {job_name}"):
            sagemaker.create_training_job(**request)
        count = options.instance_count
        progress(f"training job {job_name} created: {count} x {options.instance_type}"
                 f"{' (spot)' if options.spot else ''} in {self.clients.region}")
        progress(f"console: {console_url(self.clients.region, job_name)}")
        follower = LogFollower(self.clients.logs, job_name, progress,
                               lambda metrics: on_metrics(metrics) if on_metrics else None)
        try:
            description = self._wait(job_name, follower, progress)
        except KeyboardInterrupt:
            self._interrupted(job_name, progress)
            raise
        late = final_metrics(description, follower.seen_metrics)
        if late and on_metrics is not None:
            on_metrics(late)
        result = result_of(description, job.run_id)
        progress(f"training job {job_name}: {description['TrainingJobStatus']}"
                 + (f" ({result.failure_reason})" if result.failure_reason else ""))
        return result

    def _wait(self, job_name: str, follower: LogFollower, progress: ProgressSink) -> dict:
        shown_status: tuple[str, str] | None = None
        shown_transitions = 0
        while True:
            with translated(f"describe training job {job_name}",
                            resource=f"training job {job_name}"):
                description = self.clients.sagemaker.describe_training_job(
                    TrainingJobName=job_name)
            status = (description["TrainingJobStatus"], description.get("SecondaryStatus", ""))
            transitions = description.get("SecondaryStatusTransitions") or []
            for item in transitions[shown_transitions:]:
                message = item.get("StatusMessage")
                progress(f"{job_name}: {item['Status']}" + (f" - {message}" if message else ""))
            shown_transitions = max(shown_transitions, len(transitions))
            if status != shown_status:
                progress(f"{job_name}: status {status[0]}"
                         + (f" / {status[1]}" if status[1] else ""))
                shown_status = status
            follower.poll()
            if status[0] in TERMINAL:
                follower.poll()  # lines written just before the end arrive a moment later
                return description
            time.sleep(self.poll_s)

    def _interrupted(self, job_name: str, progress: ProgressSink) -> None:
        """Ask (on a terminal) whether to stop the job; otherwise say how to follow it."""
        stop = False
        if self.interactive():
            try:
                stop = self.ask(f"stop training job {job_name} on SageMaker? [y/N] ")
            except (KeyboardInterrupt, EOFError):
                stop = False
        if stop:
            try:
                with translated(f"stop training job {job_name}",
                                resource=f"training job {job_name}"):
                    self.clients.sagemaker.stop_training_job(TrainingJobName=job_name)
                progress(f"stopping training job {job_name}: SageMaker sends SIGTERM, the"
                         " checkpoint hook runs")
                return
            except MldockError as exc:
                progress(f"could not stop training job {job_name}: {exc}")
        region = self.clients.region
        progress(f"training job {job_name} keeps running on SageMaker; follow it with:")
        progress(f"  aws sagemaker describe-training-job --training-job-name {job_name}"
                 f" --region {region}")
        progress(f"  {console_url(region, job_name)}")
        progress(f"stop it with: aws sagemaker stop-training-job --training-job-name {job_name}"
                 f" --region {region}")
