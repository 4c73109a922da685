"""Entry point ``gcp`` (group ``mldock``): the ``gcs`` artifact store and the ``vertex`` deployer.

Imports only mldock and the standard library: this module is loaded by every ``mldock`` command,
``--help`` included, and ``google.cloud.aiplatform`` alone costs ~2 s to import. The factories
import the implementations (and with them the Google SDKs) only when a command needs them.
"""

from __future__ import annotations

from typing import Any

from mldock.markers import hookimpl
from mldock.records import DeployerRecord, FactoryContext, StorageRecord, TuningSupport

MLDOCK_PLUGIN_API = 1  # the mldock plugin API this module is built for

STORAGE_EXAMPLE = """\
# Artifacts in Google Cloud Storage. Needs: pip install mldock-gcp
# Credentials: Application Default Credentials (gcloud auth application-default login).
[storage]
uri = "gs://<bucket>/{project}"

[storage.gcs]
# project = "<billing project>"            # requester-pays buckets
# credentials_file = "env:MY_SA_KEY_PATH"  # a variable naming a service-account key file
"""
"""What ``mldock config example gcs`` prints."""

VERTEX_EXAMPLE = """\
# Google Cloud Vertex AI. Needs the GCP plugin: pip install mldock-gcp
# (custom jobs, endpoints and batch prediction; Artifact Registry; the gs:// artifact store)
# Fill in the <placeholders>, then run: mldock --env gcp train / deploy
# Credentials come from Application Default Credentials, never from this file.

[env.gcp.deploy]
deployer = "vertex"

[env.gcp.deploy.vertex]
project = "<project-id>"
region = "us-central1"
machine_type = "n1-standard-4"          # training replicas
serve_machine_type = "n1-standard-2"    # endpoint and batch machines
# service_account = "<name>@<project-id>.iam.gserviceaccount.com"

[env.gcp.storage]
uri = "gs://<bucket>/{project}"
"""
"""``mldock config example vertex``; ``mldock init`` writes it, commented, as ``[env.gcp]``."""

DEPLOYER_CAPABILITIES = frozenset({"training", "serving", "batch", "distributed", "spot",
                                   "registry", "tuning"})

TUNING = TuningSupport(
    strategies=frozenset({"bayesian", "random", "grid"}),
    early_stopping=frozenset({"none", "median"}), log_scale=True, steps=True,
    categorical_numbers=True, options_model="mldock_gcp.config:VertexTuneOptions")
"""Vertex AI's tuner, Vizier (:mod:`mldock_gcp.tuning`): Bayesian (its default), random and
grid search; median early stopping; stepped ranges and numeric categoricals as discrete values;
no Hyperband."""


def make_store(context: FactoryContext) -> Any:
    """Build the store for ``[storage] uri`` (or a data channel's ``gs://`` URI)."""
    from mldock_gcp.store import GcsArtifactStore

    return GcsArtifactStore(context.uri or "", context.options)


def make_deployer(context: FactoryContext) -> Any:
    """Build the Vertex AI deployer from ``[deploy.vertex]`` and the project's config."""
    from mldock_gcp.deployer import VertexDeployer

    return VertexDeployer.from_context(context)


@hookimpl
def mldock_storages() -> list[StorageRecord]:
    return [StorageRecord(
        name="gcs", summary="Google Cloud Storage: content-addressed, atomic", schemes=("gs",),
        factory=make_store, config_model="mldock_gcp.config:GcsOptions",
        capabilities=frozenset({"content-addressed", "atomic", "delete", "list"}),
        example=STORAGE_EXAMPLE)]


@hookimpl
def mldock_deployers() -> list[DeployerRecord]:
    return [DeployerRecord(
        name="vertex",
        summary="Google Cloud Vertex AI: custom jobs, endpoints and batch prediction; images"
                " pushed to Artifact Registry",
        factory=make_deployer, config_model="mldock_gcp.config:VertexOptions",
        capabilities=DEPLOYER_CAPABILITIES, example=VERTEX_EXAMPLE, tuning=TUNING)]
