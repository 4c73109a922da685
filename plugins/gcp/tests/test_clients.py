"""The Vertex clients: where requests go, which project they name, and that nothing Google is
imported before a command needs it. Requests for real are in the second half (the Vertex fake)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from mldock.errors import MldockError
from mldock_gcp.clients import REST_HOSTS, CredentialChain, VertexClients
from mldock_gcp.config import VertexOptions


def anonymous(**values) -> VertexClients:
    return VertexClients(VertexOptions(**values), CredentialChain(anonymous=True))


def test_endpoints_are_regional_unless_overridden():
    clients = anonymous(region="europe-west4")
    assert clients.api_endpoint == "europe-west4-aiplatform.googleapis.com"
    assert clients.rest_base("logging") == REST_HOSTS["logging"] == "https://logging.googleapis.com"
    fake = anonymous(api_endpoint="http://127.0.0.1:9/")
    assert fake.api_endpoint == "http://127.0.0.1:9"
    assert {fake.rest_base(s) for s in REST_HOSTS} == {"http://127.0.0.1:9"}


def test_the_project_comes_from_options_then_credentials_then_the_environment(monkeypatch):
    assert anonymous(project="my-project").parent == "projects/my-project/locations/us-central1"
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(MldockError) as info:
        _ = anonymous().project
    assert "deploy.vertex.project" in info.value.message and info.value.exit_code == 2
    assert "[deploy.vertex] project" in (info.value.hint or "")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    assert anonymous().project == "env-project"


def test_gapic_clients_use_rest_the_endpoint_and_are_built_once():
    clients = anonymous(project="my-project", api_endpoint="http://127.0.0.1:9")
    built: list[object] = []
    threads = [threading.Thread(target=lambda: built.append(clients.jobs)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(client) for client in built}) == 1
    for client in (clients.jobs, clients.models, clients.endpoints, clients.prediction):
        assert type(client.transport).__name__.endswith("RestTransport")
        assert client.transport._host == "http://127.0.0.1:9"


def test_importing_the_modules_imports_nothing_from_google():
    """``mldock --help`` loads the entry-point module; the deployer module alone must not pull
    the Google SDKs either (they load when a request is made)."""
    code = ("import sys; before = set(sys.modules); import mldock_gcp.plugin,"
            " mldock_gcp.deployer, mldock_gcp.training, mldock_gcp.logs, mldock_gcp.registry;"
            " print(sorted(m for m in set(sys.modules) - before if m.startswith('google')))")
    # ('google' and 'google.cloud' namespace packages are made by site's .pth files at start-up)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.strip() == "[]"


# --- requests for real, on the Vertex fake -------------------------------------------------------


def test_a_key_file_s_token_comes_from_its_token_endpoint(vertex_fake, gcp_service_account,
                                                          monkeypatch):
    """The real google-auth flow: a signed JWT to the key's ``token_uri``, a token back; the
    REST session and the GAPIC clients then send it."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account.path))
    vertex_fake.require_auth = True
    clients = VertexClients(VertexOptions(api_endpoint=vertex_fake.url))
    assert clients.project == vertex_fake.project  # from the key file
    assert clients.chain.access_token() == vertex_fake.access_token
    found = clients.call("GET", "cloudresourcemanager", f"/v3/projects/{clients.project}",
                         action="look up the project")
    assert found["projectId"] == vertex_fake.project
    clients.jobs.list_custom_jobs(parent=clients.parent)  # the GAPIC client authenticates too


def test_rest_errors_are_one_line_errors(vertex_fake):
    from mldock.errors import NotFoundError

    clients = anonymous(project=vertex_fake.project, api_endpoint=vertex_fake.url)
    with pytest.raises(NotFoundError) as info:
        clients.call("GET", "artifactregistry",
                     f"/v1/{clients.parent}/repositories/never-made", action="look it up",
                     resource="repository 'never-made'")
    assert info.value.message == "cannot look it up: repository 'never-made' does not exist"
    vertex_fake.require_auth = True
    with pytest.raises(MldockError) as refused:
        clients.call("GET", "cloudresourcemanager", f"/v3/projects/{clients.project}",
                     action="look up the project")
    assert refused.value.message == ("cannot look up the project: no Google Cloud credentials"
                                     " found")  # the 401 of anonymous requests
    assert "gcloud auth application-default login" in (refused.value.hint or "")
