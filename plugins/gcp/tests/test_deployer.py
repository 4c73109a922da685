"""The vertex deployer as a composition root: where things go, what it refuses before sending
anything, and how it hands work to its job modules."""

from __future__ import annotations

import pytest
from mldock.errors import ConfigError, MldockError
from mldock.interfaces import BatchRequest, DeployRequest, TrainingJob
from mldock.records import FactoryContext
from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.deployer import VertexDeployer


def deployer_for(storage_uri: str = "", **values) -> VertexDeployer:
    return VertexDeployer(VertexOptions(**values), project="iris", storage_uri=storage_uri)


def test_staging_is_the_bucket_else_the_storage_uri_else_an_error_naming_both():
    assert deployer_for("gs://s/iris", staging_bucket="gs://bkt/p/").staging == "gs://bkt/p"
    assert deployer_for("gs://s/iris/").staging == "gs://s/iris/vertex"
    with pytest.raises(ConfigError) as info:
        _ = deployer_for("file:///home/me/iris/.mldock/artifacts").staging
    error = info.value
    assert error.key == "deploy.vertex.staging_bucket" and error.exit_code == 2
    assert "file:///home/me/iris/.mldock/artifacts" in error.message
    assert "[storage] uri" in (error.hint or "") and "staging_bucket" in (error.hint or "")
    with pytest.raises(ConfigError, match="not set"):
        _ = deployer_for("").staging


def test_from_context_takes_the_projects_facts_and_sends_nothing(tmp_path):
    built = VertexDeployer.from_context(FactoryContext(
        options=VertexOptions(region="europe-west4"), project="iris", project_dir=tmp_path,
        storage_uri="gs://b/iris"))
    assert (built.project, built.storage_uri, built.options.region) == ("iris", "gs://b/iris",
                                                                         "europe-west4")
    assert isinstance(built.clients, VertexClients)
    assert built.clients._clients == {} and built.clients._session is None  # nothing built
    defaults = VertexDeployer.from_context(FactoryContext(project="iris", project_dir=tmp_path))
    assert defaults.options == VertexOptions()


def test_the_job_modules_share_the_clients_and_the_poll_interval():
    deployer = VertexDeployer(VertexOptions(), project="iris", poll_s=0.5)
    assert deployer.training.clients is deployer.clients and deployer.training.poll_s == 0.5
    assert deployer.endpoints.clients is deployer.clients and deployer.endpoints.poll_s == 0.5
    assert deployer.batches.clients is deployer.clients and deployer.batches.poll_s == 0.5
    slow = VertexDeployer(VertexOptions(), project="iris")
    assert (slow.training.poll_s, slow.endpoints.poll_s, slow.batches.poll_s) == (10.0, 15.0,
                                                                                   15.0)


@pytest.mark.parametrize("command", ["train", "deploy", "batch"])
def test_a_local_image_is_refused_before_any_request(command, vertex_fake):
    """core pushes first; a direct caller passing a local tag gets the fix, and Vertex is not
    called (the fake's journal stays as it was)."""
    deployer = deployer_for("gs://b/iris", project=vertex_fake.project,
                            api_endpoint=vertex_fake.url)
    before = len(vertex_fake.journal)
    call = {
        "train": lambda: deployer.train(TrainingJob(run_id="r1", image="iris:0123")),
        "deploy": lambda: deployer.deploy(DeployRequest(name="iris", image="iris:0123",
                                                        model_uri="/m", run_id="r1")),
        "batch": lambda: deployer.batch(BatchRequest(run_id="r1", image="iris:0123",
                                                     model_uri="/m", input_uri="gs://b/in",
                                                     output_uri="gs://b/out")),
    }[command]
    with pytest.raises(MldockError) as info:
        call()
    assert "Vertex AI cannot pull iris:0123" in info.value.message
    assert len(vertex_fake.journal) == before


def test_a_model_trained_on_vertex_is_served_from_where_the_job_wrote_it(vertex_fake):
    """No copy: the job's AIP_MODEL_DIR folder is already a gs:// folder Vertex can read."""
    deployer = deployer_for("gs://b/iris", project=vertex_fake.project,
                            api_endpoint=vertex_fake.url)
    uri = "gs://b/iris/vertex/jobs/iris-r1/model"
    assert deployer._artifact_uri(uri, {}, "r1", lambda line: None) == uri
