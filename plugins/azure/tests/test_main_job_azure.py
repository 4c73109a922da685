"""The whole path with the real CLI in a rendered project on ``--env azure``: ``mldock build``,
then ``push``, ``train`` (one node, and two with PyTorch's variables), ``deploy``, ``predict``
(JSON and CSV), ``deploy --list``, ``batch``, ``undeploy`` and ``doctor``, against the local
Azure ML fake (jobs and deployments run on the engine), artifacts in Azurite (``[storage] uri =
"az://…"``) and a local registry behind htpasswd standing in for ACR (``registry_host``; its
password is the refresh token the fake's Entra ID → ACR exchange hands out).

What the fake cannot check: Azure's VM provisioning, quotas, probe timings and mounts (it
downloads inputs and uploads outputs around the container), and a real ACR pull.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from azureml_fake import env_block
from mldock.testing.docker import require_docker
from mldock_azure.names import ACR_USER

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MLDOCK = str(Path(sys.executable).parent / "mldock")
PROJECT = f"aziris-{uuid.uuid4().hex[:8]}"  # this session's own images and endpoint
HIDDEN = ("AZURE_", "ARM_", "MSI_", "IDENTITY_", "AZUREML_", "MLDOCK_")


@pytest.fixture(scope="module")
def acr(azureml_fake, start_registry):
    """A registry accepting what the fake's ACR token exchange hands out."""
    return start_registry((ACR_USER, azureml_fake.acr_refresh_token))


@pytest.fixture(scope="module")
def cli_env(azureml_fake, tmp_path_factory) -> dict[str, str]:
    """The CLI's environment: no Azure or mldock variables of the developer's, the fake's
    metadata URL, CA bundle and managed identity, Azurite's connection string, an empty HOME."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(HIDDEN) or k == "MLDOCK_REQUIRE_DOCKER"}
    env.update(azureml_fake.credential_environment())
    env["AZURE_STORAGE_CONNECTION_STRING"] = azureml_fake.blob.azurite.connection_string
    env["HOME"] = str(tmp_path_factory.mktemp("home"))
    return env


@pytest.fixture(scope="module")
def mldock(cli_env):
    def run(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                              timeout=1200, env=cli_env, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"mldock {' '.join(args)} exited {done.returncode}\n"
                                 f"stdout:\n{done.stdout[-3000:]}\nstderr:\n"
                                 f"{done.stderr[-3000:]}")
        return done

    return run


@pytest.fixture(scope="module")
def project(azureml_fake, acr, mldock, tmp_path_factory):
    """The minimal template rendered and built once, with an ``azure`` and a two-node
    ``azure2`` environment; its image tags, local and pushed, are removed afterwards."""
    client = require_docker()
    root = tmp_path_factory.mktemp("azure-e2e")
    mldock("init", PROJECT, "--template", "minimal", "--no-input", cwd=root)
    folder = root / PROJECT
    container = azureml_fake.blob.create_container(f"e2e-{PROJECT}")  # the project's store
    blocks = (env_block(azureml_fake, env="azure", container=container, registry_host=acr.host)
              + env_block(azureml_fake, env="azure2", container=container,
                          registry_host=acr.host, instance_count=2, distribution="pytorch"))
    with open(folder / "mldock.toml", "a", encoding="utf-8") as toml:
        toml.write(blocks.replace("/{project}\"", f"/{PROJECT}\""))  # placeholders filled in
    try:
        mldock("build", cwd=folder)
        yield folder
    finally:
        for image in client.images.list():
            for tag in image.tags:
                if tag.rpartition(":")[0] in (PROJECT, f"{acr.host}/{PROJECT}"):
                    client.images.remove(tag, force=True, noprune=True)
        client.close()


def train(mldock, project: Path, env: str, ml_client) -> tuple[str, dict]:
    """``mldock --env ENV train``: the run finished, its lineage names the job and the pushed
    image; returns the run id and the run."""
    done = mldock("--env", env, "train", cwd=project)
    run_id = done.stdout.strip().splitlines()[-1]
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
    assert run["status"] == "finished", done.stderr[-2000:]
    lineage = run["lineage"]
    assert lineage["platform"] == "azureml"
    job = ml_client.jobs.get(lineage["job_id"])
    assert str(getattr(job.status, "value", job.status)) == "Completed"
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    assert model["uri"] == f"azureml://jobs/{lineage['job_id']}/outputs/model"
    return run_id, run


def test_push_goes_to_the_workspace_registry(project, acr, mldock):
    data = json.loads(mldock("--env", "azure", "push", "--json", cwd=project).stdout)
    tag = data["image"].split(":", 1)[1]
    assert data["reference"] == f"{acr.host}/{PROJECT}:{tag}"
    assert data["digest"] == acr.manifest_digest(PROJECT, tag)
    again = mldock("--env", "azure", "push", cwd=project)  # nothing to send the second time
    assert again.stdout.strip() == data["digest"]


def test_train_deploy_predict_batch_undeploy(project, acr, mldock, ml_client, azureml_fake):
    run_id, run = train(mldock, project, "azure", ml_client)
    digest = run["lineage"]["image_digest"]
    assert digest.startswith(f"{acr.host}/{PROJECT}@sha256:")
    try:
        deployed = mldock("--env", "azure", "deploy", "--run", run_id, cwd=project)
        endpoint = ml_client.online_endpoints.get(PROJECT)
        assert deployed.stdout.strip().splitlines()[-1] == endpoint.scoring_uri
        (live,) = ml_client.online_deployments.list(endpoint_name=PROJECT)
        assert endpoint.traffic == {live.name: 100}
        model = ml_client.models.get(PROJECT, run_id)  # registered from the job's output
        assert model.tags["mldock-run"] == run_id

        as_json = json.loads(mldock("--env", "azure", "predict", "--data", "sample.json",
                                    cwd=project).stdout)
        as_csv = json.loads(mldock("--env", "azure", "predict", "--data", "sample.csv",
                                   cwd=project).stdout)
        assert len(as_json["predictions"]) == 3 and as_csv == as_json["predictions"]
        listed = json.loads(mldock("--env", "azure", "deploy", "--list", "--json",
                                   cwd=project).stdout)
        assert [(d["name"], d["status"], d["run_id"]) for d in listed
                if d["name"] == PROJECT] == [(PROJECT, "ready", run_id)]

        # --- batch over blob data, on the workspace datastore's container in Azurite ------------
        container = ml_client.datastores.get("workspaceblobstore").container_name
        data = f"e2e/{uuid.uuid4().hex[:8]}"
        blobs = azureml_fake.blob.service().get_container_client(container)
        blobs.upload_blob(f"{data}/in/sample.csv", (project / "sample.csv").read_bytes())
        batch = mldock("--env", "azure", "batch", "--run", run_id,
                       "--input", f"az://{container}/{data}/in",
                       "--output", f"az://{container}/{data}/out", "--content-type", "text/csv",
                       "--json", cwd=project)
        result = json.loads(batch.stdout)
        assert result["status"] == "finished"
        out = blobs.download_blob(f"{data}/out/sample.csv.out").readall().decode()
        assert [float(line) for line in out.split()] == as_csv  # the online endpoint's answers
    finally:
        mldock("--env", "azure", "undeploy", cwd=project, check=False)
    listed = json.loads(mldock("--env", "azure", "deploy", "--list", "--json", cwd=project).stdout)
    assert PROJECT not in [d["name"] for d in listed]


def test_train_on_two_nodes(project, mldock, ml_client):
    _, run = train(mldock, project, "azure2", ml_client)
    job = ml_client.jobs.get(run["lineage"]["job_id"])
    assert job.resources.instance_count == 2
    assert type(job.distribution).__name__ == "PyTorchDistribution"


def test_doctor_reports_the_azure_checks(project, mldock):
    done = mldock("doctor", "--json", cwd=project, check=False)
    checks = {c["name"]: c for c in json.loads(done.stdout)}
    for name in ("Azure credentials", "Azure ML workspace", "Azure ML compute"):
        check = checks[f"deployer azureml (env azure): {name}"]
        assert check["ok"], check
