"""Entry point ``azure`` (group ``mldock``): the ``azblob`` artifact store and the ``azureml``
deployer.

Imports only mldock and the standard library: this module is loaded by every ``mldock`` command,
``--help`` included, and ``azure.ai.ml`` alone costs ~1.3 s to import. The factories import the
implementations (and with them the Azure SDKs) only when a command needs them.
"""

from __future__ import annotations

from typing import Any

from mldock.markers import hookimpl
from mldock.records import DeployerRecord, FactoryContext, StorageRecord, TuningSupport

MLDOCK_PLUGIN_API = 1  # the mldock plugin API this module is built for

STORAGE_EXAMPLE = """\
# Artifacts in Azure Blob Storage. Needs: pip install mldock-azure
# Credentials: DefaultAzureCredential (az login, managed identity, environment).
[storage]
uri = "az://<container>/{project}"

[storage.azblob]
account = "<storage account>"
# connection_string = "env:MY_STORAGE_CONNECTION"   # a variable holding a connection string
"""
"""What ``mldock config example azblob`` prints."""

AZUREML_EXAMPLE = """\
# Azure Machine Learning. Needs the Azure plugin: pip install mldock-azure
# (command jobs, managed online endpoints, batch; ACR; the az:// artifact store)
# Fill in the <placeholders>, then run: mldock --env azure train / deploy
# Credentials come from DefaultAzureCredential (az login, managed identity), never this file.

[env.azure.deploy]
deployer = "azureml"

[env.azure.deploy.azureml]
subscription_id = "<subscription id>"
resource_group = "<resource group>"
workspace = "<workspace>"
compute = "<compute cluster>"               # unset: serverless with instance_type
serve_instance_type = "Standard_DS3_v2"     # online deployment VMs

[env.azure.storage]
uri = "az://<container>/{project}"

[env.azure.storage.azblob]
account = "<storage account>"
"""
"""``mldock config example azureml``; ``mldock init`` writes it, commented, as ``[env.azure]``."""

DEPLOYER_CAPABILITIES = frozenset({"training", "serving", "batch", "distributed", "spot",
                                   "registry", "tuning"})

TUNING = TuningSupport(
    strategies=frozenset({"bayesian", "random", "grid"}),
    early_stopping=frozenset({"none", "median"}), log_scale=True, steps=True,
    categorical_numbers=True, options_model="mldock_azure.config:AzureMLTuneOptions")
"""Azure ML sweep jobs (:mod:`mldock_azure.tuning`): random, grid and Bayesian sampling; median
stopping (or ``[tune.azureml] policy`` = bandit / truncation); no Hyperband. Bayesian sampling
searches no log scale and stops no trial early: :mod:`mldock_azure.tuning` names the key."""


def make_store(context: FactoryContext) -> Any:
    """Build the store for ``[storage] uri`` (or a data channel's ``az://`` URI)."""
    from mldock_azure.store import BlobArtifactStore

    return BlobArtifactStore(context.uri or "", context.options)


def make_deployer(context: FactoryContext) -> Any:
    """Build the Azure ML deployer from ``[deploy.azureml]`` and the project's config."""
    from mldock_azure.deployer import AzureMLDeployer

    return AzureMLDeployer.from_context(context)


@hookimpl
def mldock_storages() -> list[StorageRecord]:
    return [StorageRecord(
        name="azblob", summary="Azure Blob Storage: content-addressed, atomic", schemes=("az",),
        factory=make_store, config_model="mldock_azure.config:BlobOptions",
        capabilities=frozenset({"content-addressed", "atomic", "delete", "list"}),
        example=STORAGE_EXAMPLE)]


@hookimpl
def mldock_deployers() -> list[DeployerRecord]:
    return [DeployerRecord(
        name="azureml",
        summary="Azure Machine Learning: command jobs, managed online endpoints and batch;"
                " images pushed to ACR",
        factory=make_deployer, config_model="mldock_azure.config:AzureMLOptions",
        capabilities=DEPLOYER_CAPABILITIES, example=AZUREML_EXAMPLE, tuning=TUNING)]
