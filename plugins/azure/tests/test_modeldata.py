"""Model registration against the local fake with the real azure-ai-ml client: one version per
run, registered once, read back; the refusals are one line each.

Not checked here: a *local* model folder, which azure-ai-ml uploads to the workspace's default
datastore at ``https://<account>.blob.<cloud storage suffix>`` before registering it. The fake's
datastore is Azurite, which no such host name reaches on this machine (no local DNS), so the
SDK's upload fails after its retries (about two minutes); the failure is one line naming the
host (seen by hand). The serving and batch tests register models from datastore paths.
"""

from __future__ import annotations

import uuid

import pytest
from mldock.errors import MldockError, UsageError
from mldock_azure.clients import AzureIdentity
from mldock_azure.config import AzureMLOptions
from mldock_azure.modeldata import RegisteredModel, parse_reference, registered_model
from mldock_azure.names import TAG_PROJECT, TAG_ROLE, TAG_RUN
from mldock_azure.workspace import AzureMLClients

PROJECT = f"azmodel-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clients(azureml_fake, azureml_env):
    options = AzureMLOptions(subscription_id=azureml_fake.subscription_id,
                             resource_group=azureml_fake.resource_group,
                             workspace=azureml_fake.workspace, cloud=azureml_fake.cloud)
    return AzureMLClients(options, identity=AzureIdentity(azureml_fake.credential()))


def test_a_job_output_is_registered_once_per_run(clients, ml_client):
    run_id = uuid.uuid4().hex[:14]
    uri = f"azureml://jobs/{PROJECT}-{run_id}/outputs/model"
    lines: list[str] = []
    first = registered_model(clients, model_uri=uri, model_dir=None, run_id=run_id,
                             project=PROJECT, tags={"team": "ml"}, progress=lines.append)
    assert (first.name, first.version) == (PROJECT, run_id)
    assert first.reference == f"azureml:{PROJECT}:{run_id}"
    model = ml_client.models.get(PROJECT, run_id)
    assert model.type == "custom_model" and model.path.rstrip("/").endswith(
        f"jobs/{PROJECT}-{run_id}/outputs/model")
    assert {k: model.tags[k] for k in (TAG_PROJECT, TAG_ROLE, TAG_RUN, "team")} == {
        TAG_PROJECT: PROJECT, TAG_ROLE: "model", TAG_RUN: run_id, "team": "ml"}
    again = registered_model(clients, model_uri=uri, model_dir=None, run_id=run_id,
                             project=PROJECT, progress=lines.append)
    assert again.reference == first.reference
    assert lines == [f"registering model {PROJECT}:{run_id} from the job's output",
                     f"model {PROJECT}:{run_id} is registered already"]
    versions = [m.version for m in ml_client.models.list(name=PROJECT)]
    assert versions.count(run_id) == 1


def test_references_and_refusals(clients, tmp_path):
    assert registered_model(clients, model_uri="azureml:iris:7", model_dir=None, run_id="r",
                            project=PROJECT) == RegisteredModel("iris", "7")
    assert parse_reference("azureml://jobs/x/outputs/model") is None
    with pytest.raises(UsageError, match="azureml:<name>:<version>"):
        parse_reference("azureml:iris")
    with pytest.raises(UsageError, match="neither an Azure ML job output nor a local folder"):
        registered_model(clients, model_uri="az://models/proj/runs/r1/model", model_dir=None,
                         run_id="r1", project=PROJECT)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(MldockError, match="holds no trained model") as caught:
        registered_model(clients, model_uri="az://x/y", model_dir=str(empty), run_id="r1",
                         project=PROJECT)
    assert caught.value.exit_code == 4


def test_a_version_of_another_run_is_not_taken(clients, ml_client):
    from azure.ai.ml.entities import Model

    run_id = uuid.uuid4().hex[:14]
    ml_client.models.create_or_update(Model(
        name=PROJECT, version=run_id, type="custom_model", tags={TAG_RUN: "someone-else"},
        path="azureml://datastores/workspaceblobstore/paths/elsewhere/"))
    with pytest.raises(MldockError, match=f"belongs to run someone-else, not {run_id}"):
        registered_model(clients, model_uri="azureml://jobs/j/outputs/model", model_dir=None,
                         run_id=run_id, project=PROJECT)

