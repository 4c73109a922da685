"""The deployer as a composition root: built from the project's facts, refusing what Azure ML
cannot run, and the whole path a user takes — a job trains on the fake, its ``model`` output is
registered where it is, and the real mldock image serves it from a managed online endpoint."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from azureml_parts import build_deployer, build_training_image
from mldock.errors import ConfigError, MldockError, NotFoundError
from mldock.interfaces import BatchRequest, DeployRequest, TrainingJob
from mldock.local.build import DockerBuilder
from mldock.publish import publish
from mldock.records import FactoryContext
from mldock.testing import registered_record
from mldock.testing.docker import require_docker, require_image
from mldock_azure.deployer import AzureMLDeployer
from mldock_azure.names import ACR_USER


def test_the_factory_needs_the_workspace_block(tmp_path):
    record = registered_record("deployer", "azureml")
    with pytest.raises(ConfigError) as info:
        record.build(FactoryContext(options=None, project="iris", project_dir=tmp_path))
    assert "deploy.azureml.subscription_id" in str(info.value)


def test_the_factory_passes_the_project_and_its_store(azureml_fake, tmp_path):
    opened: list[str] = []
    options = build_deployer(azureml_fake).options
    built = registered_record("deployer", "azureml").build(FactoryContext(
        options=options, project="iris", project_dir=tmp_path,
        open_store=opened.append))
    assert isinstance(built, AzureMLDeployer) and built.project == "iris"
    with pytest.raises(MldockError, match="no Azure Blob store to resolve it with"):
        built._blob_url("az://data/iris")
    assert opened == ["az://data/iris"]


@pytest.mark.parametrize("image", ["iris:0123abcd", "ghcr.io/me/iris:1"])
def test_a_local_or_foreign_image_is_refused_by_every_command(azureml_fake, image):
    """The push path is core's: handed an image Azure ML cannot pull, every command refuses in
    one line before any request (no workspace, no Docker engine needed to say so)."""
    deployer = build_deployer(azureml_fake)
    before = len(azureml_fake.requests)
    calls = (lambda: deployer.deploy(DeployRequest(name="ep-x", image=image, run_id="r",
                                                   model_uri="azureml:iris:1")),
             lambda: deployer.batch(BatchRequest(run_id="r", image=image,
                                                 model_uri="azureml:iris:1",
                                                 input_uri="az://in/x", output_uri="az://out/x")),
             lambda: deployer.train(TrainingJob(run_id="r", image=image)))
    for call in calls:
        with pytest.raises(MldockError) as info:
            call()
        assert info.value.message == (f"Azure ML cannot pull {image}: it is not in an Azure"
                                      " Container Registry")
        assert "mldock --env ENV push" in (info.value.hint or "")
    assert len(azureml_fake.requests) == before


# --- train on Azure ML, then serve that model -----------------------------------------------------


@pytest.fixture(scope="module")
def served_image(tmp_path_factory) -> Iterator[str]:
    engine = require_docker()
    require_image(engine, "python:3.11-slim")
    tag = build_training_image(tmp_path_factory.mktemp("serving-project"))
    yield tag
    for image in engine.images.list(name=tag.split(":")[0]):
        engine.images.remove(image.id, force=True)
    engine.close()


@pytest.mark.docker
def test_a_model_trained_on_azure_ml_is_served_by_the_same_image(
        azureml_fake, azureml_env, ml_client, start_registry, served_image):
    acr = start_registry((ACR_USER, azureml_fake.acr_refresh_token))
    deployer = build_deployer(azureml_fake, registry_host=acr.host, poll_s=0.5,
                              deploy_timeout_s=600)
    pinned = publish(served_image, deployer.registry_target(served_image), DockerBuilder()).pinned
    run = uuid.uuid4().hex[:14]
    trained = deployer.train(TrainingJob(run_id=run, image=pinned))
    assert trained.status == "finished", trained
    name = f"az-{uuid.uuid4().hex[:8]}"
    try:
        lines: list[str] = []
        deployment = deployer.deploy(DeployRequest(name=name, image=pinned, run_id=run,
                                                   model_uri=str(trained.model_uri)),
                                     progress=lines.append)
        assert deployment.name == name and deployment.run_id == run, lines
        answer = deployer.predict(name, json.dumps([[1.0], [2.5]]).encode())
        assert answer.status == 200 and json.loads(answer.body) == [3.0, 6.0], answer
        assert name in [d.name for d in deployer.list()]
        (model,) = [m for m in ml_client.models.list(name="proj") if m.version == run]
        assert model.path.rstrip("/").endswith(f"jobs/{trained.job_id}/outputs/model")
    finally:
        deployer.undeploy(name)
    with pytest.raises(NotFoundError):
        deployer.get(name)
