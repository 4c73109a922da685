"""``[storage.azblob]`` and ``[deploy.azureml]``: how mldock reaches Azure.

Credentials never go here. ``DefaultAzureCredential`` supplies them (``az login``, managed
identity, workload identity, ``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET``); a
storage connection string may be *named* through an environment variable
(``connection_string = "env:MY_STORAGE_CONNECTION"``), never written in ``mldock.toml``.

A minimal Azure ML block::

    [deploy.azureml]
    subscription_id = "00000000-0000-0000-0000-000000000000"
    resource_group = "ml-rg"
    workspace = "ml-ws"
    compute = "cpu-cluster"
"""

from __future__ import annotations

import re

from mldock.config.plugin_config import EndpointUrl, EnvSecret, PluginConfig
from pydantic import Field, field_validator, model_validator

MB = 1 << 20
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
ACCOUNT = r"^[a-z0-9]{3,24}$"
RESOURCE_GROUP = r"^[-\w._()]{1,90}$"
WORKSPACE = r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$"
COMPUTE = r"^[a-zA-Z][a-zA-Z0-9-]{1,31}$"
INSTANCE_TYPE = r"^[A-Za-z0-9_]+$"
REGISTRY = r"^[a-zA-Z0-9]{5,50}$"
REGISTRY_HOST = r"^[A-Za-z0-9.-]+(:\d{1,5})?$"
MAX_TAGS = 40  # Azure's 50 tags per resource, less the tags mldock adds itself
MAX_JOB_SECONDS = 30 * 24 * 3600


class BlobOptions(PluginConfig):
    """Options of the ``azblob`` artifact store (``[storage.azblob]`` in ``mldock.toml``).

    URIs are ``az://<container>/<prefix>``; the storage account comes from ``account``, or from
    the URI written as ``az://<account>/<container>/<prefix>`` when ``account_in_uri`` is set.

    Attributes:
        account: the storage account name (``https://<account>.blob.core.windows.net``).
        account_in_uri: read the account from the URI's first segment instead.
        account_url: the Blob endpoint (Azurite, sovereign clouds, private endpoints); default
            ``https://<account>.blob.core.windows.net``.
        connection_string: ``"env:NAME"`` of a variable holding a connection string (Azurite,
            SAS-only setups); unset means ``DefaultAzureCredential``.
        max_concurrency: parallel requests per transfer (blocks of a big file, or small files).
        block_mb: files from this size up are sent as blocks of this size and fetched in ranges.
    """

    account: str | None = Field(default=None, pattern=ACCOUNT)
    account_in_uri: bool = False
    account_url: EndpointUrl | None = None
    connection_string: EnvSecret | None = None
    max_concurrency: int = Field(default=8, ge=1, le=64)
    block_mb: int = Field(default=8, ge=1, le=4000)

    @property
    def block_size(self) -> int:
        """Bytes per block."""
        return self.block_mb * MB


class AzureMLOptions(PluginConfig):
    """Options of the ``azureml`` deployer (``[deploy.azureml]`` in ``mldock.toml``).

    Attributes:
        subscription_id, resource_group, workspace: the Azure ML workspace (required).
        compute: the compute cluster training and batch jobs run on; unset means serverless
            compute with ``instance_type``.
        instance_type, instance_count: training VMs (serverless) and how many nodes; a count
            above 1 is a distributed job.
        distribution: ``"pytorch"`` or ``"mpi"`` for multi-node jobs (how Azure ML starts the
            processes and tells each its rank); ``"none"`` is for one node only (without ranks
            every node would take itself for the primary and write the shared model folder).
        processes_per_node: processes per node for ``distribution``.
        low_priority: low-priority (spot) VMs for serverless training: cheaper, may be evicted.
        timeout_s: a training job is cancelled after this long.
        serve_instance_type, serve_instance_count: the online deployment's VMs.
        tags: extra tags for every job, model, endpoint and deployment mldock creates.
        environment: extra environment variables for jobs and deployments.
        registry: the Azure Container Registry name (``<name>.azurecr.io``); default: the
            workspace's own registry.
        registry_host: push to this host instead of ``<registry>.azurecr.io`` (tests with a local
            registry, mirrors); the exchanged ACR token is still the password.
        registry_admin_user: push with the registry's admin user (password read from the
            variable named by ``registry_admin_password``) instead of the Entra ID exchange.
        registry_admin_password: ``"env:NAME"`` of the admin password.
        cloud: the Azure cloud (``AzureCloud``, ``AzureChinaCloud``, ``AzureUSGovernment``, or a
            custom cloud's name from ``ARM_CLOUD_METADATA_URL``).
        deploy_timeout_s: how long ``mldock deploy`` waits for a deployment to be healthy.
    """

    subscription_id: str = Field(pattern=UUID)
    resource_group: str = Field(pattern=RESOURCE_GROUP)
    workspace: str = Field(pattern=WORKSPACE)
    compute: str | None = Field(default=None, pattern=COMPUTE)
    instance_type: str = Field(default="Standard_DS3_v2", pattern=INSTANCE_TYPE)
    instance_count: int = Field(default=1, ge=1, le=100)
    distribution: str = Field(default="none", pattern=r"^(none|pytorch|mpi)$")
    processes_per_node: int = Field(default=1, ge=1, le=64)
    low_priority: bool = False
    timeout_s: int = Field(default=24 * 3600, ge=60, le=MAX_JOB_SECONDS)
    serve_instance_type: str = Field(default="Standard_DS3_v2", pattern=INSTANCE_TYPE)
    serve_instance_count: int = Field(default=1, ge=1, le=100)
    tags: dict[str, str] = Field(default_factory=dict)
    environment: dict[str, str] = Field(default_factory=dict)
    registry: str | None = Field(default=None, pattern=REGISTRY)
    registry_host: str | None = Field(default=None, pattern=REGISTRY_HOST)
    registry_admin_user: str | None = None
    registry_admin_password: EnvSecret | None = None
    cloud: str = "AzureCloud"
    deploy_timeout_s: int = Field(default=3600, ge=60, le=6 * 3600)

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_TAGS:
            raise ValueError(f"at most {MAX_TAGS} tags (Azure allows 50; mldock adds its own)")
        for key in tags:
            if key.startswith("mldock"):
                raise ValueError(f"tag {key!r}: names starting with 'mldock' are mldock's")
            if re.search(r"[<>%&\\?/]", key) or len(key) > 512:
                raise ValueError(f"tag name {key!r}: at most 512 characters, none of < > % & \\"
                                 " ? /")
        return tags

    @model_validator(mode="after")
    def _check_pairs(self) -> AzureMLOptions:
        if (self.registry_admin_user is None) != (self.registry_admin_password is None):
            raise ValueError("registry_admin_user and registry_admin_password go together: give"
                             " both or neither (neither uses the Entra ID token exchange)")
        if self.instance_count > 1 and self.distribution == "none":
            raise ValueError(f"instance_count = {self.instance_count} needs distribution ="
                             ' "pytorch" (or "mpi" when the image has MPI): it is how each node'
                             " learns its rank")
        if self.low_priority and self.compute:
            raise ValueError("low_priority applies to serverless compute; a cluster's priority is"
                             " set on the cluster itself: drop compute or low_priority")
        return self


class AzureMLTuneOptions(PluginConfig):
    """The Azure ML-only keys of ``[tune.azureml]`` (the common keys are core's).

    Attributes:
        policy: which early termination policy stops trials when ``early_stopping`` is on:
            ``"median"`` (default), ``"bandit"`` (slack from the best) or ``"truncation"`` (the
            worst percentage at each interval).
        evaluation_interval: how often (in objective reports) the policy looks.
        delay_evaluation: reports to wait before the policy first looks.
        slack_factor, slack_amount: the bandit policy's allowed distance from the best trial,
            as a ratio or an absolute value (give one).
        truncation_percentage: the truncation policy's share of trials stopped (1-99).
        timeout_s: the whole sweep is cancelled after this long; unset: no limit but the trials'.
    """

    policy: str = Field(default="median", pattern=r"^(median|bandit|truncation)$")
    evaluation_interval: int = Field(default=1, ge=1)
    delay_evaluation: int = Field(default=0, ge=0)
    slack_factor: float | None = Field(default=None, gt=0)
    slack_amount: float | None = Field(default=None, gt=0)
    truncation_percentage: int = Field(default=10, ge=1, le=99)
    timeout_s: int | None = Field(default=None, ge=60, le=MAX_JOB_SECONDS)

    @model_validator(mode="after")
    def _check_policy(self) -> AzureMLTuneOptions:
        if self.policy == "bandit" and (self.slack_factor is None) == (self.slack_amount is None):
            raise ValueError("the bandit policy needs slack_factor or slack_amount (one of them)")
        if self.policy != "bandit" and (self.slack_factor or self.slack_amount):
            raise ValueError("slack_factor and slack_amount belong to policy = 'bandit'")
        return self
