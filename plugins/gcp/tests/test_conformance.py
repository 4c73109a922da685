"""mldock's contracts for this package: registration, and the deployer contract on the Vertex
fake, with the deployer built through the ``vertex`` record mldock registers.

The contract's echo image is pushed the way every mldock command pushes it (core's
:func:`mldock.publish.publish` to the deployer's :meth:`registry_target`: Artifact Registry's
repository on the fake, the access token from the fake's token endpoint, the registry an htpasswd
docker-registry on 127.0.0.1); the fake pulls ``repo@sha256:…`` and runs it. The contract's model
folder is staged to ``gs://`` on the GCS emulator, as for any locally trained run. The record's
capabilities give the contract's flags. (The storage contract of ``gcs`` is the store's, in its
own module.)
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from mldock.interfaces import Deployer, DeployRequest, TrainingJob
from mldock.records import FactoryContext
from mldock.testing import (
    DeployerContract,
    RegistrationContract,
    expected_failure,
    registered_record,
)
from mldock_gcp.config import VertexOptions


class TestRegistration(RegistrationContract):
    entry_point_name = "gcp"
    distribution = "mldock-gcp"
    expected: ClassVar[dict[str, list[str]]] = {"deployer": ["vertex"], "storage": ["gcs"]}


def test_capabilities_are_declared_honestly():
    """core pushes before jobs only for deployers with ``registry``; ``mldock batch`` needs
    ``batch``; several replicas need ``distributed``; ``spot`` is scheduling.strategy SPOT."""
    from mldock_gcp.plugin import mldock_deployers

    (record,) = mldock_deployers()
    assert record.name == "vertex"
    assert record.capabilities == {"training", "serving", "batch", "distributed", "spot",
                                   "registry", "tuning"}
    assert record.tuning is not None and "hyperband" not in record.tuning.strategies
    assert record.load_config_model() is VertexOptions


def test_the_factory_needs_no_credentials_and_names_the_staging_keys(tmp_path):
    """Building the deployer sends nothing; a staging location is asked for only when used."""
    from mldock.errors import MldockError

    record = registered_record("deployer", "vertex")
    built = record.build(FactoryContext(options=VertexOptions(), project="p",
                                        project_dir=tmp_path, storage_uri="file:///x"))
    with pytest.raises(MldockError) as info:
        _ = built.staging
    text = f"{info.value.message} {info.value.hint}"
    assert "deploy.vertex.staging_bucket" in text and "[storage] uri" in text
    from_storage = record.build(FactoryContext(options=None, project="p", project_dir=tmp_path,
                                               storage_uri="gs://b/p/"))
    assert from_storage.staging == "gs://b/p/vertex"
    assert from_storage.options == VertexOptions()


@pytest.fixture(scope="module")
def contract_bucket(make_gcs_bucket):
    return make_gcs_bucket("mldock-gcp-contract")


class TestVertexDeployer(DeployerContract):
    backend_name = "vertex (local fake)"
    record = registered_record("deployer", "vertex")

    @pytest.fixture
    def deployer(self, vertex_fake, gcp_service_account, gcp_registry, contract_bucket,
                 gcs_emulator, docker_engine, monkeypatch, tmp_path):
        """Built by the record's factory, as ``mldock deploy`` builds it from
        ``[deploy.vertex]`` and the project's facts; polls every 0.2 s."""
        from mldock_gcp.deployer import VertexDeployer

        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account.path))
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
        options = VertexOptions(project=vertex_fake.project, api_endpoint=vertex_fake.url,
                                registry_host=gcp_registry.host, deploy_timeout_s=300)
        built = self.record.build(FactoryContext(options=options, project="contract",
                                                 project_dir=tmp_path,
                                                 storage_uri=f"gs://{contract_bucket}/p"))
        assert isinstance(built, VertexDeployer)
        built.poll_s = 0.2
        built.training.poll_s = 0.2
        self.vertex = built
        self.engine = docker_engine
        return built

    def pushed(self, image: str) -> str:
        """``image`` pushed as the mldock commands push it before calling a deployer."""
        from mldock.local.build import DockerBuilder
        from mldock.publish import publish

        return publish(image, self.vertex.registry_target(image), DockerBuilder()).pinned

    def deploy_request(self, name: str, image: str, model_uri: str) -> DeployRequest:
        return DeployRequest(name=name, image=self.pushed(image), model_uri=model_uri,
                             run_id="contract-run")

    def training_job(self, image: str, output_dir: Path, environment: dict[str, str]
                     ) -> TrainingJob:
        job = super().training_job(image, output_dir, environment)
        return TrainingJob(run_id=job.run_id, image=self.pushed(image), environment=environment)

    @expected_failure("Vertex AI's :predict requires the container to answer"
                      ' {"predictions": [...]} and refuses the contract echo image\'s'
                      ' {"echo": ...} (HTTP 500), as the service does; the instances round trip'
                      " with a real mldock image is checked in test_serving.py",
                      raises=AssertionError)
    def test_predict_roundtrip(self, deployer: Deployer, endpoint: str, serving_image: str,
                               model_uri: str) -> None:
        super().test_predict_roundtrip(deployer, endpoint, serving_image, model_uri)
