"""``mldock doctor`` on Azure ML: the credential (its source, never a token), the workspace, the
compute; each failure one check with its fix. In process against the fake, then through the CLI
with the real ``DefaultAzureCredential`` signing in at the fake's managed-identity endpoint."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from azureml_parts import build_deployer, mldock
from mldock_azure.clients import AzureIdentity
from mldock_azure.deployer import AzureMLDeployer


def by_name(checks: list[Any]) -> dict[str, Any]:
    return {check.name: check for check in checks}


def test_everything_answers(azureml_fake, azureml_env):
    checks = by_name(build_deployer(azureml_fake).check())
    assert [c.ok for c in checks.values()] == [True, True, True], checks
    assert checks["Azure credentials"].detail == "found (FakeCredential)"
    workspace = checks["Azure ML workspace"].detail
    assert azureml_fake.workspace in workspace and azureml_fake.location in workspace
    assert checks["Azure ML compute"].detail.startswith(f"{azureml_fake.compute} (")


def test_serverless_needs_no_compute_lookup(azureml_fake, azureml_env):
    compute = by_name(build_deployer(azureml_fake, compute=None,
                                     instance_type="Standard_E4s_v3").check())["Azure ML compute"]
    assert (compute.ok, compute.detail) == (True, "serverless (Standard_E4s_v3)")


def test_a_missing_compute(azureml_fake, azureml_env):
    compute = by_name(build_deployer(azureml_fake, compute="gpu-cluster").check())[
        "Azure ML compute"]
    assert not compute.ok
    assert compute.detail.startswith("compute 'gpu-cluster' does not exist in workspace")
    assert "az ml compute list" in compute.hint


def test_a_missing_workspace_stops_the_checks_there(azureml_fake, azureml_env):
    checks = build_deployer(azureml_fake, workspace="no-such-workspace").check()
    assert [(c.name, c.ok) for c in checks] == [("Azure credentials", True),
                                                ("Azure ML workspace", False)]
    assert "no-such-workspace" in checks[1].detail and "does not exist" in checks[1].detail
    assert "workspace" in checks[1].hint


def test_no_credentials(azureml_fake, azureml_env):
    from azure.identity import CredentialUnavailableError

    class Nobody:
        def get_token(self, *scopes: str, **kwargs: Any) -> Any:
            raise CredentialUnavailableError("no login found")

    deployer = build_deployer(azureml_fake)
    deployer.clients.identity = AzureIdentity(Nobody())
    (check,) = deployer.check()
    assert (check.name, check.ok) == ("Azure credentials", False)
    assert "no Azure credentials found" in check.detail and "az login" in check.hint


def test_mldock_doctor_through_the_cli(azureml_fake, azure_credential_env, write_azure_env,
                                       tmp_path):
    """The record's factory builds the deployer from ``[env.azure]``; DefaultAzureCredential
    finds the managed identity; no token appears in the output."""
    mldock("init", "azdoctor", "--template", "minimal", "--no-input", cwd=tmp_path)
    project = tmp_path / "azdoctor"
    write_azure_env(project)
    done = subprocess.run([sys.executable, "-m", "mldock", "--env", "azure", "doctor"],
                          cwd=project, env={**azure_credential_env, "NO_COLOR": "1"},
                          capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert "Azure credentials" in output and "ManagedIdentityCredential" in output, output
    assert azureml_fake.workspace in output and azureml_fake.compute in output
    assert "eyJ" not in output  # no JWT (every Entra ID token starts so)
    assert "Traceback" not in output


def test_building_the_deployer_asks_nothing(azureml_fake):
    """No credential, no request before a command needs one (``mldock --help`` stays fast)."""
    before = len(azureml_fake.requests)
    deployer = AzureMLDeployer(build_deployer(azureml_fake).options, project="p")
    assert deployer.clients._ml is None and len(azureml_fake.requests) == before
