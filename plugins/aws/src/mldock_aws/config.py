"""``[deploy.sagemaker]``: where and how the project's image runs on SageMaker.

Only ``role_arn`` is required (SageMaker runs every job and endpoint as that role, and there is no
sensible default); everything else has the defaults of SageMaker's own SDK. Credentials never go
here: boto3's standard chain supplies them (environment, ``AWS_PROFILE`` or ``profile``, ``~/.aws``,
SSO, instance and container roles).

A minimal block::

    [deploy.sagemaker]
    region = "eu-west-1"
    role_arn = "arn:aws:iam::123456789012:role/SageMakerExecution"
"""

from __future__ import annotations

import re

from mldock.config.plugin_config import EndpointUrl, PluginConfig
from pydantic import Field, field_validator, model_validator

ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$"
INSTANCE_TYPE = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"
ECR_REPOSITORY = r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$"
REGISTRY_HOST = r"^[A-Za-z0-9.-]+(:\d{1,5})?$"
METRIC_NAME = r"^[^\s=]{1,255}$"
S3_URI = r"^s3://[^/]+(/.*)?$"
MAX_JOB_SECONDS = 28 * 24 * 3600  # SageMaker's ceiling for MaxRuntimeInSeconds / MaxWait…
MAX_METRICS = 40  # SageMaker accepts at most 40 metric definitions per job
MAX_TAGS = 45  # SageMaker's 50, less the tags mldock adds itself


class SageMakerOptions(PluginConfig):
    """Options of the ``sagemaker`` deployer (``[deploy.sagemaker]`` in ``mldock.toml``).

    Attributes:
        region: AWS region of the jobs, endpoints and ECR repository; unset means the AWS chain's
            (``AWS_REGION``, ``AWS_DEFAULT_REGION``, the profile).
        profile: a named profile of ``~/.aws/config``; unset means ``AWS_PROFILE`` or ``default``.
        role_arn: the execution role SageMaker assumes (required),
            ``arn:aws:iam::<account>:role/<name>``.
        instance_type, instance_count: training instances; a count above 1 is a distributed job
            (the runtime reads the hosts from ``resourceconfig.json``).
        serve_instance_type, serve_instance_count: endpoint and batch transform instances.
        volume_size_gb: the training instances' storage volume.
        max_runtime_s: a training job is stopped after this long (``StoppingCondition``).
        spot: managed spot training (cheaper, may be interrupted; checkpoints resume it).
        max_wait_s: with ``spot``, how long to wait for spot capacity plus the run itself
            (at least ``max_runtime_s``; default twice ``max_runtime_s``, capped at 28 days).
        checkpoint_s3_uri: where ``/opt/ml/checkpoints`` is synced; default with ``spot``:
            ``<output_path>/<job name>/checkpoints``.
        subnets, security_group_ids: run jobs and endpoints inside a VPC (give both).
        kms_key_id: KMS key for the training output, the volumes and the endpoint's storage.
        tags: extra tags for every job, model, endpoint config and endpoint.
        output_path: SageMaker's ``S3OutputPath`` (``model.tar.gz`` lands under it); default
            ``s3://<bucket>/<prefix>/sagemaker/`` of the project's ``[storage] uri``.
        metrics: metric names the training code logs with ``ctx.log_metric``: each becomes a
            SageMaker metric definition (console charts, CloudWatch, FinalMetricDataList). mldock
            tracks every metric anyway by reading the job's log; default none.
        endpoint_startup_timeout_s: ``ContainerStartupHealthCheckTimeoutInSeconds`` (large
            models take long to load); unset keeps SageMaker's default.
        deploy_timeout_s: how long ``mldock deploy`` waits for the endpoint to be InService.
        ecr_repository: the ECR repository to push to; default: the image's repository name.
        ecr_registry: push to this registry host instead of the account's ECR host (tests with
            a local registry; pull-through mirrors). The ECR token is still used as password.
        endpoint_url: send every AWS request here (moto, LocalStack); ``AWS_ENDPOINT_URL`` and the
            per-service ``AWS_ENDPOINT_URL_<SERVICE>`` variables are honoured by boto3 itself.
    """

    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    profile: str | None = None
    role_arn: str = Field(pattern=ROLE_ARN)
    instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE)
    instance_count: int = Field(default=1, ge=1, le=100)
    serve_instance_type: str = Field(default="ml.m5.large", pattern=INSTANCE_TYPE)
    serve_instance_count: int = Field(default=1, ge=1, le=100)
    volume_size_gb: int = Field(default=30, ge=1, le=16384)
    max_runtime_s: int = Field(default=24 * 3600, ge=1, le=MAX_JOB_SECONDS)
    spot: bool = False
    max_wait_s: int | None = Field(default=None, ge=1, le=MAX_JOB_SECONDS)
    checkpoint_s3_uri: str | None = Field(default=None, pattern=S3_URI)
    subnets: list[str] = Field(default_factory=list, max_length=16)
    security_group_ids: list[str] = Field(default_factory=list, max_length=5)
    kms_key_id: str | None = Field(default=None, min_length=1, max_length=2048)
    tags: dict[str, str] = Field(default_factory=dict, max_length=MAX_TAGS)
    output_path: str | None = Field(default=None, pattern=S3_URI)
    metrics: list[str] = Field(default_factory=list, max_length=MAX_METRICS)
    endpoint_startup_timeout_s: int | None = Field(default=None, ge=60, le=3600)
    deploy_timeout_s: int = Field(default=3600, ge=60, le=6 * 3600)
    ecr_repository: str | None = Field(default=None, min_length=2, max_length=256,
                                       pattern=ECR_REPOSITORY)
    ecr_registry: str | None = Field(default=None, pattern=REGISTRY_HOST)
    endpoint_url: EndpointUrl | None = None


    @field_validator("metrics")
    @classmethod
    def _check_metrics(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(METRIC_NAME, name):
                raise ValueError(f"invalid metric name {name!r}: a word without spaces or '='"
                                 " (the key given to ctx.log_metric)")
        if len(set(value)) != len(value):
            raise ValueError("metric names must be unique")
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if not 1 <= len(key) <= 128 or len(item) > 256:
                raise ValueError(f"tag {key!r}: keys take 1-128 characters, values up to 256")
            if key.lower().startswith(("aws:", "mldock.")):
                raise ValueError(f"tag {key!r}: the prefixes 'aws:' and 'mldock.' are reserved")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> SageMakerOptions:
        if bool(self.subnets) != bool(self.security_group_ids):
            raise ValueError("subnets and security_group_ids go together: give both to run in a"
                             " VPC, or neither")
        if self.max_wait_s is not None:
            if not self.spot:
                raise ValueError("max_wait_s applies to spot training only: set spot = true or"
                                 " drop max_wait_s")
            if self.max_wait_s < self.max_runtime_s:
                raise ValueError(f"max_wait_s ({self.max_wait_s}) must be at least max_runtime_s"
                                 f" ({self.max_runtime_s})")
        return self

    @property
    def spot_max_wait_s(self) -> int:
        """``MaxWaitTimeInSeconds`` for spot jobs: the configured value or twice the runtime."""
        if self.max_wait_s is not None:
            return self.max_wait_s
        return min(2 * self.max_runtime_s, MAX_JOB_SECONDS)


TUNING_JOB_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$"


class SageMakerTuneOptions(PluginConfig):
    """The SageMaker-only keys of ``[tune.sagemaker]`` (the common keys are core's).

    Attributes:
        max_runtime_s: the whole tuning job stops after this long (``ResourceLimits``
            ``MaxRuntimeInSeconds``, 2 minutes to ~6 months); unset: no limit but the trials'.
        target_objective: the job completes once a trial reaches this objective value
            (``TuningJobCompletionCriteria.TargetObjectiveMetricValue``).
        stop_when_not_improving: complete after this many trials without a better objective
            (``BestObjectiveNotImproving``, at least 3).
        hyperband_min_resource, hyperband_max_resource: Hyperband's smallest and largest budget
            in epochs (the ``step`` the code logs the objective with); unset: SageMaker picks.
        warm_start_from: up to 5 earlier tuning jobs whose trials seed this search.
        warm_start_type: ``IdenticalDataAndAlgorithm`` (same data and image) or
            ``TransferLearning`` (changed data, image or space).
    """

    max_runtime_s: int | None = Field(default=None, ge=120, le=15_768_000)
    target_objective: float | None = None
    stop_when_not_improving: int | None = Field(default=None, ge=3)
    hyperband_min_resource: int | None = Field(default=None, ge=1)
    hyperband_max_resource: int | None = Field(default=None, ge=1)
    warm_start_from: list[str] = Field(default_factory=list, max_length=5)
    warm_start_type: str = Field(default="IdenticalDataAndAlgorithm",
                                 pattern=r"^(IdenticalDataAndAlgorithm|TransferLearning)$")

    @field_validator("warm_start_from")
    @classmethod
    def _check_parents(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.match(TUNING_JOB_NAME, name):
                raise ValueError(f"{name!r} is not a SageMaker tuning job name (letters, digits"
                                 " and hyphens, at most 32)")
        return value

    @model_validator(mode="after")
    def _check_hyperband(self) -> SageMakerTuneOptions:
        low, high = self.hyperband_min_resource, self.hyperband_max_resource
        if low is not None and high is not None and low > high:
            raise ValueError(f"hyperband_min_resource ({low}) is above hyperband_max_resource"
                             f" ({high})")
        return self
