"""``[storage.gcs]`` and ``[deploy.vertex]``: how mldock reaches Google Cloud.

Credentials never go here. Application Default Credentials supply them (``gcloud auth
application-default login``, ``GOOGLE_APPLICATION_CREDENTIALS``, the metadata server of a VM, Cloud
Run or GKE workload identity); a service-account key file may be *named* through an environment
variable (``credentials_file = "env:MY_SA_KEY_PATH"``) so that two projects on one machine can use
two accounts without a secret in ``mldock.toml``.

A minimal Vertex block::

    [deploy.vertex]
    project = "my-project"
    region = "europe-west4"
"""

from __future__ import annotations

import re

from mldock.config.plugin_config import EndpointUrl, EnvSecret, PluginConfig
from pydantic import Field, field_validator, model_validator

MB = 1 << 20
PROJECT_ID = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$"
REGION = r"^[a-z]+-[a-z]+\d+$"
GCS_URI = r"^gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?$"
MACHINE_TYPE = r"^[a-z0-9]+-[a-z0-9-]+$"
ACCELERATOR = r"^[A-Z0-9_]+$"
LABEL_KEY = r"^[a-z][a-z0-9_-]{0,62}$"
LABEL_VALUE = r"^[a-z0-9_-]{0,63}$"
KMS_KEY = r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$"
REPOSITORY = r"^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
REGISTRY_HOST = r"^[A-Za-z0-9.-]+(:\d{1,5})?$"
MAX_LABELS = 60  # Vertex's 64, less the labels mldock adds itself
MAX_JOB_SECONDS = 7 * 24 * 3600  # CustomJob scheduling.timeout ceiling


class GcsOptions(PluginConfig):
    """Options of the ``gcs`` artifact store (``[storage.gcs]`` in ``mldock.toml``).

    Attributes:
        project: the project billed for requests (requester-pays buckets); unset means the
            credentials' project.
        credentials_file: ``"env:NAME"`` of a variable holding the path of a service-account key
            file; unset means Application Default Credentials.
        endpoint_url: the JSON API's endpoint (an emulator, a private endpoint); unset means
            Google's, or ``STORAGE_EMULATOR_HOST`` when set (then with anonymous credentials).
        anonymous: unsigned requests (public buckets); no credentials.
        max_concurrency: parallel requests per transfer (ranges of a big file, parts of a
            parallel upload, or small files).
        chunk_mb: files from this size up are streamed from disk in a resumable upload (one
            request, resumed where it broke off) instead of being read into memory; from twice
            this size up they are fetched in ``max_concurrency`` parallel ranges.
        parallel_upload_mb: files from this size up are uploaded as ``max_concurrency``
            parallel parts joined by ``compose`` (a *parallel composite upload*); unset (the
            default) sends each file in one stream. Faster on a fast network, but the parts are
            temporary objects: a bucket with soft delete (on by default) keeps and bills them
            for its retention period, Nearline/Coldline/Archive buckets charge early deletion,
            a retention policy blocks their removal, and a composite object has a CRC32C but no
            MD5.
    """

    project: str | None = Field(default=None, pattern=PROJECT_ID)
    credentials_file: EnvSecret | None = None
    endpoint_url: EndpointUrl | None = None
    anonymous: bool = False
    max_concurrency: int = Field(default=8, ge=1, le=64)
    chunk_mb: int = Field(default=32, ge=1, le=1024)
    parallel_upload_mb: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _check_credentials(self) -> GcsOptions:
        if self.anonymous and self.credentials_file is not None:
            raise ValueError("anonymous = true sends unsigned requests: drop credentials_file, or"
                             " set anonymous = false")
        return self

    @property
    def chunk_size(self) -> int:
        """Bytes per chunk (a multiple of 256 KiB, as resumable uploads require)."""
        return self.chunk_mb * MB


class VertexOptions(PluginConfig):
    """Options of the ``vertex`` deployer (``[deploy.vertex]`` in ``mldock.toml``).

    Attributes:
        project: the Google Cloud project of jobs, models and endpoints; unset means the
            credentials' project (``gcloud config set project``, ``GOOGLE_CLOUD_PROJECT``).
        region: the Vertex AI region of jobs, models, endpoints and the Artifact Registry
            repository.
        staging_bucket: ``gs://bucket/prefix`` for models, staged data and batch outputs;
            default ``<[storage] uri>/vertex`` when the storage is ``gs://``.
        service_account: the service account jobs and endpoints run as; unset means Vertex's
            default (the project's Vertex AI Custom Code Service Agent).
        network: a VPC network (``projects/<number>/global/networks/<name>``) peered with Vertex.
        encryption_key: a Cloud KMS key (CMEK) for jobs, models, endpoints and batch jobs.
        labels: extra labels for every resource mldock creates.
        machine_type, accelerator_type, accelerator_count, replica_count: the training worker
            pool; ``replica_count`` above 1 adds a second pool of ``replica_count - 1`` workers
            (a multi-worker job: the runtime reads ``CLUSTER_SPEC``).
        boot_disk_size_gb: each training replica's boot disk.
        timeout_s: a training job is stopped after this long (``scheduling.timeout``).
        restart_on_worker_restart: restart the job when a worker restarts (preemption).
        spot: run on Spot VMs (``scheduling.strategy = SPOT``): cheaper, may be preempted.
        serve_machine_type, serve_accelerator_type, serve_accelerator_count, min_replicas,
            max_replicas: the endpoint's deployed model resources.
        batch_machine_type, batch_replicas: the batch prediction job's machines.
        repository: the Artifact Registry Docker repository (created if missing).
        registry_location: the repository's location; default ``region``.
        registry_host: push to this host instead of ``<location>-docker.pkg.dev`` (tests with a
            local registry, mirrors); the access token is still the password.
        api_endpoint: send Vertex AI requests here (a private endpoint, tests' local fake).
        credentials_file: ``"env:NAME"`` of a variable holding a service-account key file path.
        deploy_timeout_s: how long ``mldock deploy`` waits for the model to serve.
    """

    project: str | None = Field(default=None, pattern=PROJECT_ID)
    region: str = Field(default="us-central1", pattern=REGION)
    staging_bucket: str | None = Field(default=None, pattern=GCS_URI)
    service_account: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    network: str | None = Field(default=None, pattern=r"^projects/[^/]+/global/networks/[^/]+$")
    encryption_key: str | None = Field(default=None, pattern=KMS_KEY)
    labels: dict[str, str] = Field(default_factory=dict)
    machine_type: str = Field(default="n1-standard-4", pattern=MACHINE_TYPE)
    accelerator_type: str | None = Field(default=None, pattern=ACCELERATOR)
    accelerator_count: int = Field(default=0, ge=0, le=16)
    replica_count: int = Field(default=1, ge=1, le=100)
    boot_disk_size_gb: int = Field(default=100, ge=10, le=65536)
    timeout_s: int = Field(default=24 * 3600, ge=60, le=MAX_JOB_SECONDS)
    restart_on_worker_restart: bool = False
    spot: bool = False
    serve_machine_type: str = Field(default="n1-standard-2", pattern=MACHINE_TYPE)
    serve_accelerator_type: str | None = Field(default=None, pattern=ACCELERATOR)
    serve_accelerator_count: int = Field(default=0, ge=0, le=16)
    min_replicas: int = Field(default=1, ge=1, le=1000)
    max_replicas: int | None = Field(default=None, ge=1, le=1000)
    batch_machine_type: str = Field(default="n1-standard-2", pattern=MACHINE_TYPE)
    batch_replicas: int = Field(default=1, ge=1, le=1000)
    repository: str = Field(default="mldock", pattern=REPOSITORY)
    registry_location: str | None = Field(default=None, pattern=r"^[a-z]+(-[a-z]+\d+)?$")
    registry_host: str | None = Field(default=None, pattern=REGISTRY_HOST)
    api_endpoint: EndpointUrl | None = None
    credentials_file: EnvSecret | None = None
    deploy_timeout_s: int = Field(default=3600, ge=60, le=6 * 3600)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, labels: dict[str, str]) -> dict[str, str]:
        if len(labels) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} labels (Vertex allows 64; mldock adds its"
                             " own)")
        for key, value in labels.items():
            if not re.match(LABEL_KEY, key):
                raise ValueError(f"label key {key!r} must start with a lowercase letter and hold"
                                 " only lowercase letters, digits, '_' and '-' (at most 63)")
            if key.startswith("mldock"):
                raise ValueError(f"label key {key!r}: keys starting with 'mldock' are mldock's")
            if not re.match(LABEL_VALUE, value):
                raise ValueError(f"label {key} = {value!r}: values hold only lowercase letters,"
                                 " digits, '_' and '-' (at most 63)")
        return labels

    @model_validator(mode="after")
    def _check_pairs(self) -> VertexOptions:
        if (self.accelerator_type is None) != (self.accelerator_count == 0):
            raise ValueError("accelerator_type and accelerator_count go together: give both"
                             " (e.g. \"NVIDIA_TESLA_T4\" and 1) or neither")
        if (self.serve_accelerator_type is None) != (self.serve_accelerator_count == 0):
            raise ValueError("serve_accelerator_type and serve_accelerator_count go together")
        if self.max_replicas is not None and self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas"
                             f" ({self.min_replicas})")
        return self

    @property
    def artifact_registry_location(self) -> str:
        """Where the Docker repository lives (``registry_location``, else ``region``)."""
        return self.registry_location or self.region


class VertexTuneOptions(PluginConfig):
    """The Vertex-only keys of ``[tune.vertex]`` (the common keys are core's).

    Attributes:
        max_failed_trials: the job fails after this many failed trials (``0``: Vertex decides);
            unset: Vertex's default.
        measurement: which of a trial's reported values counts, ``"last"`` or ``"best"``
            (``measurement_selection_type``).
        observation_noise: ``"low"`` or ``"high"``: how noisy the objective is between runs of
            the same values (Vizier samples repeats when high); unset: Vizier's default.
    """

    max_failed_trials: int | None = Field(default=None, ge=0, le=10_000)
    measurement: str = Field(default="last", pattern=r"^(last|best)$")
    observation_noise: str | None = Field(default=None, pattern=r"^(low|high)$")
