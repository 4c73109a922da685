"""The image ``mldock build`` makes, trained and served by SageMaker Python SDK v2's local mode.

``Estimator(image_uri=…, instance_type="local")`` runs ``IMAGE train`` under docker-compose with
SageMaker's ``/opt/ml`` layout (one compose service per host), packs every host's ``/opt/ml/model``
into one ``model.tar.gz``, and ``deploy(instance_type="local")`` serves it with ``IMAGE serve``.
Nothing here is mocked: the SDK (pinned in ``requirements/sagemaker-v2.txt``, in its own venv),
docker-compose and the engine are real; the predictions must equal what ``mldock predict`` answered
for the same payload.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tomllib

import pytest
import sagemaker_local as sm

pytestmark = pytest.mark.docker

MANIFEST = "mldock-model.json"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HOST_LINE = re.compile(r"^\S*?(?P<host>algo-\d+)-\w+\s+\|\s(?P<text>.*)$")


def project_hyperparameters(project) -> dict:
    """The ``[hyperparameters]`` of the project's ``mldock.toml``: what ``mldock train`` used."""
    config = tomllib.loads((project.folder / "mldock.toml").read_text())
    return dict(config["hyperparameters"])


def run_v2(project, engine, python, run_driver, work, instance_count, hyperparameters) -> dict:
    """Train, deploy, predict and delete the endpoint with SDK v2; always remove what it left.

    The result gains ``files``: the model.tar.gz's members, read before its folder is removed.
    """
    work.mkdir()
    spec = sm.write_spec(work, image=project.image, data_dir=str(project.folder / "data"),
                         instance_count=instance_count, hyperparameters=hyperparameters,
                         payload=project.payload, serving_port=sm.free_port())
    try:
        result = run_driver(python, "sagemaker_v2", str(spec), env=sm.sdk_env(work), timeout=900)
        result["files"] = sm.model_tar(result["model_data"])  # read before the folder goes
        return result
    finally:
        sm.remove_leftovers(engine, project.image, work / "containers")
        assert sm.sdk_containers(engine, project.image) == []
        shutil.rmtree(work, ignore_errors=True)


def check_model(result: dict) -> tuple[dict, dict[str, bytes]]:
    """The model.tar.gz holds the manifest and exactly the files it lists, unaltered."""
    assert result["status"] == "Completed"
    files = result["files"]
    assert MANIFEST in files, sorted(files)
    manifest = json.loads(files[MANIFEST])
    assert manifest["platform"] == "sagemaker"
    listed = {name: hashlib.sha256(files[name]).hexdigest() for name in files if name != MANIFEST}
    assert listed == manifest["files"]
    return manifest, files


def predictions(answer):
    """The server answers ``{"predictions": [...]}`` to ``{"instances": [...]}``."""
    return answer["predictions"] if isinstance(answer, dict) else answer


@pytest.fixture(scope="module")
def v2_python(sdk_python, docker_compose):
    return sdk_python("sagemaker-v2")


def test_estimator_local_one_instance(platform_project, engine, v2_python, run_driver, tmp_path):
    """One host, the project's own hyperparameters: the very model ``mldock train`` made."""
    result = run_v2(platform_project, engine, v2_python, run_driver, tmp_path / "v2-one", 1,
                    project_hyperparameters(platform_project))
    manifest, _ = check_model(result)
    exported = json.loads((platform_project.model_dir / MANIFEST).read_text())
    # Same data, code and hyperparameters as `mldock train`: byte-identical model files.
    assert manifest["files"] == exported["files"]
    assert "mldock-metric accuracy=" in result["log"]
    assert predictions(result["answer"]) == platform_project.expected


def host_lines(log: str) -> dict[str, list[str]]:
    """Compose's ``<container> | <line>`` output grouped by SageMaker host (``algo-N``)."""
    hosts: dict[str, list[str]] = {}
    for raw in log.splitlines():
        line = ANSI.sub("", raw)
        match = HOST_LINE.match(line)
        if match:
            hosts.setdefault(match["host"], []).append(match["text"])
    return hosts


def test_estimator_local_two_instances(platform_project, engine, v2_python, run_driver, tmp_path):
    """Two hosts: both train, only the primary publishes; SDK hyperparameters reach ``train``.

    SDK v2 local mode mounts one host folder as every host's ``/opt/ml/model`` (on SageMaker each
    host has its own, merged after the job), so the files alone cannot say who wrote them: each
    host's own account in the log does.
    """
    hyperparameters = {**project_hyperparameters(platform_project),
                       "model": "forest", "n_estimators": 20, "max_depth": 3}
    result = run_v2(platform_project, engine, v2_python, run_driver, tmp_path / "v2-two", 2,
                    hyperparameters)
    manifest, files = check_model(result)
    assert sorted(files) == [MANIFEST, "model.joblib"]
    hosts = host_lines(result["log"])
    assert sorted(hosts) == ["algo-1", "algo-2"], result["log"]
    primary, secondary = hosts["algo-1"], hosts["algo-2"]
    assert any("rank 0/2" in line for line in primary), primary
    assert any("rank 1/2" in line for line in secondary), secondary
    assert any("training finished; model in /opt/ml/model" in line for line in primary), primary
    assert not any("training finished; model in" in line for line in secondary), secondary
    assert any("only the primary host (rank 0) publishes the model" in line
               for line in secondary), secondary
    # "forest" and 20 trees exist only in these hyperparameters (the template's default is a
    # logistic regression): each host's train() saw them.
    for lines in (primary, secondary):
        assert "grew 20 trees" in lines, lines
    assert manifest["job_id"] == manifest["run_id"]
    assert predictions(result["answer"]) == platform_project.expected
