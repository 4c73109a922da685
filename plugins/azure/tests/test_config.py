"""``[deploy.azureml]``: defaults, and one clear line for each kind of mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mldock_azure.config import AzureMLOptions
from pydantic import ValidationError

REQUIRED = {"subscription_id": "11111111-2222-3333-4444-555555555555",
            "resource_group": "ml-rg", "workspace": "ml-ws"}


def test_the_workspace_is_required_and_defaults_are_serverless_single_node():
    options = AzureMLOptions.model_validate(REQUIRED)
    assert options.compute is None and options.instance_type == "Standard_DS3_v2"
    assert (options.instance_count, options.distribution, options.processes_per_node) == (
        1, "none", 1)
    assert not options.low_priority and options.timeout_s == 86400
    assert options.registry is None and options.registry_host is None
    assert options.cloud == "AzureCloud" and options.tags == {} and options.environment == {}


@pytest.mark.parametrize(("values", "text"), [
    ({"subscription_id": "my-subscription"}, "should match pattern"),
    ({"workspace": "ws"}, "should match pattern"),
    ({"resource_group": "a/b"}, "should match pattern"),
    ({"compute": "1cluster"}, "should match pattern"),
    ({"instance_type": "Standard DS3"}, "should match pattern"),
    ({"instance_count": 0}, "greater than or equal to 1"),
    ({"instance_count": 2}, 'needs distribution = "pytorch"'),
    ({"distribution": "horovod"}, "should match pattern"),
    ({"low_priority": True, "compute": "cpu-cluster"}, "applies to serverless compute"),
    ({"timeout_s": 10}, "greater than or equal to 60"),
    ({"tags": {"mldock-run": "x"}}, "are mldock's"),
    ({"tags": {"a/b": "x"}}, "none of"),
    ({"registry": "my-registry"}, "should match pattern"),
    ({"registry_host": "https://127.0.0.1:5000"}, "should match pattern"),
    ({"registry_admin_user": "admin"}, "go together"),
    ({"registry_admin_password": "s3cret"}, "env:"),
    ({"role_arn": "x"}, "Extra inputs are not permitted"),
])
def test_mistakes_are_refused(values, text):
    with pytest.raises(ValidationError, match=text):
        AzureMLOptions.model_validate({**REQUIRED, **values})


def test_two_nodes_with_a_distribution_and_a_low_priority_serverless_job():
    options = AzureMLOptions.model_validate({**REQUIRED, "instance_count": 2,
                                             "distribution": "mpi", "low_priority": True})
    assert (options.instance_count, options.distribution, options.low_priority) == (2, "mpi",
                                                                                    True)


PROJECT = """\
[project]
name = "demo"
train = "demo.train:train"
predictor = "demo.predict:Predictor"

[env.azure.deploy]
deployer = "azureml"

[env.azure.deploy.azureml]
resource_group = "ml-rg"
workspace = "ml-ws"
{extra}
"""


def _show(tmp_path, extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "mldock.toml").write_text(PROJECT.format(extra=extra))
    return subprocess.run([sys.executable, "-m", "mldock", "--env", "azure", "config", "show"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)


def test_a_missing_key_is_named_where_it_goes(tmp_path):
    """core's loader validates the selected deployer's table with this plugin's model."""
    done = _show(tmp_path, "")
    assert done.returncode == 2
    assert ("mldock.toml: env.azure.deploy.azureml.subscription_id: required key is missing"
            in done.stderr), done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_value_is_one_line(tmp_path):
    done = _show(tmp_path, 'subscription_id = "11111111-2222-3333-4444-555555555555"\n'
                           "instance_count = 3")
    assert done.returncode == 2 and "env.azure.deploy.azureml" in done.stderr
    assert "distribution" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_valid_block_is_accepted(tmp_path):
    done = _show(tmp_path, 'subscription_id = "11111111-2222-3333-4444-555555555555"\n'
                           'compute = "cpu-cluster"\ninstance_count = 2\n'
                           'distribution = "pytorch"\ntags = { team = "ml" }')
    assert done.returncode == 0, done.stderr
    assert "azureml" in done.stdout
