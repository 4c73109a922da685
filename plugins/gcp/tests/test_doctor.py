"""``mldock doctor`` on the vertex deployer: credentials, project and region, one check each,
against the fake's token endpoint, Resource Manager and Vertex AI."""

from __future__ import annotations

import json

import pytest
from mldock_gcp.config import VertexOptions
from mldock_gcp.deployer import VertexDeployer
from vertex_fake import error_info


@pytest.fixture
def make_deployer(vertex_fake):
    def make(**overrides):
        values = {"project": vertex_fake.project, "api_endpoint": vertex_fake.url, **overrides}
        return VertexDeployer(VertexOptions(**values), project="proj", poll_s=0.05)

    return make


@pytest.fixture
def with_key(gcp_service_account, monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(gcp_service_account.path))
    return gcp_service_account


def by_name(checks):
    return {check.name: check for check in checks}


def test_everything_answers(make_deployer, with_key, vertex_fake):
    checks = make_deployer().check()
    assert [c.name for c in checks] == ["Google Cloud credentials", "Google Cloud project",
                                        "Vertex AI region"]
    assert all(c.ok for c in checks), checks
    found = by_name(checks)
    assert found["Google Cloud credentials"].detail == (
        f"application default credentials ({with_key.email})")
    assert found["Google Cloud project"].detail == f"{vertex_fake.project} ({vertex_fake.project})"
    assert found["Vertex AI region"].detail == f"us-central1 answers ({vertex_fake.url})"
    assert vertex_fake.requests_to(f"GET /v3/projects/{vertex_fake.project}$")
    assert vertex_fake.requests_to("GET /v1/projects/.*/locations/us-central1/endpoints")


def test_the_project_may_come_from_the_key_file(make_deployer, with_key, vertex_fake):
    checks = by_name(make_deployer(project=None).check())
    assert checks["Google Cloud project"].ok
    assert checks["Google Cloud project"].detail.startswith(vertex_fake.project)


def test_no_credentials_is_one_failed_check_with_the_fix(make_deployer):
    """The sandbox hides every credential and the metadata server: nothing else is tried."""
    (check,) = make_deployer().check()
    assert (check.name, check.ok) == ("Google Cloud credentials", False)
    assert "no Google Cloud credentials" in check.detail
    assert "gcloud auth application-default login" in check.hint


def test_a_key_the_token_endpoint_refuses(make_deployer, with_key, vertex_fake, tmp_path,
                                          monkeypatch):
    """A key file the service does not trust (deleted key): refused at the token endpoint."""
    info = dict(with_key.info, private_key_id="0" * 32)
    stale = tmp_path / "stale-key.json"
    stale.write_text(json.dumps(info))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(stale))
    (check,) = make_deployer().check()
    assert check.ok is False and check.name == "Google Cloud credentials"
    assert "invalid_grant" in check.detail and "\n" not in check.detail
    assert info["private_key"] not in check.detail + check.hint  # never a secret


def test_a_project_the_caller_cannot_see(make_deployer, with_key):
    checks = by_name(make_deployer(project="someone-elses").check())
    assert checks["Google Cloud credentials"].ok
    project = checks["Google Cloud project"]
    assert not project.ok and "someone-elses" in project.detail
    assert "roles/browser" in f"{project.detail} {project.hint}"


def test_a_region_without_vertex(make_deployer, with_key, vertex_fake):
    region = by_name(make_deployer(region="me-central9").check())["Vertex AI region"]
    assert not region.ok and "me-central9" in f"{region.detail} {region.hint}"


def test_vertex_api_not_enabled(make_deployer, with_key, vertex_fake):
    vertex_fake.fail_next("GET /v1/projects/.*/endpoints", 403, "PERMISSION_DENIED",
                          "Vertex AI API has not been used in project 123456789012 before or it"
                          " is disabled.",
                          [error_info("SERVICE_DISABLED", "googleapis.com",
                                      service="aiplatform.googleapis.com")])
    region = by_name(make_deployer().check())["Vertex AI region"]
    assert not region.ok
    assert "gcloud services enable aiplatform.googleapis.com" in f"{region.detail} {region.hint}"
