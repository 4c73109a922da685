"""``mldock batch`` on Azure ML, against the local fake with the real azure-ai-ml client: the
command job read back, run for real on the engine (the minimal template's image, built by the
real CLI) over blob data in Azurite, and its predictions read back from Azurite.

What the fake cannot check: Azure's scheduling and mounts (it downloads inputs and uploads the
output folder when the job ends), and the datastore credentials a real job would use.
"""

from __future__ import annotations

import uuid

import pytest
from azure_images import DATASTORE, build_minimal, engine, remove_image, upload_model
from mldock.errors import UsageError
from mldock.interfaces import BatchRequest
from mldock_azure.batch import BatchRunner
from mldock_azure.clients import AzureIdentity
from mldock_azure.config import AzureMLOptions
from mldock_azure.modeldata import registered_model
from mldock_azure.names import TAG_PROJECT, TAG_ROLE, TAG_RUN
from mldock_azure.workspace import AzureMLClients

PROJECT = f"azbatch-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The minimal template rendered and built once by the real CLI; its tags removed after."""
    client = engine()
    image = build_minimal(tmp_path_factory.mktemp("azure-batch"), PROJECT)
    try:
        yield image
    finally:
        remove_image(client, image)
        client.close()


@pytest.fixture
def options(azureml_fake):
    return AzureMLOptions(subscription_id=azureml_fake.subscription_id,
                          resource_group=azureml_fake.resource_group,
                          workspace=azureml_fake.workspace, compute=azureml_fake.compute,
                          cloud=azureml_fake.cloud, tags={"team": "ml"},
                          environment={"MLDOCK_LOAD_FAILURE_GRACE": "0"})


@pytest.fixture
def clients(options, azureml_env, azureml_fake):
    return AzureMLClients(options, identity=AzureIdentity(azureml_fake.credential()))


@pytest.fixture
def workspace_container(azureml_fake, ml_client):
    """The default datastore's container in Azurite, as a blob ContainerClient."""
    name = ml_client.datastores.get(DATASTORE).container_name
    return azureml_fake.blob.service().get_container_client(name)


def upload(container, prefix: str, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        container.upload_blob(f"{prefix}/{name}", data, overwrite=True)


@pytest.fixture
def model(built, clients, workspace_container, tmp_path):
    """A trained minimal model (y = 2x + 1) in the datastore, registered by modeldata."""
    path = upload_model(workspace_container, built, tmp_path / "model", slope=2.0, intercept=1.0)
    run_id = uuid.uuid4().hex[:14]
    return registered_model(clients, model_uri=path, model_dir=None, run_id=run_id,
                            project=PROJECT), run_id


@pytest.mark.docker
def test_csv_batch_job_runs_the_image_and_writes_predictions(built, model, clients, options,
                                                             ml_client, workspace_container):
    (registered, run_id), tag = model, built.tag
    data = f"batch/{uuid.uuid4().hex[:10]}"
    upload(workspace_container, f"{data}/in", {"a.csv": b"x\n1\n2\n", "b/c.csv": b"10\n"})
    container = workspace_container.container_name
    request = BatchRequest(run_id=run_id, image=tag, model_uri="unused",
                           input_uri=f"az://{container}/{data}/in",
                           output_uri=f"az://{container}/{data}/out", content_type="text/csv")
    lines: list[str] = []
    result = BatchRunner(clients, options, project=PROJECT, poll_s=0.5).run(
        request, image=tag, model=registered, progress=lines.append)
    assert (result.status, result.output_uri, result.failure_reason) == (
        "finished", request.output_uri, None)
    assert f"{result.job_id}: Completed" in lines

    job = ml_client.jobs.get(result.job_id)
    assert job.command.startswith("python3 -c ")
    assert job.compute == options.compute
    assert job.environment_variables["MLDOCK_RUN_ID"] == run_id
    assert {k: job.tags[k] for k in (TAG_PROJECT, TAG_ROLE, TAG_RUN, "team")} == {
        TAG_PROJECT: PROJECT, TAG_ROLE: "batch", TAG_RUN: run_id, "team": "ml"}
    assert job.inputs["model"].type == "custom_model"
    assert job.inputs["data"].path == f"azureml://datastores/{DATASTORE}/paths/{data}/in/"
    assert job.outputs["predictions"].path == (
        f"azureml://datastores/{DATASTORE}/paths/{data}/out/")
    environment = ml_client.environments.get(*job.environment.split(":")[-2:]) \
        if job.environment.startswith("azureml:") else None
    if environment is not None:
        assert environment.image == tag

    def read(name: str) -> list[str]:
        blob = workspace_container.download_blob(f"{data}/out/{name}").readall()
        return blob.decode().splitlines()

    assert read("a.csv.out") == ["3.0", "5.0"]  # the header row is the predictor's to skip
    assert read("b/c.csv.out") == ["21.0"]


@pytest.mark.docker
def test_a_refused_record_fails_the_job_with_a_reason(built, model, clients, options,
                                                      workspace_container):
    (registered, run_id), tag = model, built.tag
    data = f"batch/{uuid.uuid4().hex[:10]}"
    upload(workspace_container, f"{data}/in", {"bad.csv": b"1\nnot-a-number\n"})
    container = workspace_container.container_name
    request = BatchRequest(run_id=run_id, image=tag, model_uri="unused",
                           input_uri=f"az://{container}/{data}/in",
                           output_uri=f"az://{container}/{data}/out", content_type="text/csv")
    result = BatchRunner(clients, options, project=PROJECT, poll_s=0.5).run(
        request, image=tag, model=registered)
    assert result.status == "failed"
    assert f"az ml job stream -n {result.job_id}" in result.failure_reason


def test_locations_need_blob_storage_with_a_datastore(clients, options, ml_client):
    runner = BatchRunner(clients, options, project=PROJECT, poll_s=0.5)
    container = ml_client.datastores.get(DATASTORE).container_name
    assert runner.location(f"az://{container}/x/y", "--input") == (
        f"azureml://datastores/{DATASTORE}/paths/x/y/")
    assert runner.location("azureml://datastores/other/paths/z", "--output") == (
        "azureml://datastores/other/paths/z")
    with pytest.raises(UsageError, match=r"--input data/in.csv: Azure ML batch jobs read"):
        runner.location("data/in.csv", "--input")
    with pytest.raises(UsageError, match=r"has no datastore on container 'nowhere-x'"):
        runner.location("az://nowhere-x/out", "--output")
    resolved = BatchRunner(clients, options, project=PROJECT, poll_s=0.5,
                           resolve=lambda uri: "https://acct.blob.core.windows.net/nowhere-x/in")
    assert resolved.location("az://nowhere-x/in", "--input") == (
        "https://acct.blob.core.windows.net/nowhere-x/in")  # read over https, no datastore
    with pytest.raises(UsageError, match=r"of account 'acct'"):
        resolved.location(f"az://{container}/out", "--output")  # that container, another account
