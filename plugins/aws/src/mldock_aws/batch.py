"""SageMaker batch transform: the run's model over every object under an S3 prefix.

A transform job needs a model, so one is created for the job (tagged ``mldock.role=batch``) and
deleted once the job has ended. How records are cut out of the input files follows the content
type, as SageMaker's SDK users usually set it: CSV and JSON Lines are split by line and sent
several lines per request (the runtime decodes a CSV body into rows); a JSON file is sent whole.
``BatchRequest.options`` may override ``split_type``, ``batch_strategy``, ``accept``,
``max_payload_mb`` and ``max_concurrent_transforms``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mldock.errors import MldockError, UsageError
from mldock.interfaces import BatchRequest, BatchResult, ProgressSink, null_progress
from mldock.runtime.names import ENV_RUN_ID

from mldock_aws.clients import AwsClients
from mldock_aws.config import SageMakerOptions
from mldock_aws.errors import translated
from mldock_aws.names import TAG_PROJECT, TAG_ROLE, TAG_RUN, join, stamp, tag_list
from mldock_aws.serving import model_request

TERMINAL = {"Completed": "finished", "Failed": "failed", "Stopped": "killed"}
LINE_TYPES = {"text/csv", "application/jsonlines", "application/x-jsonlines",
              "application/jsonl"}


def transform_request(request: BatchRequest, options: SageMakerOptions, *, job_name: str,
                      model_name: str, project: str) -> dict[str, Any]:
    """The CreateTransformJob parameters for ``request``."""
    for label, uri in (("--input", request.input_uri), ("--output", request.output_uri)):
        if not uri.startswith("s3://"):
            raise UsageError(f"{label} {uri}: SageMaker batch transform reads and writes S3",
                             hint="give s3://<bucket>/<prefix> URIs")
    extra: Mapping[str, Any] = request.options
    content_type = request.content_type.split(";", 1)[0].strip().lower()
    by_line = content_type in LINE_TYPES
    split = str(extra.get("split_type") or ("Line" if by_line else "None"))
    strategy = str(extra.get("batch_strategy")
                   or ("MultiRecord" if content_type == "text/csv" else "SingleRecord"))
    data_input: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": request.input_uri}},
        "ContentType": request.content_type, "SplitType": split}
    output: dict[str, Any] = {"S3OutputPath": request.output_uri,
                              "Accept": str(extra.get("accept") or "application/json"),
                              "AssembleWith": "Line" if split == "Line" else "None"}
    resources: dict[str, Any] = {"InstanceType": options.serve_instance_type,
                                 "InstanceCount": options.serve_instance_count}
    if options.kms_key_id:
        output["KmsKeyId"] = options.kms_key_id
        resources["VolumeKmsKeyId"] = options.kms_key_id
    job: dict[str, Any] = {
        "TransformJobName": job_name, "ModelName": model_name, "BatchStrategy": strategy,
        "TransformInput": data_input, "TransformOutput": output,
        "TransformResources": resources,
        "Environment": {ENV_RUN_ID: request.run_id},
        "Tags": tag_list({**options.tags, TAG_RUN: request.run_id, TAG_PROJECT: project,
                          TAG_ROLE: "batch"}),
    }
    if extra.get("max_payload_mb"):
        job["MaxPayloadInMB"] = int(extra["max_payload_mb"])
    if extra.get("max_concurrent_transforms"):
        job["MaxConcurrentTransforms"] = int(extra["max_concurrent_transforms"])
    return job


class BatchRunner:
    """Runs one transform job to its end and removes the model it made for it."""

    def __init__(self, clients: AwsClients, options: SageMakerOptions, *, project: str,
                 poll_s: float = 15.0):
        self.clients = clients
        self.options = options
        self.project = project
        self.poll_s = poll_s

    def run(self, request: BatchRequest, *, image: str, model_url: str,
            progress: ProgressSink = null_progress) -> BatchResult:
        name = join(f"{self.project}-batch", stamp())
        tags = {**self.options.tags, TAG_RUN: request.run_id, TAG_PROJECT: self.project,
                TAG_ROLE: "batch"}
        job = transform_request(request, self.options, job_name=name, model_name=name,
                                project=self.project)
        sagemaker = self.clients.sagemaker
        with translated(f"create model {name}", resource=f"model {name}"):
            sagemaker.create_model(**model_request(
                name, image=image, model_url=model_url, role_arn=self.options.role_arn,
                environment={ENV_RUN_ID: request.run_id}, tags=tags,
                options=self.options))
        try:
            with translated(f"create transform job {name}", resource=f"transform job {name}"):
                sagemaker.create_transform_job(**job)
        except BaseException:
            self._delete_model(name)
            raise
        progress(f"batch transform job {name}: {request.input_uri} -> {request.output_uri}"
                 f" on {self.options.serve_instance_count} x {self.options.serve_instance_type}")
        try:
            found = self._wait(name, progress)
        except KeyboardInterrupt:
            progress(f"batch job {name} keeps running on SageMaker; follow it with: aws"
                     f" sagemaker describe-transform-job --transform-job-name {name}")
            raise
        self._delete_model(name)
        status = TERMINAL[found["TransformJobStatus"]]
        reason = found.get("FailureReason") or None
        if status != "finished" and not reason:
            reason = f"SageMaker reported the job {found['TransformJobStatus']} without a reason"
        return BatchResult(job_id=name, status=status, output_uri=request.output_uri,
                           failure_reason=reason if status != "finished" else None)

    def _wait(self, name: str, progress: ProgressSink) -> dict[str, Any]:
        shown = None
        while True:
            with translated(f"describe transform job {name}", resource=f"transform job {name}"):
                found = self.clients.sagemaker.describe_transform_job(TransformJobName=name)
            status = found["TransformJobStatus"]
            if status != shown:
                progress(f"{name}: {status}")
                shown = status
            if status in TERMINAL:
                return found
            time.sleep(self.poll_s)

    def _delete_model(self, name: str) -> None:
        try:
            with translated(f"delete model {name}"):
                self.clients.sagemaker.delete_model(ModelName=name)
        except MldockError:
            pass  # a leftover model costs nothing; the job's outcome matters more
