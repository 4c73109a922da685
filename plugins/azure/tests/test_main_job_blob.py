"""The whole local main job, artifacts in Azure Blob Storage (Azurite): init → build → train →
deploy → predict.

The sklearn template is rendered and pointed at ``[storage] uri = "az://<container>/iris"``, with
the connection string named through a variable (``connection_string = "env:…"``, as users name
theirs); its training data is a blob folder too. After training the model must be in the
container (looked at with plain azure-storage-blob) and the project's local copies are removed, so
``mldock runs export`` and ``mldock deploy`` have to fetch the model from Azurite.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mldock.testing.docker import require_docker
from mldock.testing.processes import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MLDOCK = str(Path(sys.executable).parent / "mldock")
VARIABLE = "IRIS_BLOB_CONNECTION"


def mldock(*args: str, cwd: Path, env: dict[str, str], check: bool = True
           ) -> subprocess.CompletedProcess:
    """The real console script, with no MLDOCK_* leaks from the test process."""
    result = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=1200, env=env, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def test_main_job_with_blob_storage(azurite, tmp_path):
    from azure.storage.blob import BlobServiceClient

    engine = require_docker()
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = f"iris-{uuid.uuid4().hex[:8]}"
    service.create_container(container)
    blobs = service.get_container_client(container)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLDOCK_", "AZURE_")) or k == "MLDOCK_REQUIRE_DOCKER"}
    env[VARIABLE] = azurite.connection_string
    name = f"iris-{uuid.uuid4().hex[:8]}"  # images and containers of this name are ours alone
    mldock("init", name, "--template", "sklearn", "--no-input", cwd=tmp_path, env=env)
    project = tmp_path / name
    blobs.upload_blob("datasets/iris/iris.csv", (project / "data" / "iris.csv").read_bytes())
    config = (project / "mldock.toml").read_text()
    assert 'train = "data/iris.csv"' in config
    config = config.replace('train = "data/iris.csv"', f'train = "az://{container}/datasets/iris"')
    config += (f'\n[storage]\nuri = "az://{container}/iris"\n\n'
               f'[storage.azblob]\nconnection_string = "env:{VARIABLE}"\n')
    (project / "mldock.toml").write_text(config)

    endpoint = f"iris-az-{uuid.uuid4().hex[:6]}"  # never clashes with another session's "iris"
    built: list[str] = []
    try:
        build = json.loads(mldock("build", "--json", cwd=project, env=env).stdout)
        if not build["skipped"]:  # an image that already existed is someone else's to remove
            built.append(build["tag"])
        run_id = mldock("train", cwd=project, env=env).stdout.strip().splitlines()[-1]

        # the model is in the container: its reference, its manifest and every file's blob
        ref = json.loads(blobs.download_blob(
            f"iris/refs/runs/{run_id}/model/.mldock-ref").readall())
        assert ref["kind"] == "tree" and ref["size"] > 0

        def blob(digest: str) -> bytes:
            return blobs.download_blob(f"iris/blobs/sha256/{digest[:2]}/{digest[2:]}").readall()

        manifest = json.loads(blob(ref["sha256"]))
        assert "mldock-model.json" in manifest and len(manifest) >= 2
        for entry in manifest.values():
            assert len(blob(entry["sha256"])) == entry["size"]
        run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project, env=env).stdout)
        assert run["lineage"]["inputs"]["train"]["uri"] == f"az://{container}/datasets/iris"
        assert [(a["store"], a["key"]) for a in run["artifacts"]] == [
            (f"az://{container}/iris", f"runs/{run_id}/model")]

        shutil.rmtree(project / ".mldock" / "models", ignore_errors=True)
        shutil.rmtree(project / ".mldock" / "runs", ignore_errors=True)  # no local copy anywhere
        exported = json.loads(mldock("runs", "export", run_id, str(tmp_path / "out"), "--json",
                                     cwd=project, env=env).stdout)
        assert exported["sha256"] == ref["sha256"]
        assert exported["store"] == f"az://{container}/iris"
        assert (tmp_path / "out" / "mldock-model.json").is_file()
        deploy = mldock("deploy", "--run", run_id, "--name", endpoint, "--port", str(free_port()),
                        cwd=project, env=env)
        assert f"fetching the model of run {run_id} from az://{container}/iris" in deploy.stderr
        fetched = project / ".mldock" / "models" / run_id
        assert json.loads((fetched / "mldock-model.json").read_text())["run_id"] == run_id
        answer = json.loads(mldock("predict", "--data", "sample.json", "--name", endpoint,
                                   cwd=project, env=env).stdout)
        assert answer == {"predictions": ["setosa", "virginica"]}
        doctor = mldock("doctor", cwd=project, env=env, check=False)
        assert f"connection string from {VARIABLE}" in doctor.stdout + doctor.stderr
        assert azurite.connection_string.split("AccountKey=")[1][:20] not in (
            doctor.stdout + doctor.stderr)
    finally:
        mldock("undeploy", endpoint, cwd=project, env=env, check=False)
        labelled = {"label": f"mldock.endpoint={endpoint}"}
        for leftover in engine.containers.list(all=True, filters=labelled):
            leftover.remove(force=True)
        for tag in built:
            with contextlib.suppress(Exception):
                image_id = engine.images.get(tag).id
                engine.images.remove(tag, noprune=True)
                latest = f"{tag.rsplit(':', 1)[0]}:latest"
                if engine.images.get(latest).id == image_id:
                    engine.images.remove(latest, noprune=True)
        engine.close()
        service.delete_container(container)
    gone = mldock("predict", "--data", "sample.json", "--name", endpoint, cwd=project, env=env,
                  check=False)
    assert gone.returncode == 4
