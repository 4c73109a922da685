"""Interrupted uploads and concurrent writers, with real processes killed and racing on moto."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from mldock.cas import hash_tree, manifest_bytes
from mldock.errors import MldockError, NotFoundError
from mldock.testing._common import snapshot

KEY = "runs/1/model"

PUT_TREE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mldock_s3.config import S3Options
    from mldock_s3.store import S3ArtifactStore

    uri, endpoint, source, key = sys.argv[1:5]
    store = S3ArtifactStore(uri, S3Options(endpoint_url=endpoint, max_concurrency=1,
                                           multipart_threshold_mb=5, multipart_chunk_mb=5))
    for _ in range(int(sys.argv[5]) if len(sys.argv) > 5 else 1):
        store.put_tree(Path(source), key)
    print("done", flush=True)
""")


def make_tree(root: Path, files: int, size: int, seed: str = "") -> Path:
    """``files`` files of distinct random content (so every one is its own blob)."""
    for i in range(files):
        folder = root / f"d{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:03d}.bin").write_bytes(seed.encode() + os.urandom(size))
    return root


def start_put_tree(store, moto, source: Path, key: str = KEY, repeat: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PUT_TREE, store.uri, moto.url, str(source), key,
                             str(repeat)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def blob_keys(s3, store) -> set[str]:
    prefix = store.location.key("blobs") + "/"
    keys = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=store.location.bucket,
                                                             Prefix=prefix):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    return keys


def wait_until(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the writer ended before it could be interrupted: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("the writer never got far enough to be interrupted")
        time.sleep(0.01)


def assert_invisible(store, tmp_path: Path) -> None:
    assert not store.exists(KEY)
    assert store.list() == []
    with pytest.raises(NotFoundError):
        store.get_tree(KEY, tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_killed_put_tree_publishes_nothing_and_a_retry_sends_only_the_rest(
        make_store, moto, s3, tmp_path):
    """SIGKILL a writer after some blobs: nothing is visible; the retry uploads only the others."""
    source = make_tree(tmp_path / "src", files=120, size=64 << 10)
    store = make_store()
    writer = start_put_tree(store, moto, source)
    wait_until(lambda: len(blob_keys(s3, store)) >= 10, writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)

    assert_invisible(store, tmp_path)
    stored = {key.rsplit("/", 2)[-2] + key.rsplit("/", 1)[-1] for key in blob_keys(s3, store)}
    manifest, digest = hash_tree(source)
    assert 10 <= len(stored) < len(manifest), "the kill did not land mid-way"
    assert digest not in stored  # the manifest is never written before its files

    retry = make_store(prefix=store.location.prefix)
    ref = retry.put_tree(source, KEY)
    missing = [e for e in manifest.values() if e["sha256"] not in stored]
    assert retry.stats.blobs_written == len(missing) + 1  # + the manifest
    assert retry.stats.bytes_sent == (sum(e["size"] for e in missing)
                                      + len(manifest_bytes(manifest)))
    assert ref.sha256 == digest
    assert snapshot(Path(retry.get_tree(KEY, tmp_path / "out"))) == snapshot(source)


def test_killed_multipart_upload_leaves_no_object(make_store, moto, s3, tmp_path):
    """SIGKILL a writer while a big file is in flight as parts: no blob, no artifact; retry ok."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "weights.bin").write_bytes(os.urandom(40 << 20))  # 8 parts of 5 MiB
    store = make_store()
    writer = start_put_tree(store, moto, source)
    bucket = store.location.bucket

    def parts_in_flight() -> bool:
        uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=store.location.prefix)
        for upload in uploads.get("Uploads", []):
            if s3.list_parts(Bucket=bucket, Key=upload["Key"],
                             UploadId=upload["UploadId"]).get("Parts"):
                return True
        return False

    wait_until(parts_in_flight, writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)

    assert_invisible(store, tmp_path)
    assert blob_keys(s3, store) == set()  # parts of an unfinished upload are no object
    retry = make_store(prefix=store.location.prefix)
    retry.put_tree(source, KEY)
    assert snapshot(Path(retry.get_tree(KEY, tmp_path / "out"))) == snapshot(source)


def test_concurrent_writers_in_threads_publish_whole_trees(make_store, tmp_path):
    """Four threads write four versions of one key at once while a reader polls: every read
    and the final state is exactly one version, and the reference's hash is that version's."""
    versions = {}
    for name in "abcd":
        root = make_tree(tmp_path / name, files=25, size=2 << 10, seed=name)
        versions[name] = snapshot(root)
    digests = {hash_tree(tmp_path / name)[1]: name for name in "abcd"}
    done, errors, reads = threading.Event(), [], [0]

    def writer(name: str) -> None:
        store = make_store(prefix=prefix)
        for _ in range(3):
            store.put_tree(tmp_path / name, KEY)

    def reader() -> None:
        store = make_store(prefix=prefix)
        n, last = 0, False
        while not last:
            last = done.is_set()  # one more read after the writers finished
            n += 1
            if not store.exists(KEY):
                continue
            got = snapshot(Path(store.get_tree(KEY, tmp_path / "reads" / str(n))))
            reads[0] += 1
            if got not in versions.values():
                errors.append(f"read {n}: a torn tree of {len(got)} files")

    prefix = make_store().location.prefix
    threads = [threading.Thread(target=writer, args=(name,)) for name in "abcd"]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    done.set()
    watcher.join(timeout=300)
    assert not errors, errors[:3]
    assert reads[0] >= 1
    final = make_store(prefix=prefix)
    got = snapshot(Path(final.get_tree(KEY, tmp_path / "final")))
    assert got in versions.values()
    assert digests[final.stat(KEY).sha256] == next(n for n, v in versions.items() if v == got)


def test_concurrent_writer_processes_publish_whole_trees(make_store, moto, tmp_path):
    """Three processes race on one key (each writing twice): the result is one complete tree."""
    store = make_store()
    sources = {name: make_tree(tmp_path / name, files=30, size=4 << 10, seed=name)
               for name in "xyz"}
    writers = [start_put_tree(store, moto, source, repeat=2) for source in sources.values()]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    got = snapshot(Path(store.get_tree(KEY, tmp_path / "out")))
    assert got in [snapshot(source) for source in sources.values()]
    assert store.list() == [KEY]


@pytest.mark.parametrize("size", [64 << 10, 12 << 20], ids=["one-request", "multipart"])
def test_source_changed_during_upload_publishes_nothing(make_store, s3, tmp_path, size):
    """A file rewritten between hashing and the end of its upload is refused: the blob that no
    longer matches its name is withdrawn and no reference is written. The rewrite is injected
    right after the existence check, i.e. while the real upload starts."""
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(size))
    store = make_store()
    check = store.blobs.missing

    def check_then_rewrite(*args, **kwargs):
        missing = check(*args, **kwargs)
        source.write_bytes(os.urandom(size + 1))
        return missing

    store.blobs.missing = check_then_rewrite
    with pytest.raises(MldockError, match="changed while it was being stored"):
        store.put_file(source, KEY)
    assert not store.exists(KEY)
    assert blob_keys(s3, store) == set()
