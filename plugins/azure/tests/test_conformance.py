"""mldock's contracts for this package: its registration, and the deployer contract on the fake.

The deployer is built by the ``azureml`` record's factory, as ``mldock`` builds it from
``[deploy.azureml]``; the one change made afterwards is its identity, which signs in with the
fake's tokens instead of ``DefaultAzureCredential`` (the CLI path, with the real credential
chain, is checked in test_doctor.py and the end-to-end test). The contract's echo image is pushed
the way every mldock command pushes: the deployer's registry target (ACR exchange against the
fake) and core's publish into a registry that accepts only the exchanged token. The fake runs
the training jobs and the online deployments as containers of that image, so the contract's
training and serving tests run for real.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import ClassVar

import pytest
from azureml_parts import options_for
from mldock.interfaces import DeployRequest, TrainingJob
from mldock.local.build import DockerBuilder
from mldock.publish import publish
from mldock.records import FactoryContext
from mldock.testing import DeployerContract, RegistrationContract, registered_record
from mldock_azure.clients import AzureIdentity
from mldock_azure.names import ACR_USER


class TestRegistration(RegistrationContract):
    entry_point_name = "azure"
    distribution = "mldock-azure"
    expected: ClassVar[dict[str, list[str]]] = {"deployer": ["azureml"], "storage": ["azblob"]}


def test_the_deployer_record_declares_what_it_does():
    """core pushes before a job only for deployers with ``registry``; ``mldock batch`` needs
    ``batch``; ``--instances`` needs ``distributed``; low priority is ``spot``."""
    record = registered_record("deployer", "azureml")
    assert record.capabilities == {"training", "serving", "batch", "distributed", "spot",
                                   "registry", "tuning"}
    assert record.tuning is not None and "hyperband" not in record.tuning.strategies
    assert record.load_config_model().__name__ == "AzureMLOptions"


@pytest.fixture(scope="module")
def contract_acr(start_registry, azureml_fake):
    return start_registry((ACR_USER, azureml_fake.acr_refresh_token))


class TestAzureMLDeployer(DeployerContract):
    backend_name = "azureml (fake ARM / Azure ML)"
    record = registered_record("deployer", "azureml")

    @pytest.fixture
    def deployer(self, azureml_fake, azureml_env, contract_acr, tmp_path):
        from mldock_azure.deployer import AzureMLDeployer

        options = options_for(azureml_fake, registry_host=contract_acr.host,
                              deploy_timeout_s=600)
        built = self.record.build(FactoryContext(options=options, project="contract",
                                                 project_dir=tmp_path, env="azure"))
        assert isinstance(built, AzureMLDeployer)
        built.clients.identity = AzureIdentity(azureml_fake.credential())
        built.training.poll_s = 0.2
        built.poll_s = 0.5  # endpoints and batch are built on first use with this
        self.azureml = built
        self.fake = azureml_fake
        return built

    def pushed(self, image: str) -> str:
        """``image`` pushed as the mldock commands push it before calling a deployer."""
        return publish(image, self.azureml.registry_target(image), DockerBuilder()).pinned

    def in_datastore(self, folder: str) -> str:
        """The contract's model folder copied into the workspace's default datastore (on
        Azurite): azure-ai-ml uploads a local folder to the datastore account's public
        ``*.blob.core.windows.net`` host, which the fake's Azurite cannot be; a model already in
        Azure storage is registered where it is."""
        prefix = f"contract-models/{uuid.uuid4().hex[:12]}"
        container = self.fake.blob.service().get_container_client(
            f"azureml-blobstore-{self.fake.workspace}")
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                container.upload_blob(f"{prefix}/{path.relative_to(folder).as_posix()}",
                                      path.read_bytes())
        return f"azureml://datastores/workspaceblobstore/paths/{prefix}"

    def deploy_request(self, name: str, image: str, model_uri: str) -> DeployRequest:
        return DeployRequest(name=name, image=self.pushed(image),
                             model_uri=self.in_datastore(model_uri), run_id="contract-run",
                             options={"project": "contract"})

    def training_job(self, image: str, output_dir: Path, environment: dict[str, str]
                     ) -> TrainingJob:
        job = super().training_job(image, output_dir, environment)
        return TrainingJob(run_id=job.run_id, image=self.pushed(image), environment=environment)
