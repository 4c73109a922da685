"""The s3 store walks model folders with mldock.trees, against S3 on moto.

A link out of the folder (``env -> /proc/self/environ``) must be refused before anything is
uploaded; links inside are stored as the content they point at; a FIFO never hangs the upload.
"""

from __future__ import annotations

import os
import threading

import pytest
from mldock.trees import UnsafeTreeError

SECRET = b"H6_S3_SECRET_MARKER_9a8b"


@pytest.fixture
def model(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 1000)
    (folder / "sub" / "config.json").write_text('{"a": 1}')
    (tmp_path / "secret.txt").write_bytes(SECRET)
    return folder


def objects(s3, bucket: str, prefix: str) -> list[str]:
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return [item["Key"] for item in listed.get("Contents", [])]


def bodies(s3, bucket: str, prefix: str) -> list[bytes]:
    return [s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            for key in objects(s3, bucket, prefix)]


def test_link_to_proc_environ_is_refused_and_nothing_uploaded(make_store, s3, bucket, model):
    os.symlink("/proc/self/environ", model / "env")
    store = make_store()
    with pytest.raises(UnsafeTreeError) as info:
        store.put_tree(model, "runs/1/model")
    assert info.value.message == ("model folder contains a link that leaves it:"
                                  " env -> /proc/self/environ")
    assert objects(s3, bucket, store.location.prefix) == []
    assert store.stats.bytes_sent == 0


@pytest.mark.parametrize("make", [
    pytest.param(lambda m: os.symlink(m.parent / "secret.txt", m / "abs"), id="absolute"),
    pytest.param(lambda m: os.symlink("../../secret.txt", m / "sub" / "rel"), id="dotdot"),
    pytest.param(lambda m: os.symlink(m.parent, m / "sub" / "dir"), id="folder-outside"),
    pytest.param(lambda m: (os.symlink("b", m / "a"), os.symlink("../secret.txt", m / "b")),
                 id="chain"),
])
def test_other_links_out_are_refused(make_store, s3, bucket, model, make):
    make(model)
    store = make_store()
    with pytest.raises(UnsafeTreeError, match="contains a link that leaves it"):
        store.put_tree(model, "m")
    assert not any(SECRET in body for body in bodies(s3, bucket, store.location.prefix))
    assert not store.exists("m")


def test_links_inside_roundtrip_as_files_stored_once(make_store, model, tmp_path):
    os.symlink("weights.bin", model / "latest.bin")
    os.symlink("sub", model / "current")
    store = make_store()
    store.put_tree(model, "m")
    assert store.stats.blobs_written == 3  # weights, config, manifest: the links add no blob
    out = store.get_tree("m", tmp_path / "out")
    assert (out / "latest.bin").read_bytes() == b"w" * 1000
    assert (out / "current" / "config.json").read_text() == '{"a": 1}'
    assert not any(p.is_symlink() for p in out.rglob("*"))


def test_fifo_is_refused_without_hanging(make_store, model):
    os.mkfifo(model / "pipe")
    store = make_store()
    box: list = []

    def run() -> None:
        try:
            box.append(store.put_tree(model, "m"))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert box, "put_tree hung on a FIFO"
    assert isinstance(box[0], UnsafeTreeError) and "FIFO" in box[0].message
