"""SageMaker packing of a local model folder walks it with mldock.trees: nothing outside it is read.

A model folder trained locally (or fetched from an ``s3://`` tree) is packed into ``model.tar.gz``
for SageMaker. A link out of it (``env -> /proc/self/environ``) would put the host's environment
into the archive SageMaker serves; a FIFO would hang the packer.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import threading
import time
import uuid

import pytest
from mldock.errors import MldockError
from mldock.interfaces import DeployRequest
from mldock.trees import UnsafeTreeError
from mldock_aws.modeldata import pack

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/proj@sha256:" + "cd" * 32
SECRET = b"H6_AWS_SECRET_MARKER_0c1d"


@pytest.fixture
def model_dir(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"weights" * 50)
    (folder / "sub" / "labels.txt").write_text("a\nb\n")
    files = {rel: hashlib.sha256((folder / rel).read_bytes()).hexdigest()
             for rel in ("model.bin", "sub/labels.txt")}
    (folder / "mldock-model.json").write_text(json.dumps(
        {"format": 1, "predictor": "p.predict:Predictor", "run_id": "run1",
         "created_at": time.time(), "files": files}))
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return folder


def test_pack_refuses_a_link_to_proc_environ_and_writes_no_archive(model_dir, tmp_path):
    os.symlink("/proc/self/environ", model_dir / "env")
    with pytest.raises(UnsafeTreeError) as info:
        pack(model_dir, tmp_path / "model.tar.gz")
    assert info.value.message == ("model folder contains a link that leaves it:"
                                  " env -> /proc/self/environ")
    assert not (tmp_path / "model.tar.gz").exists()


@pytest.mark.parametrize("target", ["../../secret.txt", "../..", "/etc"])
def test_pack_refuses_other_links_out(model_dir, tmp_path, target):
    os.symlink(target, model_dir / "sub" / "out")
    with pytest.raises(UnsafeTreeError, match="link that leaves it: sub/out -> "):
        pack(model_dir, tmp_path / "model.tar.gz")


def test_pack_archives_links_inside_as_regular_files(model_dir, tmp_path):
    os.symlink("model.bin", model_dir / "latest.bin")
    os.symlink("sub", model_dir / "current")
    pack(model_dir, tmp_path / "model.tar.gz")
    with tarfile.open(tmp_path / "model.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert all(m.isreg() for m in members.values())
        assert tar.extractfile(members["latest.bin"]).read() == b"weights" * 50
        assert "current/labels.txt" in members
        assert not any(SECRET in tar.extractfile(m).read() for m in members.values())


def test_pack_refuses_a_fifo_without_hanging(model_dir, tmp_path):
    os.mkfifo(model_dir / "pipe")
    box: list = []

    def run() -> None:
        try:
            box.append(pack(model_dir, tmp_path / "model.tar.gz"))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert box, "pack hung on a FIFO"
    assert isinstance(box[0], UnsafeTreeError) and "FIFO" in box[0].message


def test_deploy_of_a_folder_with_a_link_out_uploads_nothing(deployer, aws, bucket, model_dir):
    """Through the deployer, against S3 on moto: the refusal comes before any upload."""
    os.symlink(model_dir.parent / "secret.txt", model_dir / "notes.txt")
    run = f"run-{uuid.uuid4().hex[:8]}"
    name = f"ep-{uuid.uuid4().hex[:10]}"
    request = DeployRequest(name=name, image=IMAGE, model_uri=f"s3://{bucket}/proj/runs/{run}/model",
                            run_id=run, options={"project": "proj", "port": None,
                                                 "model_dir": str(model_dir)})
    with pytest.raises(MldockError, match="model folder contains a link that leaves it: notes"):
        deployer.deploy(request)
    listed = aws("s3").list_objects_v2(Bucket=bucket, Prefix=f"proj/sagemaker/models/{run}/")
    assert listed.get("KeyCount", 0) == 0
