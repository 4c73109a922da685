"""``[deploy.sagemaker]``: defaults, and one clear line for each kind of mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mldock_aws.config import SageMakerOptions
from pydantic import ValidationError

ROLE = "arn:aws:iam::123456789012:role/SageMakerExecution"


def test_only_the_role_is_required_and_defaults_follow_sagemaker():
    options = SageMakerOptions(role_arn=ROLE)
    assert (options.instance_type, options.instance_count) == ("ml.m5.large", 1)
    assert (options.serve_instance_type, options.serve_instance_count) == ("ml.m5.large", 1)
    assert options.volume_size_gb == 30 and options.max_runtime_s == 86400
    assert not options.spot and options.metrics == [] and options.tags == {}
    assert options.spot_max_wait_s == 2 * 86400


@pytest.mark.parametrize(("values", "text"), [
    ({"role_arn": None}, "should be a valid string"),
    ({"role_arn": "SageMakerExecution"}, "should match pattern"),
    ({"role_arn": "arn:aws:iam::12345:role/x"}, "should match pattern"),
    ({"instance_type": "m5.large"}, "should match pattern"),
    ({"instance_count": 0}, "greater than or equal to 1"),
    ({"subnets": ["subnet-1"]}, "subnets and security_group_ids go together"),
    ({"max_wait_s": 7200}, "applies to spot training only"),
    ({"spot": True, "max_runtime_s": 7200, "max_wait_s": 3600}, "must be at least max_runtime_s"),
    ({"metrics": ["accuracy", "accuracy"]}, "unique"),
    ({"metrics": ["has space"]}, "invalid metric name"),
    ({"tags": {"mldock.run_id": "x"}}, "reserved"),
    ({"tags": {"aws:x": "y"}}, "reserved"),
    ({"endpoint_url": "127.0.0.1:5000"}, "http:// or https://"),
    ({"endpoint_url": "http://user:pw@127.0.0.1:5000"}, "must not contain credentials"),
    ({"output_path": "/local/folder"}, "should match pattern"),
    ({"ecr_repository": "Iris"}, "should match pattern"),
    ({"region": "Ireland"}, "should match pattern"),
    ({"role": ROLE}, "Extra inputs are not permitted"),  # the template's old placeholder key
    ({"endpoint_startup_timeout_s": 10}, "greater than or equal to 60"),
])
def test_mistakes_are_refused(values, text):
    with pytest.raises(ValidationError, match=text):
        SageMakerOptions.model_validate({"role_arn": ROLE, **values})


def test_the_role_is_required():
    with pytest.raises(ValidationError, match="role_arn\n  Field required"):
        SageMakerOptions.model_validate({"region": "eu-west-1"})


def test_spot_with_explicit_wait_and_other_partitions():
    options = SageMakerOptions(role_arn="arn:aws-cn:iam::123456789012:role/x", spot=True,
                               max_runtime_s=3600, max_wait_s=3600, region="cn-north-1")
    assert options.spot_max_wait_s == 3600


PROJECT = """\
[project]
name = "demo"
train = "demo.train:train"
predictor = "demo.predict:Predictor"

[env.aws.deploy]
deployer = "sagemaker"

[env.aws.deploy.sagemaker]
region = "eu-west-1"
{extra}
"""


def _validate(tmp_path, extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "mldock.toml").write_text(PROJECT.format(extra=extra))
    return subprocess.run([sys.executable, "-c", "from mldock.cli.main import main; main()",
                           "--env", "aws", "config", "show"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)


def test_missing_role_names_the_key_where_it_goes(tmp_path):
    """core's loader validates the selected deployer's table with this plugin's model."""
    done = _validate(tmp_path, "")
    assert done.returncode == 2
    assert "mldock.toml: env.aws.deploy.sagemaker.role_arn: required key is missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_bad_role_is_one_line(tmp_path):
    done = _validate(tmp_path, 'role_arn = "my-role"')
    assert done.returncode == 2 and "env.aws.deploy.sagemaker.role_arn" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_valid_block_is_accepted(tmp_path):
    done = _validate(tmp_path, f'role_arn = "{ROLE}"\nmetrics = ["accuracy"]\nspot = true')
    assert done.returncode == 0, done.stderr
    assert "sagemaker" in done.stdout
