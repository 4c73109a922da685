"""The ``az://`` store's own behaviour on Azurite: layout, deduplication, blocks, atomicity and
one-line errors, looked at through a plain azure-storage-blob client."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from blob_support import *  # noqa: F403 - the store fixtures
from mldock.cas import hash_tree
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.testing._common import snapshot
from mldock.testing.storage import GOLDEN_OBJECTS, GOLDEN_TREE, write_golden_tree

KEY = "runs/1/model"
STORED_AT = re.compile(rb'"stored_at": [0-9.e+-]+')
PUT_TREE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mldock_azure.config import BlobOptions
    from mldock_azure.store import BlobArtifactStore

    uri, variable, source, key, repeat = sys.argv[1:6]
    options = BlobOptions(connection_string="env:" + variable, max_concurrency=1, block_mb=1)
    store = BlobArtifactStore(uri, options)
    for _ in range(int(repeat)):
        store.put_tree(Path(source), key)
    print("done", flush=True)
""")


def blobs_under(store) -> dict[str, bytes]:
    """Every blob under the store's prefix, by name relative to it (``stored_at`` masked)."""
    client = store.connection.container
    start = store.location.prefix + "/"
    return {b.name[len(start):]: STORED_AT.sub(b'"stored_at": T',
                                               client.download_blob(b.name).readall())
            for b in client.list_blobs(name_starts_with=start)}


def content_blobs(store) -> set[str]:
    return {name for name in blobs_under(store) if name.startswith("blobs/")}


def make_tree(root: Path, files: int, size: int, seed: str = "") -> Path:
    for i in range(files):
        folder = root / f"d{i % 5}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:03d}.bin").write_bytes(seed.encode() + os.urandom(size))
    return root


def start_put_tree(store, source: Path, repeat: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", PUT_TREE, store.uri, CONNECTION_VARIABLE,  # noqa: F405
                             str(source), KEY, str(repeat)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


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


# --- layout -------------------------------------------------------------------------------------
def test_writes_the_names_and_bytes_of_the_local_store(make_store, tmp_path):
    store = make_store()
    store.put_tree(write_golden_tree(tmp_path / "tree"), "models/iris")
    (tmp_path / "f").write_bytes(b"hello\n")
    store.put_file(tmp_path / "f", "notes/readme")
    expected = {name: STORED_AT.sub(b'"stored_at": T', data)
                for name, data in GOLDEN_OBJECTS.items()}
    assert blobs_under(store) == expected


def test_reads_a_container_written_by_another_tool(make_store, tmp_path):
    store = make_store()
    for name, data in GOLDEN_OBJECTS.items():  # e.g. 'az storage blob upload-batch' of a store
        store.connection.blob(store.location.key(name)).upload_blob(data)
    assert store.list() == ["models/iris", "notes/readme"]
    out = Path(store.get_tree("models/iris", tmp_path / "out"))
    assert snapshot(out) == snapshot(write_golden_tree(tmp_path / "expected"))
    assert {rel: (out / rel).stat().st_mode & 0o777 for rel in GOLDEN_TREE} == {
        rel: mode for rel, (_, mode) in GOLDEN_TREE.items()}
    store.put_tree(tmp_path / "expected", "models/iris")
    assert store.stats.bytes_sent == 0


# --- deduplication ------------------------------------------------------------------------------
def test_unchanged_repush_is_one_lookup_and_no_bytes(make_store, tmp_path):
    source = make_tree(tmp_path / "src", files=40, size=2 << 10)
    make_store(prefix="shared").put_tree(source, KEY)
    again = make_store(prefix="shared")
    again.put_tree(source, KEY)
    assert again.stats.bytes_sent == 0
    assert again.stats.requests_head == 1  # the manifest's blob: its files were stored before it
    assert again.stats.blobs_reused == 41


def test_one_changed_file_costs_that_file(make_store, tmp_path):
    source = make_tree(tmp_path / "src", files=20, size=8 << 10)
    make_store(prefix="shared").put_tree(source, KEY)
    (source / "d0" / "f000.bin").write_bytes(b"changed")
    again = make_store(prefix="shared")
    again.put_tree(source, KEY)
    assert again.stats.blobs_written == 2  # the changed file and the new manifest
    assert len(b"changed") <= again.stats.bytes_sent < 16 << 10  # that file and the manifest
    assert again.stats.requests_head == 2  # the new manifest and the changed file


# --- blocks -------------------------------------------------------------------------------------
def test_big_file_goes_in_blocks_with_its_md5_recorded(make_store, tmp_path):
    data = os.urandom((3 << 20) + 12345)  # 4 blocks of 1 MiB
    (tmp_path / "w.bin").write_bytes(data)
    store = make_store()
    ref = store.put_file(tmp_path / "w.bin", "weights")
    assert store.stats.blocks_staged == 4
    client = store.connection.blob(store.blob_key(ref.sha256))
    committed, uncommitted = client.get_block_list("all")
    assert [b.size for b in committed] == [1 << 20] * 3 + [12345]
    assert uncommitted == []
    md5 = client.get_blob_properties().content_settings.content_md5
    assert bytes(md5) == hashlib.md5(data, usedforsecurity=False).digest()
    assert Path(store.get_file("weights", tmp_path / "out")).read_bytes() == data


def test_small_blobs_keep_the_md5_azure_checks(make_store, tmp_path):
    (tmp_path / "s").write_bytes(b"small content")
    store = make_store()
    ref = store.put_file(tmp_path / "s", "s")
    props = store.connection.blob(store.blob_key(ref.sha256)).get_blob_properties()
    assert bytes(props.content_settings.content_md5) == hashlib.md5(
        b"small content", usedforsecurity=False).digest()


def test_a_download_not_matching_content_md5_is_refused(make_store, tmp_path):
    """Azure keeps a Content-MD5; bytes that do not match it are refused before the SHA-256."""
    from azure.storage.blob import ContentSettings

    (tmp_path / "s").write_bytes(b"genuine")
    store = make_store()
    ref = store.put_file(tmp_path / "s", "s")
    client = store.connection.blob(store.blob_key(ref.sha256))
    client.set_http_headers(ContentSettings(content_type="application/octet-stream",
                                            content_md5=bytearray(16)))
    with pytest.raises(MldockError, match="MD5 does not match"):
        store.get_file("s", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_blob_with_the_wrong_size_is_overwritten(make_store, tmp_path):
    (tmp_path / "f").write_bytes(b"right bytes")
    store = make_store()
    ref = store.put_file(tmp_path / "f", "f")
    store.connection.blob(store.blob_key(ref.sha256)).upload_blob(b"short", overwrite=True)
    fresh = make_store(prefix=store.location.prefix)
    fresh.put_file(tmp_path / "f", "f")
    assert fresh.stats.bytes_sent == len(b"right bytes")
    assert Path(fresh.get_file("f", tmp_path / "out")).read_bytes() == b"right bytes"


# --- atomicity ----------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [64 << 10, (5 << 20) + 1], ids=["one-request", "blocks"])
def test_source_changed_during_upload_publishes_nothing(make_store, tmp_path, size):
    """A file rewritten after it was hashed is refused before any blob becomes visible (its
    bytes no longer hash to the blob's name), and no reference is written."""
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(size))
    store = make_store()
    check = store.blobs.missing

    def check_then_rewrite(*args, **kwargs):
        missing = check(*args, **kwargs)
        source.write_bytes(os.urandom(size))
        return missing

    store.blobs.missing = check_then_rewrite
    with pytest.raises(MldockError, match="changed while it was being stored"):
        store.put_file(source, KEY)
    assert not store.exists(KEY)
    assert content_blobs(store) == set()


def test_killed_block_upload_leaves_no_blob(make_store, tmp_path):
    """SIGKILL a writer while a big file's blocks are being staged: nothing is visible (staged
    blocks are not a blob), and a retry stores the tree."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "weights.bin").write_bytes(os.urandom(24 << 20))
    store = make_store()
    digest = hash_tree(source)[0]["weights.bin"]["sha256"]
    client = store.connection.blob(store.blob_key(digest))

    def blocks_staged() -> bool:
        try:
            return len(client.get_block_list("uncommitted")[1]) >= 2
        except Exception:  # noqa: BLE001 - no blocks yet: the blob does not exist
            return False

    writer = start_put_tree(store, source)
    wait_until(blocks_staged, writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert_invisible(store, tmp_path)
    assert content_blobs(store) == set()
    retry = make_store(prefix=store.location.prefix)
    retry.put_tree(source, KEY)
    assert snapshot(Path(retry.get_tree(KEY, tmp_path / "out"))) == snapshot(source)


def test_killed_put_tree_publishes_nothing_and_a_retry_sends_only_the_rest(make_store,
                                                                           tmp_path):
    source = make_tree(tmp_path / "src", files=120, size=32 << 10)
    store = make_store()
    writer = start_put_tree(store, source)
    wait_until(lambda: len(content_blobs(store)) >= 10, writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert_invisible(store, tmp_path)
    stored = {name.rsplit("/", 2)[-2] + name.rsplit("/", 1)[-1] for name in content_blobs(store)}
    manifest, digest = hash_tree(source)
    assert 10 <= len(stored) < len(manifest), "the kill did not land mid-way"
    assert digest not in stored  # the manifest is never written before its files
    retry = make_store(prefix=store.location.prefix)
    retry.put_tree(source, KEY)
    missing = [e for e in manifest.values() if e["sha256"] not in stored]
    assert retry.stats.blobs_written == len(missing) + 1
    assert snapshot(Path(retry.get_tree(KEY, tmp_path / "out"))) == snapshot(source)


def test_concurrent_writer_processes_publish_whole_trees(make_store, tmp_path):
    store = make_store()
    sources = {name: make_tree(tmp_path / name, files=20, size=4 << 10, seed=name)
               for name in "xyz"}
    sources["x"].joinpath("big.bin").write_bytes(os.urandom(3 << 20))  # blocks race too
    sources["y"].joinpath("big.bin").write_bytes(sources["x"].joinpath("big.bin").read_bytes())
    writers = [start_put_tree(store, source, repeat=2) for source in sources.values()]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()[-2000:]
    got = snapshot(Path(store.get_tree(KEY, tmp_path / "out")))
    assert got in [snapshot(source) for source in sources.values()]
    assert store.list() == [KEY]


def test_threads_writing_one_blob_at_once_all_succeed(make_store, tmp_path):
    """Conditional commits: the writers that lose the race to an identical blob do not fail."""
    (tmp_path / "w.bin").write_bytes(os.urandom(2 << 20))
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            make_store(prefix="race").put_file(tmp_path / "w.bin", f"k{n}")
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert make_store(prefix="race").list() == ["k0", "k1", "k2", "k3"]


# --- errors and configuration -------------------------------------------------------------------
def test_missing_container_is_one_line(blob_options, tmp_path):
    from mldock_azure.store import BlobArtifactStore

    store = BlobArtifactStore("az://no-such-container/p", blob_options)
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotFoundError) as caught:
        store.put_file(tmp_path / "f", "k")
    assert caught.value.message == ("cannot store 'k': the container of az://no-such-container/p"
                                    " does not exist (ContainerNotFound)")
    assert "az storage container create" in caught.value.hint
    checks = store.check()
    assert [c.ok for c in checks] == [True, False]
    assert "does not exist" in checks[1].detail


def test_no_account_anywhere_is_a_usage_error():
    from mldock_azure.config import BlobOptions
    from mldock_azure.store import BlobArtifactStore

    store = BlobArtifactStore("az://models/p", BlobOptions())
    with pytest.raises(UsageError, match=r"no storage account for az://models/p") as caught:
        store.list()
    assert "[storage.azblob] account" in caught.value.hint


def test_connection_string_for_another_account_is_refused(blob_options):
    from mldock_azure.config import BlobOptions
    from mldock_azure.store import BlobArtifactStore

    options = BlobOptions(**{**blob_options.model_dump(), "account_in_uri": True})
    store = BlobArtifactStore("az://otheraccount/models/p", options)
    with pytest.raises(UsageError, match="is for account 'devstoreaccount1', not"
                                         " 'otheraccount'"):
        store.list()


def test_account_in_uri_and_https_url(make_store, container, blob_options, azurite, tmp_path):
    from mldock_azure.config import BlobOptions
    from mldock_azure.store import BlobArtifactStore

    options = BlobOptions(**{**blob_options.model_dump(), "account_in_uri": True})
    store = BlobArtifactStore(f"az://devstoreaccount1/{container}/p", options)
    (tmp_path / "f").write_text("x")
    ref = store.put_file(tmp_path / "f", "k")
    assert ref.uri == f"az://devstoreaccount1/{container}/p/k"
    assert store.https_url(f"az://devstoreaccount1/{container}/p/data/ab cd/") == (
        f"{azurite.blob_endpoint}/{container}/p/data/ab%20cd/")
    plain = make_store(prefix="q")
    assert plain.https_url(f"az://{container}/q/x") == f"{azurite.blob_endpoint}/{container}/q/x"


def test_unreachable_endpoint_is_one_line(blob_options, azurite, monkeypatch):
    from mldock.testing.processes import free_port
    from mldock_azure.store import BlobArtifactStore

    port = free_port()
    monkeypatch.setenv(CONNECTION_VARIABLE, azurite.connection_string.replace(  # noqa: F405
        f":{azurite.port}/", f":{port}/"))
    store = BlobArtifactStore("az://models/p", blob_options)
    store.connection.service._config.retry_policy.total_retries = 0  # no 30 s of retries
    with pytest.raises(MldockError) as caught:
        store.list()
    assert caught.value.message == (f"cannot list artifacts on az://models/p/refs:"
                                    f" http://127.0.0.1:{port}/devstoreaccount1 is not reachable"
                                    " (connection refused)")


def test_store_builds_without_credentials_or_requests():
    """Building a store (e.g. to print its URI) resolves nothing."""
    from mldock_azure.store import BlobArtifactStore

    store = BlobArtifactStore("az://models/iris")
    assert store.uri == "az://models/iris"
    assert "connection" not in store.__dict__


def test_block_ids_have_one_length():
    from mldock_azure.transfer import block_id

    ids = [base64.b64decode(block_id(n)) for n in (0, 7, 99999)]
    assert {len(i) for i in ids} == {16}
