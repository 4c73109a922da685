"""The ``gs://`` store on the GCS emulator: what it writes where, what it sends, how it fails.

Everything is looked at with a plain google-cloud-storage client, as a user would in the console:
the layout in the bucket, the requests a re-push costs, big files going in parallel parts and
ranges (1 MiB chunks here), files that change while they are sent, and the one-line errors for a
missing bucket, a closed port and absent credentials.
"""

from __future__ import annotations

import json
import os
import socket
import uuid

import pytest
from gcs_support import *  # noqa: F403 - the store fixtures
from mldock.cas import BlobSource, TransferProgress, sha256_bytes
from mldock.errors import BackendUnavailableError, MldockError, NotFoundError
from mldock.interfaces import null_progress
from mldock_gcp.config import GcsOptions
from mldock_gcp.store import GcsArtifactStore

MB = 1 << 20


def names(gcs, bucket: str, prefix: str) -> list[str]:
    return sorted(blob.name for blob in gcs.list_blobs(bucket, prefix=prefix))


def make_tree(root, count: int = 20, size: int = 2000):
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (root / f"part-{i:03d}.bin").write_bytes(os.urandom(size))
    return root


def meter() -> TransferProgress:
    return TransferProgress(null_progress, "uploading", "test", 0)


# --- layout -------------------------------------------------------------------------------------


def test_layout_in_the_bucket(make_store, gcs, gcs_bucket, tmp_path):
    store = make_store("iris")
    tree = tmp_path / "model"
    tree.mkdir()
    (tree / "model.pkl").write_bytes(b"weights")
    (tree / "sub").mkdir()
    (tree / "sub" / "meta.json").write_text("{}")
    ref = store.put_tree(tree, "runs/1/model")
    digest = sha256_bytes(b"weights")
    empty = sha256_bytes(b"{}")
    expected = {"iris/refs/runs/1/model/.mldock-ref",
                f"iris/blobs/sha256/{digest[:2]}/{digest[2:]}",
                f"iris/blobs/sha256/{ref.sha256[:2]}/{ref.sha256[2:]}",
                f"iris/blobs/sha256/{empty[:2]}/{empty[2:]}"}
    assert set(names(gcs, gcs_bucket, "iris/")) == expected
    bucket = gcs.bucket(gcs_bucket)
    reference = bucket.get_blob("iris/refs/runs/1/model/.mldock-ref")
    assert reference.cache_control == "no-store"  # a public bucket never serves an old one
    assert reference.content_type == "application/json"
    body = json.loads(reference.download_as_bytes())
    assert (body["kind"], body["sha256"], body["size"]) == ("tree", ref.sha256, 9)
    manifest = json.loads(bucket.blob(store.blob_key(ref.sha256)).download_as_bytes())
    assert manifest["model.pkl"]["sha256"] == digest
    assert manifest["sub/meta.json"]["size"] == 2
    assert ref.uri.startswith(f"gs://{gcs_bucket}/iris")
    assert store.ref_location("runs/1/model") == \
        f"gs://{gcs_bucket}/iris/refs/runs/1/model/.mldock-ref"


# --- deduplication ------------------------------------------------------------------------------


def test_unchanged_tree_costs_one_lookup_and_one_write(make_store, tmp_path):
    store = make_store()
    tree = make_tree(tmp_path / "t", count=40)
    store.put_tree(tree, "m")
    first = (store.stats.bytes_sent, store.stats.blobs_written)
    assert first[1] == 41  # 40 files and the manifest
    assert store.stats.requests_list >= 1 and store.stats.requests_head <= 2  # one listing
    heads = store.stats.requests_head
    store.put_tree(tree, "m")
    assert (store.stats.bytes_sent, store.stats.blobs_written) == first
    assert store.stats.requests_head == heads + 1  # the manifest's lookup, nothing else

    (tree / "part-007.bin").write_bytes(os.urandom(2000))
    store.put_tree(tree, "m2")
    sent = store.stats.bytes_sent - first[0]
    assert 2000 < sent < 2000 + 8000  # the changed file and the new manifest (~5 KB)
    assert store.stats.blobs_written == first[1] + 2  # the changed file and the new manifest


def test_same_content_under_two_keys_is_stored_once(make_store, gcs, gcs_bucket, tmp_path):
    store = make_store("dedup")
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(3000))
    store.put_file(source, "a")
    store.put_file(source, "b/c")
    assert store.stats.blobs_written == 1 and store.stats.blobs_reused == 1
    assert len(names(gcs, gcs_bucket, "dedup/blobs/")) == 1
    assert store.list() == ["a", "b/c"]


# --- big files ----------------------------------------------------------------------------------


def test_big_file_is_streamed_in_one_request_and_comes_back_in_ranges(make_store, gcs,
                                                                     gcs_bucket, tmp_path):
    """The default: one resumable upload streamed from disk; then ``max_concurrency`` ranges."""
    store = make_store("streamed")
    data = os.urandom(5 * MB + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    ref = store.put_file(tmp_path / "big.bin", "models/big")
    assert store.stats.parts_sent == 0
    blob = gcs.bucket(gcs_bucket).get_blob(store.blob_key(ref.sha256))
    assert blob.size == len(data) and blob.component_count is None  # a plain object
    assert blob.md5_hash  # (a composite one would have none)
    out = store.get_file("models/big", tmp_path / "out.bin")
    assert out.read_bytes() == data
    assert store.stats.ranges_fetched == 4  # max_concurrency ranges of ≥ chunk_mb


def test_a_dropped_upload_resumes_where_it_broke_off(make_store, cutting_proxy, gcs,
                                                     gcs_bucket, tmp_path):
    """The connection dies after ~1.5 MiB of a 4 MiB stream: the session keeps what arrived,
    and the upload goes on from there (not from zero, not as a second object)."""
    proxy = cutting_proxy(3 * MB // 2)
    store = make_store("resumed", endpoint_url=proxy.url)
    data = os.urandom(4 * MB)
    (tmp_path / "big.bin").write_bytes(data)
    progress: list[str] = []
    ref = store.put_file(tmp_path / "big.bin", "m", progress=progress.append)
    assert proxy.cuts == 1
    assert proxy.uploaded < len(data) + MB  # resumed: the first 1.5 MiB were not sent again
    stored = gcs.bucket(gcs_bucket).blob(store.blob_key(ref.sha256)).download_as_bytes()
    assert stored == data


def test_bytes_damaged_on_the_way_are_not_stored(make_store, cutting_proxy, gcs, gcs_bucket,
                                                 tmp_path):
    """One bit flipped in a streamed upload's body: the stored object's CRC32C is not the one
    of the bytes read, so it is deleted and nothing is published."""
    proxy = cutting_proxy(2 * MB, flip=True)
    store = make_store("flipped", endpoint_url=proxy.url)
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * MB))
    with pytest.raises(MldockError, match=r"CRC32C") as info:
        store.put_file(tmp_path / "big.bin", "m")
    assert proxy.cuts == 1 and "\n" not in str(info.value)
    assert names(gcs, gcs_bucket, "flipped/") == []  # no blob, no reference


def test_parallel_composite_upload_when_asked(make_store, gcs, gcs_bucket, tmp_path):
    store = make_store("big", parallel_upload_mb=2)
    data = os.urandom(5 * MB + 12345)
    (tmp_path / "big.bin").write_bytes(data)
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(MB + 1))  # below parallel_upload_mb: one stream
    store.put_file(small, "models/small")
    assert store.stats.parts_sent == 0
    ref = store.put_file(tmp_path / "big.bin", "models/big")
    assert store.stats.parts_sent == 4  # max_concurrency parts of ≥ chunk_mb
    blob = gcs.bucket(gcs_bucket).get_blob(store.blob_key(ref.sha256))
    assert blob.size == len(data) and blob.component_count in (None, 4)
    assert names(gcs, gcs_bucket, "big/tmp/") == []  # the parts are gone
    out = store.get_file("models/big", tmp_path / "out.bin")
    assert out.read_bytes() == data
    assert store.stats.ranges_fetched == 4
    assert store.stats.bytes_received == len(data)


def test_one_concurrency_sends_one_request(make_store, tmp_path):
    store = make_store(max_concurrency=1)
    (tmp_path / "big.bin").write_bytes(os.urandom(3 * MB))
    store.put_file(tmp_path / "big.bin", "x")
    store.get_file("x", tmp_path / "out.bin")
    assert store.stats.parts_sent == 0 and store.stats.ranges_fetched == 0
    assert (tmp_path / "out.bin").read_bytes() == (tmp_path / "big.bin").read_bytes()


@pytest.mark.parametrize("parallel_upload_mb", [None, 2])
def test_a_file_that_changes_while_sent_is_not_stored(make_store, gcs, gcs_bucket, tmp_path,
                                                       parallel_upload_mb):
    store = make_store("changing", parallel_upload_mb=parallel_upload_mb)
    small = tmp_path / "small.bin"
    small.write_bytes(b"before")
    stale = BlobSource.of_file(small)
    small.write_bytes(b"after!")  # same size, other bytes: the name no longer fits
    with pytest.raises(MldockError, match="changed while it was being stored"):
        store.put_blobs([stale], meter())
    assert not gcs.bucket(gcs_bucket).blob(store.blob_key(stale.sha256)).exists()

    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * MB))
    source = BlobSource.of_file(big)
    os.utime(big, ns=(source.signature[1] + 10**9, source.signature[1] + 10**9))
    with pytest.raises(MldockError, match="changed while it was being stored"):
        store.put_blobs([source], meter())
    assert not gcs.bucket(gcs_bucket).blob(store.blob_key(source.sha256)).exists()
    assert names(gcs, gcs_bucket, "changing/tmp/") == []


def test_a_damaged_blob_of_another_size_is_replaced(make_store, gcs, gcs_bucket, tmp_path):
    store = make_store("damaged")
    source = tmp_path / "f.bin"
    source.write_bytes(os.urandom(4000))
    ref = store.put_file(source, "m")
    gcs.bucket(gcs_bucket).blob(store.blob_key(ref.sha256)).upload_from_string(b"trunc")
    with pytest.raises(MldockError, match=r"corrupt|content hash"):
        store.get_file("m", tmp_path / "bad.bin")
    assert not (tmp_path / "bad.bin").exists()
    store.put_file(source, "m")  # the wrong size counts as absent: stored again
    assert store.get_file("m", tmp_path / "good.bin").read_bytes() == source.read_bytes()


# --- errors -------------------------------------------------------------------------------------


def test_missing_bucket_is_named(gcs_options, tmp_path):
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:8]}"
    store = GcsArtifactStore(f"gs://{bucket}/iris", gcs_options)
    sample = tmp_path / "f.bin"
    sample.write_bytes(b"x")
    for call in (lambda: store.put_file(sample, "m"), lambda: store.get_file("m", tmp_path),
                 lambda: store.put_tree(tmp_path, "t"), lambda: store.exists("m"), store.list,
                 lambda: store.delete("m")):
        with pytest.raises(NotFoundError) as info:
            call()
        assert f"bucket {bucket!r} does not exist" in info.value.message
        assert f"gcloud storage buckets create gs://{bucket}" in info.value.hint
        assert "\n" not in str(info.value)
    checks = {check.name: check for check in store.check()}
    assert checks["GCS credentials"].ok
    assert not checks["GCS bucket"].ok and bucket in checks["GCS bucket"].detail


def test_missing_key_is_not_a_missing_bucket(make_store, tmp_path):
    with pytest.raises(NotFoundError, match="no artifact 'nothing'"):
        make_store().get_file("nothing", tmp_path / "x")


def test_closed_port_is_named(gcs_bucket, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    store = GcsArtifactStore(f"gs://{gcs_bucket}/x",
                             GcsOptions(endpoint_url=f"http://127.0.0.1:{port}"))
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(BackendUnavailableError) as info:
        store.put_file(tmp_path / "f", "m")
    assert "Google Cloud is not reachable" in info.value.message
    assert f"gs://{gcs_bucket}/x" in info.value.message and "endpoint_url" in info.value.hint
    checks = {c.name: c for c in store.check()}
    assert not checks["GCS bucket"].ok and "not reachable" in checks["GCS bucket"].detail


def test_no_credentials_for_google_itself(gcs_bucket, tmp_path):
    """No emulator, no endpoint: Google's endpoint needs credentials, and the sandbox has none."""
    store = GcsArtifactStore(f"gs://{gcs_bucket}/x")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(MldockError) as info:
        store.put_file(tmp_path / "f", "m")
    assert info.value.message == ("cannot find Google Cloud credentials: no Google Cloud"
                                  " credentials found")
    assert "gcloud auth application-default login" in info.value.hint
    checks = store.check()
    assert [(c.name, c.ok) for c in checks] == [("GCS credentials", False)]


def test_emulator_variable_means_anonymous_requests(gcs_emulator, gcs_bucket, monkeypatch,
                                                    tmp_path):
    """``STORAGE_EMULATOR_HOST`` (as the Google libraries read it) is enough: no credentials."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.removeprefix("http://"))
    store = GcsArtifactStore(f"gs://{gcs_bucket}/env")
    (tmp_path / "f").write_bytes(b"hello")
    store.put_file(tmp_path / "f", "m")
    assert store.get_file("m", tmp_path / "g").read_bytes() == b"hello"
    assert store.connection.endpoint == gcs_emulator
    assert store.connection.identity.source == "anonymous"


def test_check_is_healthy(make_store, gcs_emulator):
    checks = make_store().check()
    assert [(c.name, c.ok) for c in checks] == [
        ("GCS credentials", True), ("GCS bucket", True), ("GCS artifact store", True)]
    assert gcs_emulator in checks[1].detail and "anonymous" in checks[0].detail
