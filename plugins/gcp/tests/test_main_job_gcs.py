"""The whole local main job, artifacts in Cloud Storage (the GCS emulator): init → build → train →
deploy → predict → undeploy.

The sklearn template is rendered, pointed at ``[storage] uri = "gs://<bucket>/iris"`` and at the
emulator through ``[storage.gcs] endpoint_url``; its training data is served from the bucket too.
After training, the model must be in the bucket (looked at with plain google-cloud-storage) and the
project's local model cache is removed, so ``mldock deploy`` has to fetch the model from Cloud
Storage before serving it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from gcs_support import *  # noqa: F403 - the store fixtures
from mldock.testing.docker import require_docker

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MLDOCK = str(Path(sys.executable).parent / "mldock")


def mldock(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """The real console script, in the test's GCP sandbox (no credentials), no MLDOCK_* leaks."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLDOCK_") or k == "MLDOCK_REQUIRE_DOCKER"}
    result = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=1200, env=env, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}")
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_main_job_with_gcs_storage(gcs, gcs_emulator, make_gcs_bucket, tmp_path):
    engine = require_docker()
    bucket = make_gcs_bucket("iris")
    files = gcs.bucket(bucket)
    name = f"iris-{uuid.uuid4().hex[:8]}"  # images and containers of this name are ours alone
    mldock("init", name, "--template", "sklearn", "--no-input", cwd=tmp_path)
    project = tmp_path / name
    files.blob("datasets/iris/iris.csv").upload_from_filename(str(project / "data" / "iris.csv"))
    config = (project / "mldock.toml").read_text()
    assert 'train = "data/iris.csv"' in config
    config = config.replace('train = "data/iris.csv"', f'train = "gs://{bucket}/datasets/iris"')
    config += (f'\n[storage]\nuri = "gs://{bucket}/iris"\n\n'
               f'[storage.gcs]\nendpoint_url = "{gcs_emulator}"\n')
    (project / "mldock.toml").write_text(config)

    endpoint = f"iris-gcs-{uuid.uuid4().hex[:6]}"  # never clashes with another session's "iris"
    built: list[str] = []
    try:
        build = json.loads(mldock("build", "--json", cwd=project).stdout)
        if not build["skipped"]:  # an image that already existed is someone else's to remove
            built.append(build["tag"])
        run_id = mldock("train", cwd=project).stdout.strip().splitlines()[-1]

        # the model is in the bucket: its reference, its manifest and every file's blob
        ref_key = f"iris/refs/runs/{run_id}/model/.mldock-ref"
        ref = json.loads(files.blob(ref_key).download_as_bytes())
        assert ref["kind"] == "tree" and ref["size"] > 0

        def blob(digest: str) -> bytes:
            key = f"iris/blobs/sha256/{digest[:2]}/{digest[2:]}"
            return files.blob(key).download_as_bytes()

        manifest = json.loads(blob(ref["sha256"]))
        assert "mldock-model.json" in manifest and len(manifest) >= 2
        for entry in manifest.values():
            assert len(blob(entry["sha256"])) == entry["size"]
        run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
        assert run["lineage"]["inputs"]["train"]["uri"] == f"gs://{bucket}/datasets/iris"
        assert [(a["store"], a["key"]) for a in run["artifacts"]] == [
            (f"gs://{bucket}/iris", f"runs/{run_id}/model")]

        shutil.rmtree(project / ".mldock" / "models", ignore_errors=True)
        shutil.rmtree(project / ".mldock" / "runs", ignore_errors=True)  # no local copy anywhere
        exported = json.loads(mldock("runs", "export", run_id, str(tmp_path / "out"), "--json",
                                     cwd=project).stdout)  # verified download from the bucket
        assert exported["sha256"] == ref["sha256"] and exported["store"] == f"gs://{bucket}/iris"
        assert (tmp_path / "out" / "mldock-model.json").is_file()
        deploy = mldock("deploy", "--run", run_id, "--name", endpoint, "--port", str(free_port()),
                        cwd=project)
        assert f"fetching the model of run {run_id} from gs://{bucket}/iris" in deploy.stderr
        fetched = project / ".mldock" / "models" / run_id
        assert json.loads((fetched / "mldock-model.json").read_text())["run_id"] == run_id
        answer = json.loads(mldock("predict", "--data", "sample.json", "--name", endpoint,
                                   cwd=project).stdout)
        assert answer == {"predictions": ["setosa", "virginica"]}
    finally:
        mldock("undeploy", endpoint, cwd=project, check=False)
        labelled = {"label": f"mldock.endpoint={endpoint}"}
        for container in engine.containers.list(all=True, filters=labelled):
            container.remove(force=True)
        for tag in built:
            with contextlib.suppress(Exception):
                image_id = engine.images.get(tag).id
                engine.images.remove(tag, noprune=True)
                latest = f"{tag.rsplit(':', 1)[0]}:latest"
                if engine.images.get(latest).id == image_id:
                    engine.images.remove(latest, noprune=True)
        engine.close()
    gone = mldock("predict", "--data", "sample.json", "--name", endpoint, cwd=project, check=False)
    assert gone.returncode == 4
