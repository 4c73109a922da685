"""Data channels on Azurite: plain blobs fetched for local training (mirrored, re-fetched only
when changed, verified) and local folders staged once for Azure ML jobs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from blob_support import *  # noqa: F403 - the store fixtures
from mldock.cas import hash_tree
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.testing._common import snapshot


def upload(store, name: str, data: bytes, **kwargs) -> None:
    store.connection.container.get_blob_client(name).upload_blob(data, overwrite=True, **kwargs)


# --- fetch --------------------------------------------------------------------------------------
def test_fetch_one_blob(make_store, container, tmp_path):
    store = make_store()
    upload(store, "datasets/iris.csv", b"a,b\n1,2\n")
    out = store.fetch(f"az://{container}/datasets/iris.csv", tmp_path / "in")
    assert snapshot(Path(out)) == {"iris.csv": b"a,b\n1,2\n"}


def test_fetch_folder_mirrors_it_and_refetch_sends_only_changes(make_store, container,
                                                                 tmp_path):
    store = make_store()
    big = os.urandom((2 << 20) + 7)  # ranged, in parallel (1 MiB blocks)
    files = {"train/a.csv": b"1\n", "train/sub/b.csv": b"2\n", "train/big.bin": big,
             "other/x": b"not fetched"}
    for name, data in files.items():
        upload(store, f"ds/{name}", data)
    uri = f"az://{container}/ds/train"
    dest = tmp_path / "in"
    lines: list[str] = []
    store.fetch(uri, dest, progress=lines.append)
    assert snapshot(dest) == {"a.csv": b"1\n", "sub/b.csv": b"2\n", "big.bin": big}
    assert store.stats.bytes_received == len(big) + 4
    upload(store, "ds/train/a.csv", b"changed\n")
    store.connection.container.delete_blob("ds/train/sub/b.csv")
    store.fetch(uri, dest, progress=lines.append)
    assert snapshot(dest) == {"a.csv": b"changed\n", "big.bin": big}
    assert store.stats.bytes_received == len(big) + 4 + len(b"changed\n")
    assert any("1 new or changed" in line for line in lines)
    state = json.loads((tmp_path / "in.mldock-fetch.json").read_text())
    assert set(state["objects"]) == {"a.csv", "big.bin"}


def test_fetch_checks_the_content_md5(make_store, container, tmp_path):
    from azure.storage.blob import ContentSettings

    store = make_store()
    upload(store, "ds/f.csv", b"data")
    store.connection.container.get_blob_client("ds/f.csv").set_http_headers(
        ContentSettings(content_md5=bytearray(16)))
    with pytest.raises(MldockError, match="its MD5 does not match its Content-MD5"):
        store.fetch(f"az://{container}/ds", tmp_path / "in")
    assert not (tmp_path / "in" / "f.csv").exists()


def test_fetch_errors_name_the_uri(make_store, container, tmp_path):
    store = make_store()
    with pytest.raises(NotFoundError, match=f"nothing to fetch at az://{container}/nothing"):
        store.fetch(f"az://{container}/nothing", tmp_path / "in")
    with pytest.raises(NotFoundError, match="the container of az://no-such-container/ds"):
        store.fetch("az://no-such-container/ds", tmp_path / "in")
    upload(store, "odd/a", b"file")
    upload(store, "odd/a/b", b"and folder")
    with pytest.raises(MldockError, match="'a' is both a blob and a folder"):
        store.fetch(f"az://{container}/odd", tmp_path / "in")
    (tmp_path / "file").write_text("x")
    upload(store, "ok/x", b"x")
    with pytest.raises(UsageError, match="it is a file"):
        store.fetch(f"az://{container}/ok", tmp_path / "file")


# --- staging ------------------------------------------------------------------------------------
def test_stage_uploads_plain_files_once(make_store, container, azurite, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "train.csv").write_text("a,b\n")
    (data / "sub" / "big.bin").write_bytes(os.urandom((2 << 20) + 3))
    digest = hash_tree(data)[1]
    store = make_store(prefix="proj")
    uri = store.stage_data(data, digest)
    assert uri == f"az://{container}/proj/data/{digest}/"
    names = {b.name: b.size for b in store.connection.container.list_blobs(
        name_starts_with=f"proj/data/{digest}/")}
    assert names == {f"proj/data/{digest}/train.csv": 4,
                     f"proj/data/{digest}/sub/big.bin": (2 << 20) + 3}
    marker = store.connection.container.download_blob(f"proj/staged/{digest}.json").readall()
    assert set(json.loads(marker)) == {"train.csv", "sub/big.bin"}
    assert store.https_url(uri) == f"{azurite.blob_endpoint}/{container}/proj/data/{digest}/"
    lines: list[str] = []
    again = make_store(prefix="proj")
    assert again.stage_data(data, digest, progress=lines.append) == uri
    assert again.stats.bytes_sent == 0
    assert lines == [f"data {digest[:12]} already staged at {uri}"]
    fetched = again.fetch(uri.rstrip("/"), tmp_path / "back")
    assert snapshot(Path(fetched)) == snapshot(data)


def test_interrupted_stage_is_redone(make_store, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "x.csv").write_text("1\n")
    digest = hash_tree(data)[1]
    store = make_store(prefix="proj")
    upload(store, f"proj/data/{digest}/x.csv", b"partial")  # no marker: interrupted
    store.stage_data(data, digest)
    blob = store.connection.container.download_blob(f"proj/data/{digest}/x.csv").readall()
    assert blob == b"1\n"
    assert store.stats.bytes_sent == 2
