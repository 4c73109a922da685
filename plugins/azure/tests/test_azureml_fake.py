"""The fake itself, driven by the real azure-ai-ml client."""

from __future__ import annotations


def test_workspace_get(ml_client, azureml_fake):
    workspace = ml_client.workspaces.get(azureml_fake.workspace)
    assert workspace.name == azureml_fake.workspace
    assert workspace.container_registry.endswith("/registries/mldockfakeacr")
    assert workspace.discovery_url == f"{azureml_fake.url}/discovery"


import uuid

import pytest
from mldock.testing.docker import require_docker, require_image

IMAGE = "python:3.11-slim"


@pytest.fixture
def engine():
    client = require_docker()
    require_image(client, IMAGE)
    yield client
    client.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.mark.docker
def test_command_job_runs_to_completed(ml_client, azureml_fake, engine, capsys):
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import Environment

    name = unique("job")
    container = f"azureml-blobstore-{azureml_fake.workspace}"
    azureml_fake.blob.service().get_container_client(container).upload_blob(
        f"data/{name}/x.txt", b"41")
    job = command(
        name=name, command="python -c \"import os,sys; n=int(open('${{inputs.data}}/x.txt').read());"
        " open('${{outputs.model}}/y.txt','w').write(str(n+1)); print('rank', os.environ['RANK'])\"",
        environment=Environment(image=IMAGE), compute=azureml_fake.compute,
        inputs={"data": Input(type="uri_folder",
                              path=f"azureml://datastores/workspaceblobstore/paths/data/{name}")},
        outputs={"model": Output(type="uri_folder")}, instance_count=2,
        distribution={"type": "pytorch", "process_count_per_instance": 1})
    created = ml_client.jobs.create_or_update(job)
    assert created.name == name
    ml_client.jobs.stream(name)
    assert "rank 0" in capsys.readouterr().out  # rank 0's log, streamed from run history
    done = ml_client.jobs.get(name)
    assert done.status == "Completed"
    blob = azureml_fake.blob.service().get_container_client(container).download_blob(
        f"azureml/{name}/model/y.txt").readall()
    assert blob == b"42"
