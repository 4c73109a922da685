"""The ``sagemaker`` deployer: the project's image on SageMaker, unchanged.

It only composes the parts: :mod:`~mldock_aws.ecr` (where images go), :mod:`~mldock_aws.training`
(jobs and their logs), :mod:`~mldock_aws.serving` (endpoints), :mod:`~mldock_aws.batch` (transform
jobs) and :mod:`~mldock_aws.modeldata` (local models packed for SageMaker). No AWS request is
made before a command needs one, so building the deployer never fails on missing credentials.
"""

from __future__ import annotations

import builtins
from functools import cached_property
from typing import Any

from mldock.errors import ConfigError, MldockError, NotFoundError
from mldock.interfaces import (
    BatchRequest,
    BatchResult,
    Deployer,
    Deployment,
    DeployRequest,
    HealthCheck,
    MetricsSink,
    Prediction,
    ProgressSink,
    RegistryTarget,
    TrainingJob,
    TrainingResult,
    TrialSink,
    TuneRequest,
    TuneResult,
    null_progress,
)
from mldock.records import FactoryContext

from mldock_aws import ecr
from mldock_aws.batch import BatchRunner
from mldock_aws.clients import AwsClients
from mldock_aws.config import SageMakerOptions
from mldock_aws.errors import CREDENTIALS_HINT, ROLE_HINT, translated
from mldock_aws.modeldata import model_data_url
from mldock_aws.names import training_job_name
from mldock_aws.serving import Endpoints
from mldock_aws.training import TrainingRunner
from mldock_aws.tuning import TuningRunner


class SageMakerDeployer(Deployer):
    """Training jobs, endpoints and batch transform on SageMaker; images in ECR.

    Args:
        options: ``[deploy.sagemaker]``.
        project: the project's name (tags, job and repository names).
        storage_uri: the project's ``[storage] uri``; ``s3://…`` gives the default output path.
        clients: the AWS clients (built from ``options`` when not given).
        poll_s: seconds between two looks at a job or endpoint (tests make it short).
    """

    def __init__(self, options: SageMakerOptions, *, project: str, storage_uri: str = "",
                 clients: AwsClients | None = None, poll_s: float | None = None):
        self.options = options
        self.project = project
        self.storage_uri = storage_uri
        self.clients = clients or AwsClients(options)
        self.training = TrainingRunner(self.clients, options, project=project,
                                       output_path="", poll_s=poll_s or 5.0)
        self.endpoints = Endpoints(self.clients, options, project=project,
                                   poll_s=poll_s or 15.0)
        self.batches = BatchRunner(self.clients, options, project=project,
                                   poll_s=poll_s or 15.0)
        self.tuning = TuningRunner(self.clients, options, project=project,
                                   poll_s=poll_s or 30.0)

    @classmethod
    def from_context(cls, context: FactoryContext) -> SageMakerDeployer:
        options = context.options
        if options is None:  # the config loader reports this first; kept for direct callers
            raise ConfigError(context.config_file, "deploy.sagemaker.role_arn",
                              "required key is missing",
                              hint='add role_arn = "arn:aws:iam::<account>:role/<name>"')
        return cls(options, project=context.project, storage_uri=context.storage_uri or "")

    # --- where things go ----------------------------------------------------------------------
    @cached_property
    def output_path(self) -> str:
        """SageMaker's S3OutputPath: ``output_path``, else ``<storage uri>/sagemaker``."""
        if self.options.output_path:
            return self.options.output_path.rstrip("/")
        if self.storage_uri.startswith("s3://"):
            from mldock_s3.location import S3Location

            return S3Location.parse(self.storage_uri).child("sagemaker").uri
        raise MldockError(
            f"SageMaker needs an S3 location for models and outputs; [storage] uri is"
            f" {self.storage_uri or 'not set'}",
            hint='set [storage] uri = "s3://<bucket>/<prefix>" in the aws environment, or'
                 ' [deploy.sagemaker] output_path = "s3://<bucket>/<prefix>"', exit_code=2)

    def registry_target(self, image: str) -> RegistryTarget:
        """The ECR repository for ``image`` (created if missing) and a token fetched now; core
        pushes there with its builder before :meth:`train`, :meth:`deploy` and :meth:`batch`."""
        return ecr.registry_target(self.clients, image, repository=self.options.ecr_repository,
                                   registry=self.options.ecr_registry, project=self.project)

    def _image(self, image: str) -> str:
        """The image core pushed (see :meth:`registry_target`), checked to be pullable."""
        return ecr.require_pullable(image, self.options.ecr_registry)

    def _model_url(self, model_uri: str, options: Any, run_id: str,
                   progress: ProgressSink) -> str:
        if model_uri.startswith("s3://") and model_uri.endswith(".tar.gz"):
            return model_uri  # trained on SageMaker: no output path needed
        local = options.get("model_dir")
        return model_data_url(self.clients, model_uri=model_uri,
                              model_dir=str(local) if local else None, run_id=run_id,
                              output_path=self.output_path, progress=progress)

    # --- training -----------------------------------------------------------------------------
    def train(self, job: TrainingJob, *, progress: ProgressSink = null_progress,
              on_metrics: MetricsSink | None = None) -> TrainingResult:
        self._image(job.image)
        self.training.output_path = self.output_path
        return self.training.run(job, training_job_name(self.project, job.run_id),
                                 progress=progress, on_metrics=on_metrics)

    def tune(self, request: TuneRequest, *, progress: ProgressSink = null_progress,
             on_trial: TrialSink | None = None) -> TuneResult:
        """A HyperParameterTuningJob of the pushed image (:mod:`~mldock_aws.tuning`)."""
        self._image(request.image)
        return self.tuning.run(request, output_path=self.output_path, progress=progress,
                               on_trial=on_trial)

    def batch(self, request: BatchRequest, *,
              progress: ProgressSink = null_progress) -> BatchResult:
        image = self._image(request.image)
        model_url = self._model_url(request.model_uri, request.options, request.run_id, progress)
        return self.batches.run(request, image=image, model_url=model_url, progress=progress)

    # --- serving ------------------------------------------------------------------------------
    def deploy(self, request: DeployRequest, *,
               progress: ProgressSink = null_progress) -> Deployment:
        image = self._image(request.image)
        model_url = self._model_url(request.model_uri, request.options, request.run_id, progress)
        return self.endpoints.deploy(request, image=image, model_url=model_url,
                                     progress=progress)

    def undeploy(self, name: str) -> None:
        self.endpoints.undeploy(name)

    def get(self, name: str) -> Deployment:
        return self.endpoints.get(name)

    def list(self) -> builtins.list[Deployment]:  # ``list`` is this method here
        return self.endpoints.list()

    def predict(self, name: str, body: bytes, *, content_type: str = "application/json",
                accept: str = "application/json") -> Prediction:
        return self.endpoints.predict(name, body, content_type=content_type, accept=accept)

    # --- doctor -------------------------------------------------------------------------------
    def check(self) -> builtins.list[HealthCheck]:
        """Credentials (STS GetCallerIdentity), region, and the execution role."""
        try:
            source = self.clients.credential_source()
            region = self.clients.region
        except MldockError as exc:
            return [HealthCheck("AWS session", False, exc.message, exc.hint or "")]
        if source is None:
            return [HealthCheck("AWS credentials", False, "no AWS credentials found",
                                CREDENTIALS_HINT)]
        try:
            with translated("check the AWS credentials"):
                who = self.clients.client("sts").get_caller_identity()
        except MldockError as exc:
            return [HealthCheck("AWS credentials", False, exc.message, exc.hint or "")]
        checks = [HealthCheck("AWS credentials", True,
                              f"account {who['Account']} as {who['Arn']} ({source})"),
                  HealthCheck("AWS region", True, region)]
        return [*checks, self._role_check()]

    def _role_check(self) -> HealthCheck:
        role = self.options.role_arn
        name = role.split(":role/", 1)[1].rsplit("/", 1)[-1]
        try:
            with translated(f"look up role {name}", resource=f"IAM role {name!r}"):
                self.clients.client("iam").get_role(RoleName=name)
        except NotFoundError:
            return HealthCheck("SageMaker role", False, f"{role} does not exist", ROLE_HINT)
        except MldockError as exc:  # e.g. no iam:GetRole permission: SageMaker may still use it
            return HealthCheck("SageMaker role", True,
                               f"{role} (not verified: {exc.message})")
        return HealthCheck("SageMaker role", True, f"{role} exists")
