"""The ``vertex`` deployer: the project's image on Vertex AI, unchanged.

It only composes the parts: :mod:`~mldock_gcp.registry` (where images go),
:mod:`~mldock_gcp.training` (custom jobs and their logs), :mod:`~mldock_gcp.serving` (endpoints),
:mod:`~mldock_gcp.batch` (batch prediction jobs) and :mod:`~mldock_gcp.modeldata` (models staged to
``gs://``). No Google request is made before a command needs one, so building the deployer never
fails on missing credentials.
"""

from __future__ import annotations

import builtins
from functools import cached_property
from typing import Any

from mldock.errors import ConfigError, MldockError
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

from mldock_gcp import registry
from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.errors import CREDENTIALS_HINT, translated
from mldock_gcp.names import training_job_name
from mldock_gcp.training import TrainingRunner


class VertexDeployer(Deployer):
    """Custom jobs, endpoints and batch prediction on Vertex AI; images in Artifact Registry.

    Args:
        options: ``[deploy.vertex]``.
        project: the mldock project's name (labels, job names).
        storage_uri: the project's ``[storage] uri``; ``gs://…`` gives the default staging.
        clients: the Vertex clients (built from ``options`` when not given).
        poll_s: seconds between two looks at a job or endpoint (tests make it short).
    """

    def __init__(self, options: VertexOptions, *, project: str, storage_uri: str = "",
                 clients: VertexClients | None = None, poll_s: float | None = None):
        self.options = options
        self.project = project
        self.storage_uri = storage_uri
        self.clients = clients or VertexClients(options)
        self.poll_s = poll_s
        self.training = TrainingRunner(self.clients, options, project=project,
                                       poll_s=poll_s or 10.0)

    @classmethod
    def from_context(cls, context: FactoryContext) -> VertexDeployer:
        options = context.options_as(VertexOptions)
        return cls(options, project=context.project, storage_uri=context.storage_uri or "")

    # --- the job modules of part D, built on first use ------------------------------------------
    @cached_property
    def endpoints(self) -> Any:
        from mldock_gcp.serving import Endpoints

        return Endpoints(self.clients, self.options, project=self.project,
                         poll_s=self.poll_s or 15.0)

    @cached_property
    def tuning(self) -> Any:
        from mldock_gcp.tuning import TuningRunner

        return TuningRunner(self.clients, self.options, project=self.project,
                            poll_s=self.poll_s or 30.0)

    @cached_property
    def batches(self) -> Any:
        from mldock_gcp.batch import BatchRunner

        return BatchRunner(self.clients, self.options, project=self.project,
                           poll_s=self.poll_s or 15.0)

    # --- where things go ----------------------------------------------------------------------
    @cached_property
    def staging(self) -> str:
        """``staging_bucket``, else ``<storage uri>/vertex``: models, job outputs, batch data."""
        if self.options.staging_bucket:
            return self.options.staging_bucket.rstrip("/")
        if self.storage_uri.startswith("gs://"):
            return f"{self.storage_uri.rstrip('/')}/vertex"
        raise ConfigError("mldock.toml", "deploy.vertex.staging_bucket",
                          "Vertex AI needs a gs:// location for models and job outputs; [storage]"
                          f" uri is {self.storage_uri or 'not set'}",
                          hint='set [deploy.vertex] staging_bucket = "gs://<bucket>/<prefix>",'
                               ' or [storage] uri = "gs://<bucket>/<prefix>" in the gcp'
                               " environment")

    def registry_target(self, image: str) -> RegistryTarget:
        """The Artifact Registry repository for ``image`` (created if missing) and a token
        fetched now; core pushes there before :meth:`train`, :meth:`deploy` and :meth:`batch`."""
        return registry.registry_target(self.clients, image, project=self.project,
                                        poll_s=min(self.poll_s or 1.0, 1.0))

    def _image(self, image: str) -> str:
        """The image core pushed (see :meth:`registry_target`), checked to be pullable."""
        return registry.require_pullable(image, self.options)

    def _artifact_uri(self, model_uri: str, options: Any, run_id: str,
                      progress: ProgressSink) -> str:
        from mldock_gcp.modeldata import artifact_uri

        local = options.get("model_dir")
        return artifact_uri(self.clients, model_uri=model_uri,
                            model_dir=str(local) if local else None, run_id=run_id,
                            staging=self.staging, progress=progress)

    # --- training -----------------------------------------------------------------------------
    def train(self, job: TrainingJob, *, progress: ProgressSink = null_progress,
              on_metrics: MetricsSink | None = None) -> TrainingResult:
        self._image(job.image)
        name = training_job_name(self.project, job.run_id)
        return self.training.run(job, display_name=name,
                                 base_output_dir=f"{self.staging}/jobs/{name}",
                                 progress=progress, on_metrics=on_metrics)

    def tune(self, request: TuneRequest, *, progress: ProgressSink = null_progress,
             on_trial: TrialSink | None = None) -> TuneResult:
        """A HyperparameterTuningJob of the pushed image (:mod:`~mldock_gcp.tuning`); trial
        models under ``<staging>/tunes/<name>/<trial id>/model``."""
        self._image(request.image)
        name = training_job_name(self.project, request.tune_id)
        result: TuneResult = self.tuning.run(
            request, display_name=name, base_output_dir=f"{self.staging}/tunes/{name}",
            progress=progress, on_trial=on_trial)
        return result

    def batch(self, request: BatchRequest, *,
              progress: ProgressSink = null_progress) -> BatchResult:
        image = self._image(request.image)
        uri = self._artifact_uri(request.model_uri, request.options, request.run_id, progress)
        return self.batches.run(request, image=image, artifact_uri=uri, progress=progress)

    # --- serving ------------------------------------------------------------------------------
    def deploy(self, request: DeployRequest, *,
               progress: ProgressSink = null_progress) -> Deployment:
        image = self._image(request.image)
        uri = self._artifact_uri(request.model_uri, request.options, request.run_id, progress)
        return self.endpoints.deploy(request, image=image, artifact_uri=uri, progress=progress)

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
        """Credentials (their source, never a secret), the project, and Vertex AI in the region."""
        credentials = self._credentials_check()
        if not credentials.ok:
            return [credentials]
        try:
            project = self.clients.project
        except MldockError as exc:
            return [credentials, HealthCheck("Google Cloud project", False, exc.message,
                                             exc.hint or "")]
        return [credentials, self._project_check(project), self._region_check()]

    def _credentials_check(self) -> HealthCheck:
        name = "Google Cloud credentials"
        try:
            identity = self.clients.chain.identity()
            if not self.clients.chain.anonymous:
                self.clients.chain.access_token()  # refused credentials show here, not later
        except MldockError as exc:
            return HealthCheck(name, False, exc.message, exc.hint or CREDENTIALS_HINT)
        who = getattr(identity.credentials, "service_account_email", None)
        detail = identity.source + (f" ({who})" if isinstance(who, str) and "@" in who else "")
        return HealthCheck(name, True, detail)

    def _project_check(self, project: str) -> HealthCheck:
        name = "Google Cloud project"
        try:
            found = self.clients.call("GET", "cloudresourcemanager", f"/v3/projects/{project}",
                                      action=f"look up project {project}",
                                      resource=f"project {project!r}")
        except MldockError as exc:
            return HealthCheck(name, False, exc.message, exc.hint or "")
        state = str(found.get("state") or "ACTIVE")
        if state != "ACTIVE":
            return HealthCheck(name, False, f"{project} is {state}",
                               "use an active project: [deploy.vertex] project")
        title = found.get("displayName")
        return HealthCheck(name, True, project + (f" ({title})" if title else ""))

    def _region_check(self) -> HealthCheck:
        name = "Vertex AI region"
        region = self.clients.region
        try:
            with translated(f"list Vertex AI endpoints in {region}",
                            resource=f"location {self.clients.parent}"):
                self.clients.endpoints.list_endpoints(
                    request={"parent": self.clients.parent, "page_size": 1})
        except MldockError as exc:
            return HealthCheck(name, False, exc.message,
                               exc.hint or "check [deploy.vertex] region (e.g. us-central1)")
        return HealthCheck(name, True, f"{region} answers ({self.clients.api_endpoint})")
