"""Data channels from plain Cloud Storage objects (fetched for local training) and local data staged
for remote jobs, on the GCS emulator; and a whole ``mldock train --no-container`` whose data and
model live in the bucket."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from gcs_support import *  # noqa: F403 - the store fixtures
from mldock.cas import hash_tree
from mldock.errors import MldockError, NotFoundError
from mldock.testing._common import snapshot
from mldock_gcp.fetch import STATE_SUFFIX, crc32c_of

MB = 1 << 20


@pytest.fixture
def data_prefix(gcs, gcs_bucket):
    """A fresh prefix holding a small data set: two CSVs in nested folders and a folder marker."""
    prefix = f"data-{uuid.uuid4().hex[:8]}"
    objects = {"train.csv": b"x,y\n1,2\n2,4\n", "extra/more.csv": b"x,y\n3,6\n", "extra/": b""}
    for rel, body in objects.items():
        gcs.bucket(gcs_bucket).blob(f"{prefix}/{rel}").upload_from_string(body)
    return prefix


def lines(progress: list[str]) -> str:
    return "\n".join(progress)


# --- fetch --------------------------------------------------------------------------------------


def test_fetch_one_object(make_store, gcs_bucket, data_prefix, tmp_path):
    store = make_store()
    dest = store.fetch(f"gs://{gcs_bucket}/{data_prefix}/train.csv", tmp_path / "ch")
    assert snapshot(dest) == {"train.csv": b"x,y\n1,2\n2,4\n"}
    assert store.stats.bytes_sent == 0  # fetching is not storing


def test_fetch_prefix_mirrors_it_and_refetch_gets_only_changes(make_store, gcs, gcs_bucket,
                                                               data_prefix, tmp_path):
    store = make_store()
    uri = f"gs://{gcs_bucket}/{data_prefix}"
    dest = tmp_path / "cache" / "ch"
    progress: list[str] = []
    store.fetch(uri, dest, progress=progress.append)
    assert snapshot(dest) == {"train.csv": b"x,y\n1,2\n2,4\n", "extra/more.csv": b"x,y\n3,6\n"}
    assert (tmp_path / "cache" / f"ch{STATE_SUFFIX}").is_file()  # beside the data, not in it
    assert "2 new or changed" in lines(progress)
    inode = (dest / "train.csv").stat().st_ino

    progress.clear()
    store.fetch(uri, dest, progress=progress.append)
    assert "0 new or changed" in lines(progress)
    assert (dest / "train.csv").stat().st_ino == inode  # untouched

    bucket = gcs.bucket(gcs_bucket)
    bucket.blob(f"{data_prefix}/extra/more.csv").upload_from_string(b"x,y\n3,7\n")  # new gen.
    bucket.blob(f"{data_prefix}/train.csv").delete()
    bucket.blob(f"{data_prefix}/new.csv").upload_from_string(b"x,y\n0,0\n")
    progress.clear()
    store.fetch(uri, dest, progress=progress.append)
    assert "2 new or changed" in lines(progress)
    assert snapshot(dest) == {"extra/more.csv": b"x,y\n3,7\n", "new.csv": b"x,y\n0,0\n"}


def test_fetch_of_a_big_object_in_ranges_checks_its_crc32c(make_store, gcs, gcs_bucket,
                                                           tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(5 * MB))
    name = f"big-{uuid.uuid4().hex[:8]}/big.bin"
    gcs.bucket(gcs_bucket).blob(name).upload_from_filename(str(source))
    listed = gcs.bucket(gcs_bucket).get_blob(name)
    assert crc32c_of(source) == listed.crc32c  # the form the listing gives
    store = make_store()
    dest = store.fetch(f"gs://{gcs_bucket}/{name}", tmp_path / "ch")
    assert (dest / "big.bin").read_bytes() == source.read_bytes()
    assert store.stats.ranges_fetched == 4


def test_crc32c_of_matches_the_published_check_value(tmp_path):
    """CRC32C("123456789") = 0xE3069283 (RFC 3720's check value), base64 of big-endian bytes."""
    (tmp_path / "f").write_bytes(b"123456789")
    assert crc32c_of(tmp_path / "f") == base64.b64encode(bytes.fromhex("e3069283")).decode()


def test_fetch_errors_name_the_uri(make_store, gcs, gcs_bucket, tmp_path):
    store = make_store()
    with pytest.raises(NotFoundError, match="nothing to fetch at gs://"):
        store.fetch(f"gs://{gcs_bucket}/no/such/data", tmp_path / "a")
    with pytest.raises(NotFoundError, match="bucket 'no-such-bucket-x1' does not exist"):
        store.fetch("gs://no-such-bucket-x1/data", tmp_path / "b")
    prefix = f"odd-{uuid.uuid4().hex[:8]}"
    gcs.bucket(gcs_bucket).blob(f"{prefix}/a//b.csv").upload_from_string(b"1")
    with pytest.raises(MldockError, match="not a safe relative path"):
        store.fetch(f"gs://{gcs_bucket}/{prefix}", tmp_path / "c")
    (tmp_path / "file").write_text("x")
    with pytest.raises(MldockError, match="it is a file"):
        store.fetch(f"gs://{gcs_bucket}/{prefix}", tmp_path / "file")


# --- staging ------------------------------------------------------------------------------------


def test_stage_uploads_plain_files_once(make_store, gcs, gcs_bucket, tmp_path):
    folder = tmp_path / "train"
    (folder / "nested").mkdir(parents=True)
    (folder / "iris.csv").write_bytes(b"a,b\n1,2\n")
    (folder / "nested" / "more.csv").write_bytes(b"a,b\n3,4\n")
    (folder / "big.bin").write_bytes(os.urandom(3 * MB))  # streamed from disk
    digest = hash_tree(folder)[1]
    store = make_store(f"stage-{uuid.uuid4().hex[:8]}")
    progress: list[str] = []

    uri = store.stage_data(folder, digest, progress=progress.append)
    root = store.location.key("data", digest) + "/"
    assert uri == f"gs://{gcs_bucket}/{root}"
    # exactly the files, under their own names: what Vertex AI reads under /gcs/<bucket>/…
    staged = {blob.name[len(root):]: blob.download_as_bytes()
              for blob in gcs.list_blobs(gcs_bucket, prefix=root)}
    assert staged == snapshot(folder)
    marker = gcs.bucket(gcs_bucket).get_blob(store.location.key("staged", f"{digest}.json"))
    assert set(json.loads(marker.download_as_bytes())) == {"iris.csv", "nested/more.csv",
                                                          "big.bin"}
    assert list(gcs.list_blobs(gcs_bucket, prefix=store.location.key("tmp") + "/")) == []

    sent = store.stats.bytes_sent
    assert store.stage_data(folder, digest, progress=progress.append) == uri
    assert store.stats.bytes_sent == sent  # nothing uploaded twice
    assert "already staged" in progress[-1]


def test_interrupted_stage_is_redone(make_store, gcs, gcs_bucket, tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    (folder / "iris.csv").write_bytes(b"a\n1\n")
    digest = hash_tree(folder)[1]
    store = make_store(f"stage-{uuid.uuid4().hex[:8]}")
    root = store.location.key("data", digest) + "/"
    gcs.bucket(gcs_bucket).blob(root + "iris.csv").upload_from_string(b"partial")  # no marker
    store.stage_data(folder, digest)
    assert gcs.bucket(gcs_bucket).blob(root + "iris.csv").download_as_bytes() == b"a\n1\n"


# --- through mldock itself ----------------------------------------------------------------------


def mldock(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    result = subprocess.run([sys.executable, "-c", "from mldock.cli.main import main; main()",
                             *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
                            check=False)
    assert result.returncode == 0, f"mldock {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def test_train_without_container_reads_data_from_gcs_and_stores_the_model_there(
        gcs, gcs_bucket, gcs_emulator, tmp_path):
    """The minimal template, trained in-process: [data] train is a gs:// prefix (fetched through
    core's channels into its cache) and [storage] uri a gs:// store (the run's model tree)."""
    mldock("init", "demo", "--template", "minimal", "--no-input", cwd=tmp_path)
    project = tmp_path / "demo"
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    gcs.bucket(gcs_bucket).blob(f"{prefix}/data/train.csv").upload_from_filename(
        str(project / "data" / "train.csv"))
    config = (project / "mldock.toml").read_text()
    data_uri = f"gs://{gcs_bucket}/{prefix}/data"
    config = config.replace('train = "data/train.csv"', f'train = "{data_uri}"')
    config += (f'\n[storage]\nuri = "gs://{gcs_bucket}/{prefix}/store"\n\n'
               f'[storage.gcs]\nendpoint_url = "{gcs_emulator}"\n')
    (project / "mldock.toml").write_text(config)

    run_id = mldock("train", "--no-container", "-q", cwd=project).stdout.strip().splitlines()[-1]
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project).stdout)
    assert run["status"] == "finished"
    assert run["lineage"]["inputs"]["train"]["uri"] == data_uri
    (model,) = [a for a in run["artifacts"] if a["key"] == f"runs/{run_id}/model"]
    assert model["store"] == f"gs://{gcs_bucket}/{prefix}/store"
    listed = [b.name for b in gcs.list_blobs(gcs_bucket,
                                             prefix=f"{prefix}/store/refs/runs/{run_id}/")]
    assert listed == [f"{prefix}/store/refs/runs/{run_id}/model/.mldock-ref"]

    from mldock_gcp.config import GcsOptions
    from mldock_gcp.store import GcsArtifactStore

    store = GcsArtifactStore(f"gs://{gcs_bucket}/{prefix}/store",
                             GcsOptions(endpoint_url=gcs_emulator))
    got = Path(store.get_tree(f"runs/{run_id}/model", tmp_path / "model"))
    assert json.loads((got / "mldock-model.json").read_text())["run_id"] == run_id
