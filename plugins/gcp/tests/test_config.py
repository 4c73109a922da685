"""``[deploy.vertex]``: defaults, and one clear line for each kind of mistake."""

from __future__ import annotations

import subprocess
import sys

import pytest
from mldock_gcp.config import VertexOptions
from pydantic import ValidationError

KMS = "projects/p/locations/us-central1/keyRings/ring/cryptoKeys/key"


def test_nothing_is_required_and_defaults_are_vertex_s():
    options = VertexOptions()
    assert (options.project, options.region, options.staging_bucket) == (None, "us-central1",
                                                                         None)
    assert (options.machine_type, options.replica_count) == ("n1-standard-4", 1)
    assert options.accelerator_type is None and options.accelerator_count == 0
    assert options.timeout_s == 86400 and not options.spot
    assert not options.restart_on_worker_restart
    assert (options.repository, options.artifact_registry_location) == ("mldock", "us-central1")
    assert VertexOptions(registry_location="europe").artifact_registry_location == "europe"


@pytest.mark.parametrize(("values", "text"), [
    ({"project": "My_Project"}, "should match pattern"),
    ({"region": "Iowa"}, "should match pattern"),
    ({"staging_bucket": "/local/folder"}, "should match pattern"),
    ({"staging_bucket": "s3://bucket/x"}, "should match pattern"),
    ({"service_account": "robot"}, "should match pattern"),
    ({"network": "default"}, "should match pattern"),
    ({"encryption_key": "my-key"}, "should match pattern"),
    ({"labels": {"Team": "ml"}}, "must start with a lowercase letter"),
    ({"labels": {"team": "ML"}}, "values hold only lowercase"),
    ({"labels": {"mldock-run": "x"}}, "keys starting with 'mldock' are mldock's"),
    ({"labels": {f"k{i}": "v" for i in range(61)}}, "at most 60 labels"),
    ({"accelerator_type": "NVIDIA_TESLA_T4"}, "go together"),
    ({"accelerator_count": 1}, "go together"),
    ({"accelerator_type": "nvidia-t4", "accelerator_count": 1}, "should match pattern"),
    ({"replica_count": 0}, "greater than or equal to 1"),
    ({"timeout_s": 30}, "greater than or equal to 60"),
    ({"timeout_s": 8 * 86400}, "less than or equal to 604800"),
    ({"min_replicas": 3, "max_replicas": 2}, "below min_replicas"),
    ({"repository": "My Repo"}, "should match pattern"),
    ({"api_endpoint": "127.0.0.1:8080"}, "http:// or https://"),
    ({"credentials_file": "/home/me/key.json"}, "env:"),
    ({"role_arn": "x"}, "Extra inputs are not permitted"),
])
def test_mistakes_are_refused(values, text):
    with pytest.raises(ValidationError, match=text):
        VertexOptions.model_validate(values)


def test_every_training_option_together():
    options = VertexOptions(project="my-project", region="europe-west4",
                            staging_bucket="gs://bucket/prefix", accelerator_type="NVIDIA_L4",
                            accelerator_count=2, replica_count=3, spot=True,
                            restart_on_worker_restart=True, encryption_key=KMS,
                            service_account="sa@my-project.iam.gserviceaccount.com",
                            network="projects/123/global/networks/vpc", labels={"team": "ml"})
    assert options.replica_count == 3 and options.encryption_key == KMS


PROJECT = """\
[project]
name = "demo"
train = "demo.train:train"
predictor = "demo.predict:Predictor"

[env.gcp.deploy]
deployer = "vertex"

[env.gcp.deploy.vertex]
region = "europe-west4"
{extra}
"""


def _validate(tmp_path, extra: str) -> subprocess.CompletedProcess:
    (tmp_path / "mldock.toml").write_text(PROJECT.format(extra=extra))
    return subprocess.run([sys.executable, "-c", "from mldock.cli.main import main; main()",
                           "--env", "gcp", "config", "show"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_bad_key_is_one_line_naming_its_path(tmp_path):
    """core's loader validates the selected deployer's table with this plugin's model."""
    done = _validate(tmp_path, 'project = "Not A Project"')
    assert done.returncode == 2, done.stderr
    assert "env.gcp.deploy.vertex.project" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr


def test_a_valid_block_is_accepted(tmp_path):
    done = _validate(tmp_path, 'project = "my-project"\nspot = true\nreplica_count = 2')
    assert done.returncode == 0, done.stderr
    assert "vertex" in done.stdout
