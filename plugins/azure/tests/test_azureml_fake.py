"""The fake itself, driven by the real azure-ai-ml client: what G's and H's tests rely on.

Docker tests run tiny containers from the local ``python:3.11-slim`` (a job, a server image built
here and removed afterwards); each test uses unique names on the session's fake.
"""

from __future__ import annotations

import json
import uuid

import pytest
from mldock.testing.docker import require_docker, require_image

IMAGE = "python:3.11-slim"


def test_workspace_get(ml_client, azureml_fake):
    workspace = ml_client.workspaces.get(azureml_fake.workspace)
    assert workspace.name == azureml_fake.workspace
    assert workspace.container_registry.endswith("/registries/mldockfakeacr")
    assert workspace.discovery_url == f"{azureml_fake.url}/discovery"


@pytest.fixture
def engine():
    client = require_docker()
    require_image(client, IMAGE)
    yield client
    client.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def run_logs(fake, name: str) -> dict[str, str]:
    """Every log file run history lists for job ``name``, read through its URL."""
    import requests

    token = fake.credential().get_token("https://ml.azure.com/.default").token
    details = requests.get(f"{fake.url}/history/v1.0{fake.workspace_id()}/runs/{name}/details",
                           headers={"Authorization": f"Bearer {token}"}, timeout=30).json()
    return {log: requests.get(url, timeout=30).text for log, url in details["logFiles"].items()}


@pytest.mark.docker
def test_command_job_runs_to_completed(ml_client, azureml_fake, engine, capsys):
    from azure.ai.ml import Input, Output, command
    from azure.ai.ml.entities import Environment

    name = unique("job")
    container = f"azureml-blobstore-{azureml_fake.workspace}"
    azureml_fake.blob.service().get_container_client(container).upload_blob(
        f"data/{name}/x.txt", b"41")
    script = ("import os; n = int(open('${{inputs.data}}/x.txt').read());"
              " open('${{outputs.model}}/y.txt', 'w').write(str(n + 1));"
              " print('rank', os.environ['RANK'])")
    job = command(
        name=name, command=f'python -c "{script}"',
        environment=Environment(image=IMAGE), compute=azureml_fake.compute,
        inputs={"data": Input(type="uri_folder",
                              path=f"azureml://datastores/workspaceblobstore/paths/data/{name}")},
        outputs={"model": Output(type="uri_folder")}, instance_count=2,
        distribution={"type": "pytorch", "process_count_per_instance": 1})
    created = ml_client.jobs.create_or_update(job)
    assert created.name == name
    ml_client.jobs.stream(name)  # polls run history until the job ends
    assert f"RunId: {name}" in capsys.readouterr().out
    done = ml_client.jobs.get(name)
    assert done.status == "Completed"
    logs = run_logs(azureml_fake, name)
    assert sorted(logs) == ["user_logs/std_log_process_0.txt", "user_logs/std_log_process_1.txt"]
    assert [logs[f"user_logs/std_log_process_{rank}.txt"].strip() for rank in (0, 1)] == [
        "rank 0", "rank 1"]
    blob = azureml_fake.blob.service().get_container_client(container).download_blob(
        f"azureml/{name}/model/y.txt").readall()
    assert blob == b"42"


SERVER = '''
import http.server, json, os, pathlib
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path in ("/live", "/ready") else 404); self.end_headers()
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        root = pathlib.Path(os.environ["AZUREML_MODEL_DIR"])
        weights = next(root.glob("*/weights.txt")).read_text()
        out = json.dumps({"echo": body, "weights": weights, "dir": str(root)}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out))); self.end_headers(); self.wfile.write(out)
http.server.HTTPServer(("0.0.0.0", 5001), H).serve_forever()
'''


@pytest.fixture(scope="module")
def server_image(tmp_path_factory):
    client = require_docker()
    require_image(client, IMAGE)
    folder = tmp_path_factory.mktemp("server-image")
    (folder / "server.py").write_text(SERVER)
    (folder / "Dockerfile").write_text(f'FROM {IMAGE}\nCOPY server.py /server.py\n'
                                       'CMD ["python3", "-u", "/server.py"]\n')
    tag = f"mldock-azfake-server:{uuid.uuid4().hex[:10]}"
    client.images.build(path=str(folder), tag=tag, rm=True)
    yield tag
    client.images.remove(tag, force=True)
    client.close()


@pytest.mark.docker
def test_online_endpoint_serves_through_the_scoring_uri(ml_client, azureml_fake, server_image,
                                                        tmp_path):
    from azure.ai.ml.entities import (
        Environment,
        ManagedOnlineDeployment,
        ManagedOnlineEndpoint,
        Model,
    )

    name = unique("ep")
    container = f"azureml-blobstore-{azureml_fake.workspace}"
    azureml_fake.blob.service().get_container_client(container).upload_blob(
        f"models/{name}/model/weights.txt", b"w-1")
    model = ml_client.models.create_or_update(Model(
        name=name, version="1", type="custom_model",
        path=f"azureml://datastores/workspaceblobstore/paths/models/{name}/model"))
    environment = Environment(name=name, version="1", image=server_image, inference_config={
        "liveness_route": {"path": "/live", "port": 5001},
        "readiness_route": {"path": "/ready", "port": 5001},
        "scoring_route": {"path": "/score", "port": 5001}})
    endpoint = ml_client.online_endpoints.begin_create_or_update(
        ManagedOnlineEndpoint(name=name, auth_mode="key")).result()
    assert endpoint.provisioning_state == "Succeeded"
    ml_client.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
        name="blue", endpoint_name=name, model=model, environment=environment,
        instance_type="Standard_DS3_v2", instance_count=1)).result()
    assert ml_client.online_deployments.get("blue", name).provisioning_state == "Succeeded"
    endpoint.traffic = {"blue": 100}
    ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    request = tmp_path / "request.json"
    request.write_text('{"data": [1, 2]}')
    answer = ml_client.online_endpoints.invoke(endpoint_name=name, request_file=str(request))
    assert json.loads(answer) == {"echo": {"data": [1, 2]}, "weights": "w-1",
                                  "dir": f"/var/azureml-app/azureml-models/{name}/1"}
    ml_client.online_endpoints.begin_delete(name=name).result()
    assert name not in [e.name for e in ml_client.online_endpoints.list()]


@pytest.mark.docker
def test_failed_job_reports_the_last_stderr_lines(ml_client, azureml_fake, engine):
    from azure.ai.ml import command
    from azure.ai.ml.entities import Environment

    name = unique("fail")
    ml_client.jobs.create_or_update(command(
        name=name, command="echo boom-$AZUREML_RUN_ID >&2; exit 3",
        environment=Environment(image=IMAGE), compute=azureml_fake.compute))
    with pytest.raises(Exception, match=f"boom-{name}"):
        ml_client.jobs.stream(name)
    assert ml_client.jobs.get(name).status == "Failed"


def test_invalid_job_body_is_rejected_in_arms_error_shape(azureml_fake, azureml_env):
    import requests

    url = (f"{azureml_fake.url}{azureml_fake.workspace_id()}/jobs/{unique('bad')}"
           "?api-version=2024-10-01-preview")
    token = azureml_fake.credential().get_token("https://management.azure.com/.default").token
    answer = requests.put(url, json={"properties": {"jobType": "Command", "environmentId": "x"}},
                          headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["code"] == "UserError"
    assert error["message"] == "properties.command: is required"
    assert error["details"][0]["target"] == "properties.command"


def test_unknown_compute_is_resource_not_found(ml_client, azureml_fake):
    from azure.ai.ml import command
    from azure.ai.ml.entities import Environment
    from azure.core.exceptions import ResourceNotFoundError

    with pytest.raises(ResourceNotFoundError, match="Compute 'no-such-cluster' was not found"):
        ml_client.jobs.create_or_update(command(
            name=unique("nocompute"), command="true", environment=Environment(image=IMAGE),
            compute="no-such-cluster"))


def test_fail_next_answers_the_injected_error_once(ml_client, azureml_fake):
    from azure.core.exceptions import HttpResponseError

    azureml_fake.fail_next("GET", r"/workspaces/mldock-fake-ws$", 403, "AuthorizationFailed",
                           "The client does not have authorization to perform action"
                           " 'Microsoft.MachineLearningServices/workspaces/read'; it needs the"
                           " AzureML Data Scientist role.")
    with pytest.raises(HttpResponseError, match="AzureML Data Scientist") as caught:
        ml_client.workspaces.get(azureml_fake.workspace)
    assert caught.value.status_code == 403
    assert ml_client.workspaces.get(azureml_fake.workspace).name == azureml_fake.workspace


def test_unknown_workspace_is_resource_not_found(azureml_fake, azureml_env):
    from azure.core.exceptions import ResourceNotFoundError

    client = azureml_fake.ml_client(workspace="no-such-ws")
    with pytest.raises(ResourceNotFoundError, match="workspaces/no-such-ws"):
        client.workspaces.get("no-such-ws")


def test_default_azure_credential_in_a_subprocess_signs_in_at_the_fake(azure_credential_env,
                                                                        azureml_fake):
    """What the mldock CLI does: DefaultAzureCredential, then ARM, in a fresh process."""
    import subprocess
    import sys

    script = (
        "from azure.identity import DefaultAzureCredential\n"
        "from azure.ai.ml import MLClient\n"
        "import sys\n"
        "c = MLClient(DefaultAzureCredential(), sys.argv[1], sys.argv[2], sys.argv[3],"
        " cloud=sys.argv[4])\n"
        "print(c.workspaces.get(sys.argv[3]).name)\n")
    done = subprocess.run(
        [sys.executable, "-c", script, azureml_fake.subscription_id, azureml_fake.resource_group,
         azureml_fake.workspace, azureml_fake.cloud], env=azure_credential_env,
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith(azureml_fake.workspace)
    assert azureml_fake.sent("GET", r"^/msi/token$")


@pytest.mark.docker
def test_cancel_stops_a_running_job(ml_client, azureml_fake, engine):
    from azure.ai.ml import command
    from azure.ai.ml.entities import Environment

    name = unique("cancel")
    ml_client.jobs.create_or_update(command(
        name=name, command="sleep 600", environment=Environment(image=IMAGE),
        compute=azureml_fake.compute))
    assert azureml_fake.wait_for(lambda: ml_client.jobs.get(name).status == "Running")
    ml_client.jobs.begin_cancel(name).result()
    assert ml_client.jobs.get(name).status == "Canceled"
    assert not engine.containers.list(all=True, filters={"name": f"azmlfake-{name}"})


def test_acr_exchange_turns_an_access_token_into_the_known_refresh_token(azureml_fake,
                                                                         azureml_env):
    import requests

    token = azureml_fake.credential().get_token("https://management.azure.com/.default").token
    url = f"https://{azureml_fake.registry_login_server}/oauth2/exchange"
    form = {"grant_type": "access_token", "service": "mldockfakeacr.azurecr.io",
            "tenant": azureml_fake.tenant_id, "access_token": token}
    answer = requests.post(url, data=form, timeout=30)
    assert answer.status_code == 200
    assert answer.json() == {"refresh_token": azureml_fake.acr_refresh_token}
    refused = requests.post(url, data={**form, "access_token": "not-a-token"}, timeout=30)
    assert refused.status_code == 401


def test_client_secret_credential_signs_in_at_the_fakes_authority(azureml_fake, azureml_env):
    from azure.identity import ClientSecretCredential

    credential = ClientSecretCredential(
        azureml_fake.tenant_id, "dummy-client", "dummy-secret", authority=azureml_fake.url,
        disable_instance_discovery=True)
    token = credential.get_token(f"{azureml_fake.url}/.default")
    assert token.token.count(".") == 2
    assert azureml_fake.sent("POST", rf"^/{azureml_fake.tenant_id}/oauth2/v2.0/token$")


def test_traffic_to_a_missing_deployment_is_rejected(ml_client):
    from azure.ai.ml.entities import ManagedOnlineEndpoint
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError, match="do not exist"):
        ml_client.online_endpoints.begin_create_or_update(
            ManagedOnlineEndpoint(name=unique("ep"), traffic={"green": 100})).result()


@pytest.mark.docker
def test_a_deployment_whose_container_exits_fails_with_its_log(ml_client, azureml_fake, engine):
    from azure.ai.ml.entities import Environment, ManagedOnlineDeployment, ManagedOnlineEndpoint

    name = unique("epfail")
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=name)).result()
    route = {"path": "/ready", "port": 5001}
    environment = Environment(name=name, version="1", image=IMAGE, inference_config={
        "liveness_route": route, "readiness_route": route, "scoring_route": route})
    with pytest.raises(Exception, match="User container has crashed"):
        ml_client.online_deployments.begin_create_or_update(ManagedOnlineDeployment(
            name="blue", endpoint_name=name, environment=environment,
            instance_type="Standard_DS3_v2", instance_count=1)).result()
    assert ml_client.online_deployments.get("blue", name).provisioning_state == "Failed"
    ml_client.online_deployments.begin_delete("blue", name).result()
    ml_client.online_endpoints.begin_delete(name=name).result()
