"""Managed online endpoints against the local fake with the real azure-ai-ml client: the minimal
template's image (built by the real CLI) served as a custom container on the engine, every
created resource read back, then deploy → predict (JSON and CSV) → blue/green update → a failed
update that leaves the old deployment serving → undeploy.

What the fake cannot check: Azure's VM provisioning and quota, its probe timings (it declares a
deployment healthy once the readiness route answers), and the gateway's own limits.
"""

from __future__ import annotations

import json
import uuid

import pytest
from azure_images import build_minimal, engine, remove_image, upload_model
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import DeployRequest
from mldock_azure.clients import AzureIdentity
from mldock_azure.config import AzureMLOptions
from mldock_azure.modeldata import registered_model
from mldock_azure.names import TAG_ENDPOINT, TAG_PROJECT, TAG_ROLE, TAG_RUN
from mldock_azure.serving import Endpoints, inference_config
from mldock_azure.workspace import AzureMLClients

PROJECT = f"azserve-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    client = engine()
    image = build_minimal(tmp_path_factory.mktemp("azure-serving"), PROJECT)
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
                          serve_instance_type="Standard_F2s_v2", serve_instance_count=2,
                          environment={"MLDOCK_LOAD_FAILURE_GRACE": "0"}, deploy_timeout_s=300)


@pytest.fixture
def endpoints(options, azureml_env, azureml_fake):
    clients = AzureMLClients(options, identity=AzureIdentity(azureml_fake.credential()))
    return Endpoints(clients, options, project=PROJECT, poll_s=0.2)


@pytest.fixture
def models(built, endpoints, ml_client, azureml_fake, tmp_path):
    """``models(slope, intercept, broken=False)``: a model uploaded and registered (one run)."""
    container = azureml_fake.blob.service().get_container_client(
        ml_client.datastores.get("workspaceblobstore").container_name)

    def make(slope: float, intercept: float, broken: bool = False):
        run_id = uuid.uuid4().hex[:14]
        path = upload_model(container, built, tmp_path / run_id, slope=slope,
                            intercept=intercept, broken=broken)
        return registered_model(endpoints.clients, model_uri=path, model_dir=None,
                                run_id=run_id, project=PROJECT), run_id

    return make


def request(name: str, image: str, run_id: str) -> DeployRequest:
    return DeployRequest(name=name, image=image, model_uri="registered", run_id=run_id,
                         options={"project": PROJECT})


def answer(endpoints, name: str, body: str, content_type: str):
    got = endpoints.predict(name, body.encode(), content_type=content_type,
                            accept="application/json")
    return got.status, json.loads(got.body)


@pytest.mark.docker
def test_deploy_predict_update_undeploy(built, endpoints, models, ml_client):
    name = f"ep-{uuid.uuid4().hex[:10]}"
    first, run1 = models(2.0, 1.0)
    model = ml_client.models.get(first.name, first.version)  # registered, read back
    assert (model.type, model.version, model.tags[TAG_RUN]) == ("custom_model", run1, run1)
    lines: list[str] = []
    deployed = endpoints.deploy(request(name, built.tag, run1), image=built.tag, model=first,
                                progress=lines.append)
    assert (deployed.name, deployed.status, deployed.run_id, deployed.image) == (
        name, "ready", run1, built.tag)
    assert f"creating endpoint {name} (key authentication)" in lines

    endpoint = ml_client.online_endpoints.get(name)
    assert endpoint.auth_mode == "key" and deployed.url == endpoint.scoring_uri
    (live,) = ml_client.online_deployments.list(endpoint_name=name)
    assert endpoint.traffic == {live.name: 100}
    assert {k: endpoint.tags[k] for k in (TAG_ENDPOINT, TAG_PROJECT, TAG_ROLE, TAG_RUN, "team")} \
        == {TAG_ENDPOINT: name, TAG_PROJECT: PROJECT, TAG_ROLE: "serving", TAG_RUN: run1,
            "team": "ml"}
    assert (live.instance_type, live.instance_count) == ("Standard_F2s_v2", 2)
    assert live.environment_variables["MLDOCK_RUN_ID"] == run1
    assert live.model.endswith(f"models/{first.name}/versions/{first.version}")
    name_version = live.environment.rsplit("/environments/", 1)[1].split("/versions/")
    environment = ml_client.environments.get(name_version[0], name_version[1])
    assert environment.image == built.tag
    assert environment.inference_config == {  # the service's camelCase of inference_config()
        "livenessRoute": {"port": 8080, "path": "/v2/health/live"},
        "readinessRoute": {"port": 8080, "path": "/v2/health/ready"},
        "scoringRoute": {"port": 8080, "path": "/score"}}
    assert inference_config()["scoring_route"] == {"port": 8080, "path": "/score"}

    assert answer(endpoints, name, '{"instances": [1, 2]}', "application/json") == (
        200, {"predictions": [3.0, 5.0]})
    assert answer(endpoints, name, "x\n1\n4\n", "text/csv") == (200, [3.0, 9.0])
    status, error = answer(endpoints, name, '{"instances": ["a"]}', "application/json")
    assert status == 400 and "error" in error  # the container's own refusal, passed through

    # --- blue/green: a new deployment, traffic moved once healthy, the old one deleted -----------
    second, run2 = models(3.0, 0.0)
    updated = endpoints.deploy(request(name, built.tag, run2), image=built.tag, model=second,
                               progress=lines.append)
    (new,) = ml_client.online_deployments.list(endpoint_name=name)
    assert new.name != live.name and updated.run_id == run2
    assert ml_client.online_endpoints.get(name).traffic == {new.name: 100}
    assert f"deleting the previous deployment {live.name}" in lines
    assert answer(endpoints, name, '{"instances": [1, 2]}', "application/json") == (
        200, {"predictions": [3.0, 6.0]})

    # --- a failed update: the new deployment is removed, the old one keeps serving -------------
    broken, run3 = models(5.0, 0.0, broken=True)
    with pytest.raises(MldockError, match=r"failed: .*the previous deployment still serves|"
                                          r"the previous deployment still serves"):
        endpoints.deploy(request(name, built.tag, run3), image=built.tag, model=broken)
    (still,) = ml_client.online_deployments.list(endpoint_name=name)
    assert still.name == new.name
    assert answer(endpoints, name, '{"instances": [1]}', "application/json") == (
        200, {"predictions": [3.0]})
    assert endpoints.get(name).run_id == run2

    assert name in [d.name for d in endpoints.list()]
    endpoints.undeploy(name)
    with pytest.raises(NotFoundError, match=name):
        endpoints.get(name)
    assert name not in [d.name for d in endpoints.list()]


def test_endpoints_mldock_did_not_create_are_left_alone(endpoints, ml_client):
    from azure.ai.ml.entities import ManagedOnlineEndpoint

    name = f"foreign-{uuid.uuid4().hex[:8]}"
    ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=name, auth_mode="key", tags={"owner": "someone"})).result()
    try:
        assert name not in [d.name for d in endpoints.list()]
        with pytest.raises(MldockError, match="not created by mldock"):
            endpoints.undeploy(name)
        with pytest.raises(MldockError, match="not created by mldock"):
            endpoints.deploy(request(name, "img:1", "r"), image="img:1", model=None)
        assert ml_client.online_endpoints.get(name).tags == {"owner": "someone"}
    finally:
        ml_client.online_endpoints.begin_delete(name).result()


def test_names_and_missing_endpoints_are_one_line_errors(endpoints):
    with pytest.raises(UsageError, match="endpoint name 'iris_v1' is not valid on Azure ML"):
        endpoints.deploy(request("iris_v1", "img:1", "r"), image="img:1", model=None)
    with pytest.raises(NotFoundError, match="no Azure ML online endpoint named 'nothing-here'"):
        endpoints.predict("nothing-here", b"{}", content_type="application/json",
                          accept="application/json")
    with pytest.raises(NotFoundError, match="nothing-here"):
        endpoints.undeploy("nothing-here")


def test_a_refused_deployment_is_one_line_and_the_empty_endpoint_stays(endpoints, ml_client,
                                                                       azureml_fake):
    """Quota refusals come back as ARM errors on the deployment's PUT: one line saying so, the
    endpoint (slow to create on Azure) kept for the next try, and nothing left behind."""
    from mldock_azure.modeldata import RegisteredModel

    name = f"ep-{uuid.uuid4().hex[:10]}"
    azureml_fake.fail_next("PUT", rf"/onlineEndpoints/{name}/deployments/", 409,
                           "QuotaExceeded", "Not enough quota available for Standard_F2s_v2 in"
                           " SubscriptionId 1111. Current usage/limit: 4/4.")
    try:
        with pytest.raises(MldockError) as caught:
            endpoints.deploy(request(name, "img:1", "r1"), image="img:1",
                             model=RegisteredModel("m", "1"))
        message = caught.value.message
        assert "an Azure quota is exhausted" in message and "\n" not in message
        assert "the endpoint stays, empty: 'mldock undeploy' removes it" in caught.value.hint
        assert list(ml_client.online_deployments.list(endpoint_name=name)) == []
        assert endpoints.get(name).status == "no traffic"
    finally:
        endpoints.undeploy(name)
    with pytest.raises(NotFoundError):
        endpoints.get(name)


@pytest.mark.docker
def test_undeploy_keeps_an_endpoint_that_serves_others_too(built, endpoints, models, ml_client):
    """Someone added their own deployment to mldock's endpoint: undeploy removes mldock's
    deployment only and keeps the endpoint, with their traffic shares as they were (none here:
    mldock never routes traffic to a deployment it did not create)."""
    from azure.ai.ml.entities import Environment, ManagedOnlineDeployment

    name = f"ep-{uuid.uuid4().hex[:10]}"
    first, run1 = models(2.0, 1.0)
    endpoints.deploy(request(name, built.tag, run1), image=built.tag, model=first)
    (mine,) = ml_client.online_deployments.list(endpoint_name=name)
    try:
        ml_client.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name="theirs", endpoint_name=name, model=first.reference,
            environment=Environment(image=built.tag, inference_config=inference_config()),
            instance_type="Standard_F2s_v2", instance_count=1,
            environment_variables={"MLDOCK_LOAD_FAILURE_GRACE": "0"})).result()
        lines: list[str] = []
        endpoints.undeploy(name, progress=lines.append)
        left = [d.name for d in ml_client.online_deployments.list(endpoint_name=name)]
        assert left == ["theirs"] and mine.name not in left
        assert not any(ml_client.online_endpoints.get(name).traffic.values())
        assert (f"endpoint {name} kept: deployments theirs were not created by mldock; they had"
                " no traffic, so the endpoint now serves none") in lines[-1]
    finally:
        ml_client.online_endpoints.begin_delete(name).result()
