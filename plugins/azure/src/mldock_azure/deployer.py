"""The ``azureml`` deployer: the project's image on Azure Machine Learning, unchanged.

It only composes the parts: :mod:`~mldock_azure.registry` (where images go),
:mod:`~mldock_azure.training` (command jobs and their logs), :mod:`~mldock_azure.serving`
(managed online endpoints), :mod:`~mldock_azure.batch` (batch jobs) and
:mod:`~mldock_azure.modeldata` (models registered in the workspace). No Azure request is made
before a command needs one, so building the deployer never fails on missing credentials, and
``azure.ai.ml`` is imported only then.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from functools import cached_property
from typing import Any

from mldock.errors import ConfigError, MldockError, NotFoundError, UsageError
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

from mldock_azure import registry
from mldock_azure.config import AzureMLOptions
from mldock_azure.errors import CREDENTIALS_HINT, translated
from mldock_azure.training import TrainingRunner
from mldock_azure.workspace import AzureMLClients


class AzureMLDeployer(Deployer):
    """Command jobs, managed online endpoints and batch on Azure ML; images in ACR.

    Args:
        options: ``[deploy.azureml]``.
        project: the project's name (tags, job, model and repository names).
        clients: the workspace's clients (built from ``options`` when not given).
        open_store: the project's artifact store for a URI (``az://`` channels become the blob
            URLs Azure ML mounts); ``None`` outside a session.
        poll_s: seconds between two looks at a job or endpoint (tests make it short).
    """

    def __init__(self, options: AzureMLOptions, *, project: str,
                 clients: AzureMLClients | None = None,
                 open_store: Callable[[str], Any] | None = None,
                 poll_s: float | None = None):
        self.options = options
        self.project = project
        self.clients = clients or AzureMLClients(options)
        self.open_store = open_store
        self.poll_s = poll_s
        self.training = TrainingRunner(self.clients, options, project=project,
                                       poll_s=poll_s or 5.0, resolve=self._blob_url)

    @classmethod
    def from_context(cls, context: FactoryContext) -> AzureMLDeployer:
        options = context.options
        if options is None:  # the config loader reports this first; kept for direct callers
            raise ConfigError(context.config_file, "deploy.azureml.subscription_id",
                              "required key is missing",
                              hint="add subscription_id, resource_group and workspace under"
                                   " [deploy.azureml] ('mldock config example azureml')")
        return cls(options, project=context.project, open_store=context.open_store)

    # --- parts built on first use (H's modules import the SDK lazily themselves) ---------------
    @cached_property
    def endpoints(self) -> Any:
        from mldock_azure.serving import Endpoints

        return Endpoints(self.clients, self.options, project=self.project,
                         poll_s=self.poll_s or 15.0)

    @cached_property
    def batches(self) -> Any:
        from mldock_azure.batch import BatchRunner

        return BatchRunner(self.clients, self.options, project=self.project,
                           poll_s=self.poll_s or 15.0, resolve=self._blob_url)

    @cached_property
    def tuning(self) -> Any:
        from mldock_azure.tuning import TuningRunner

        return TuningRunner(self.clients, self.options, project=self.project,
                            poll_s=self.poll_s or 30.0)

    # --- where things go ----------------------------------------------------------------------
    def registry_target(self, image: str) -> RegistryTarget:
        """The ACR repository for ``image`` and credentials obtained now (the Entra ID exchange
        or the admin user); core pushes there before :meth:`train`, :meth:`deploy` and
        :meth:`batch`."""
        return registry.registry_target(self.clients, image)

    def _image(self, image: str) -> str:
        """The image core pushed (see :meth:`registry_target`), checked to be pullable."""
        return registry.require_pullable(image, self.options)

    def _blob_url(self, uri: str) -> str:
        """The ``https://`` URL of an ``az://`` location, from the project's store (which knows
        the storage account), for Azure ML to mount."""
        store = self.open_store(uri) if self.open_store is not None else None
        url_of = getattr(store, "https_url", None)
        if url_of is None:
            raise UsageError(f"{uri}: no Azure Blob store to resolve it with",
                             hint='set [storage] uri = "az://<container>/<prefix>" and'
                                  " [storage.azblob] account for the azure environment, or give"
                                  " the channel as an azureml:// or https:// URI")
        return str(url_of(uri))

    def _model(self, model_uri: str, options: Any, run_id: str, progress: ProgressSink) -> Any:
        from mldock_azure.modeldata import registered_model

        local = options.get("model_dir")
        return registered_model(self.clients, model_uri=model_uri,
                                model_dir=str(local) if local else None, run_id=run_id,
                                project=self.project, tags=dict(self.options.tags),
                                progress=progress)

    # --- training -----------------------------------------------------------------------------
    def train(self, job: TrainingJob, *, progress: ProgressSink = null_progress,
              on_metrics: MetricsSink | None = None) -> TrainingResult:
        self._image(job.image)
        return self.training.run(job, progress=progress, on_metrics=on_metrics)

    def tune(self, request: TuneRequest, *, progress: ProgressSink = null_progress,
             on_trial: TrialSink | None = None) -> TuneResult:
        """A sweep job of the pushed image (:mod:`~mldock_azure.tuning`)."""
        from mldock_azure.names import job_name
        from mldock_azure.training import input_paths

        self._image(request.image)
        channels = input_paths(request.inputs, self._blob_url)
        result: TuneResult = self.tuning.run(
            request, name=job_name(self.project, request.tune_id), channels=channels,
            progress=progress, on_trial=on_trial)
        return result

    def batch(self, request: BatchRequest, *,
              progress: ProgressSink = null_progress) -> BatchResult:
        image = self._image(request.image)
        model = self._model(request.model_uri, request.options, request.run_id, progress)
        result: BatchResult = self.batches.run(request, image=image, model=model,
                                               progress=progress)
        return result

    # --- serving ------------------------------------------------------------------------------
    def deploy(self, request: DeployRequest, *,
               progress: ProgressSink = null_progress) -> Deployment:
        image = self._image(request.image)
        model = self._model(request.model_uri, request.options, request.run_id, progress)
        deployment: Deployment = self.endpoints.deploy(request, image=image, model=model,
                                                       progress=progress)
        return deployment

    def undeploy(self, name: str) -> None:
        self.endpoints.undeploy(name)

    def get(self, name: str) -> Deployment:
        found: Deployment = self.endpoints.get(name)
        return found

    def list(self) -> builtins.list[Deployment]:  # ``list`` is this method here
        found: builtins.list[Deployment] = self.endpoints.list()
        return found

    def predict(self, name: str, body: bytes, *, content_type: str = "application/json",
                accept: str = "application/json") -> Prediction:
        answer: Prediction = self.endpoints.predict(name, body, content_type=content_type,
                                                    accept=accept)
        return answer

    # --- doctor -------------------------------------------------------------------------------
    def check(self) -> builtins.list[HealthCheck]:
        """Credentials (which source, never a secret), the workspace, the compute."""
        identity = self.clients.identity
        try:
            identity.access_token(self.clients.arm_scope)
            source = identity.source()
        except MldockError as exc:
            return [HealthCheck("Azure credentials", False, exc.message,
                                exc.hint or CREDENTIALS_HINT)]
        checks = [HealthCheck("Azure credentials", True, f"found ({source})")]
        try:
            workspace = self.clients.workspace()
        except MldockError as exc:
            return [*checks, HealthCheck("Azure ML workspace", False, exc.message,
                                         exc.hint or "")]
        where = getattr(workspace, "location", None)
        checks.append(HealthCheck("Azure ML workspace", True,
                                  f"{self.clients.workspace_label} answers"
                                  + (f" ({where})" if where else "")))
        return [*checks, self._compute_check()]

    def _compute_check(self) -> HealthCheck:
        name = self.options.compute
        if name is None:
            return HealthCheck("Azure ML compute", True,
                               f"serverless ({self.options.instance_type})")
        try:
            with translated(f"look up compute {name!r}", resource=f"compute {name!r}"):
                compute = self.clients.ml.compute.get(name)
        except NotFoundError:
            return HealthCheck("Azure ML compute", False,
                               f"compute {name!r} does not exist in"
                               f" {self.clients.workspace_label}",
                               "check [deploy.azureml] compute ('az ml compute list'), or leave"
                               " it unset for serverless compute")
        except MldockError as exc:
            return HealthCheck("Azure ML compute", False, exc.message, exc.hint or "")
        size = getattr(compute, "size", None)
        state = getattr(compute, "provisioning_state", None)
        detail = ", ".join(str(x) for x in (getattr(compute, "type", None), size, state) if x)
        return HealthCheck("Azure ML compute", True, f"{name} ({detail})" if detail else name)
