"""The local artifact store: the conformance contract, plus what only a local folder can show
(blob layout, crash safety with a killed writer, several writer processes, gc) and the hashing
helpers other parts of mldock reuse."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mldock.errors import MldockError, UsageError
from mldock.local.hashing import hash_tree, iter_tree_files, sha256_file
from mldock.local.storage import REF_NAME, LocalArtifactStore
from mldock.records import FactoryContext
from mldock.testing import ArtifactStoreContract, registered_record
from mldock.testing._common import make_sample_tree, snapshot


class TestLocalStoreContract(ArtifactStoreContract):
    record = registered_record("storage", "local")

    @pytest.fixture
    def store(self, tmp_path: Path) -> LocalArtifactStore:
        """Built as mldock builds it from ``[storage] uri`` (relative to the project folder)."""
        store = self.record.build(FactoryContext(uri=".mldock/artifacts", project_dir=tmp_path))
        assert isinstance(store, LocalArtifactStore)
        return store

    def corrupt(self, store: LocalArtifactStore, key: str) -> None:
        blob = store.blob_path(store.stat(key).sha256)
        os.chmod(blob, 0o644)
        data = bytearray(blob.read_bytes())
        data[len(data) // 2] ^= 0xFF  # same size: only the hash can tell
        blob.write_bytes(bytes(data))


@pytest.fixture
def store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "store")


def _run(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE)


# --- URIs and layout ---------------------------------------------------------------------------
@pytest.mark.parametrize(("uri", "expected"), [
    ("file:///srv/art", "/srv/art"),
    ("file://localhost/srv/art", "/srv/art"),
    ("file://.mldock/artifacts", "{base}/.mldock/artifacts"),
    ("file:rel%20dir", "{base}/rel dir"),
    (".mldock/artifacts", "{base}/.mldock/artifacts"),
    ("/abs/art", "/abs/art"),
])
def test_from_uri(tmp_path: Path, uri: str, expected: str) -> None:
    store = LocalArtifactStore.from_uri(uri, base_dir=tmp_path)
    assert store.root == Path(expected.format(base=tmp_path))
    assert store.uri == store.root.as_uri()
    assert not store.root.exists(), "the constructor must not create folders"


def test_from_uri_rejects_empty() -> None:
    with pytest.raises(UsageError):
        LocalArtifactStore.from_uri("file://")


def test_reading_a_store_that_was_never_written(store: LocalArtifactStore) -> None:
    assert store.list() == [] and not store.exists("a")
    assert not store.root.exists()


def test_blobs_are_stored_once_as_read_only_copies(store: LocalArtifactStore, tmp_path: Path
                                                   ) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(os.urandom(300_000))
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    store.put_file(source, "a")
    store.put_file(source, "b")
    blobs = [p for p in (store.root / "blobs").rglob("*") if p.is_file()]
    assert blobs == [store.blob_path(digest)]
    assert store.blob_path(digest).relative_to(store.root).parts[:3] == ("blobs", "sha256",
                                                                         digest[:2])
    info = os.stat(blobs[0])
    assert info.st_nlink == 1 and info.st_ino != os.stat(source).st_ino
    assert info.st_mode & 0o222 == 0, "blobs are read-only"
    assert (store.stats.blobs_written, store.stats.blobs_reused) == (1, 1)
    source.write_bytes(b"the user edits the file afterwards")  # must not reach the store
    assert Path(store.get_file("a", tmp_path / "out")).read_bytes() != source.read_bytes()
    assert sha256_file(tmp_path / "out") == digest


def test_refs_are_small_json_and_nested_keys_coexist(store: LocalArtifactStore, tmp_path: Path
                                                     ) -> None:
    (tmp_path / "f").write_text("x")
    store.put_file(tmp_path / "f", "runs/r1")
    store.put_file(tmp_path / "f", "runs/r1/model")
    body = json.loads((store.root / "refs" / "runs" / "r1" / REF_NAME).read_text())
    assert (body["kind"], body["size"], body["sha256"]) == ("file", 1, sha256_file(tmp_path / "f"))
    assert store.list("runs/") == ["runs/r1", "runs/r1/model"]
    store.delete("runs/r1/model")
    assert store.list() == ["runs/r1"]
    assert not (store.root / "refs" / "runs" / "r1" / "model").exists(), "empty folders removed"


def test_reserved_key_part_rejected(store: LocalArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="reserved"):
        store.put_file(tmp_path / "f", f"a/{REF_NAME}")


def test_get_file_into_existing_folder_uses_key_name(store: LocalArtifactStore, tmp_path: Path
                                                     ) -> None:
    (tmp_path / "f").write_text("x")
    store.put_file(tmp_path / "f", "models/model.pkl")
    (tmp_path / "dest").mkdir()
    assert store.get_file("models/model.pkl", tmp_path / "dest") == tmp_path / "dest" / "model.pkl"


def test_get_tree_into_existing_folder_replaces_files(store: LocalArtifactStore, tmp_path: Path
                                                      ) -> None:
    source = make_sample_tree(tmp_path / "src")
    store.put_tree(source, "t")
    dest = tmp_path / "dest"
    (dest / "nested").mkdir(parents=True)
    (dest / "top.txt").write_text("stale")
    store.get_tree("t", dest)
    assert (dest / "top.txt").read_text() == "hello\n"
    assert not list(dest.rglob("*.part")), "no temp files left behind"


# --- integrity -------------------------------------------------------------------------------
def test_corrupt_file_inside_tree_names_key_and_file(store: LocalArtifactStore, tmp_path: Path
                                                     ) -> None:
    source = make_sample_tree(tmp_path / "src")
    store.put_tree(source, "models/m")
    blob = store.blob_path(sha256_file(source / "nested" / "deeper" / "all-bytes.bin"))
    os.chmod(blob, 0o644)
    blob.write_bytes(b"\x00" * blob.stat().st_size)
    dest = tmp_path / "out"
    with pytest.raises(MldockError, match=r"models/m.*nested/deeper/all-bytes.bin"):
        store.get_tree("models/m", dest)
    assert not dest.exists(), "a failed fetch into a new folder leaves nothing"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_missing_blob_is_a_clear_error(store: LocalArtifactStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    ref = store.put_file(tmp_path / "f", "k")
    store.blob_path(ref.sha256).unlink()
    with pytest.raises(MldockError, match=r"'k'.*missing"):
        store.get_file("k", tmp_path / "out")


def test_truncated_blob_is_rewritten_by_next_put(store: LocalArtifactStore, tmp_path: Path
                                                 ) -> None:
    (tmp_path / "f").write_bytes(os.urandom(5000))
    ref = store.put_file(tmp_path / "f", "k")
    os.chmod(store.blob_path(ref.sha256), 0o644)
    store.blob_path(ref.sha256).write_bytes(b"short")
    store.put_file(tmp_path / "f", "k")
    assert Path(store.get_file("k", tmp_path / "out")).read_bytes() == (tmp_path / "f").read_bytes()


# --- crash safety and concurrent writers -------------------------------------------------------
PUT_TREE = ("import sys; from pathlib import Path; from mldock.local.storage import"
            " LocalArtifactStore as S; S(sys.argv[1]).put_tree(Path(sys.argv[2]), sys.argv[3])")


def test_killed_writer_leaves_no_visible_tree(store: LocalArtifactStore, tmp_path: Path) -> None:
    """SIGKILL a real put_tree half-way: the key is absent, gc cleans up, a new put works."""
    source = tmp_path / "big"
    for i in range(1500):
        (source / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
        (source / f"d{i % 10}" / f"f{i}.bin").write_bytes(os.urandom(8192))
    proc = _run(PUT_TREE, str(store.root), str(source), "crash/tree")
    blobs = store.root / "blobs" / "sha256"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if blobs.is_dir() and sum(1 for _ in blobs.rglob("*")) >= 40:
            break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the writer finished before it could be killed"
    stored = sum(1 for p in blobs.rglob("*") if p.is_file())
    assert 0 < stored < 1500
    assert not store.exists("crash/tree") and store.list() == []
    report = store.gc()
    assert report["blobs_removed"] == stored
    assert not any(p.is_file() for p in (store.root / "blobs").rglob("*"))
    assert not any((store.root / "tmp").iterdir())
    store.put_tree(source, "crash/tree")
    assert snapshot(Path(store.get_tree("crash/tree", tmp_path / "out"))) == snapshot(source)


WRITER = ("import sys; from pathlib import Path; from mldock.local.storage import"
          " LocalArtifactStore as S\n"
          "s, src = S(sys.argv[1]), Path(sys.argv[2])\n"
          "for _ in range(int(sys.argv[3])):\n"
          "    s.put_tree(src, 'shared/model'); s.put_file(src / 'own.txt', 'shared/file')\n")


def test_concurrent_writer_processes(store: LocalArtifactStore, tmp_path: Path) -> None:
    """Six processes write one key over and over (sharing most blobs) while this one reads:
    every read is one writer's complete version, and the last complete write wins."""
    versions, own_files = [], set()
    for w in range(6):
        root = tmp_path / f"v{w}"
        (root / "shared").mkdir(parents=True)
        for i in range(25):  # identical in every version: concurrent writes of the same blobs
            (root / "shared" / f"s{i}.txt").write_text(f"shared {i}\n" * 100)
        (root / "own.txt").write_text(f"writer {w}\n" * 50)
        versions.append(snapshot(root))
        own_files.add((root / "own.txt").read_bytes())
    procs = [_run(WRITER, str(store.root), str(tmp_path / f"v{w}"), "8") for w in range(6)]
    reads = 0
    while any(p.poll() is None for p in procs):
        if store.exists("shared/model"):
            got = snapshot(Path(store.get_tree("shared/model", tmp_path / "reads" / str(reads))))
            assert got in versions, f"read {reads} saw a torn tree of {len(got)} files"
            if store.exists("shared/file"):  # a writer publishes it after its first tree
                got_file = store.get_file("shared/file", tmp_path / "f" / str(reads))
                assert Path(got_file).read_bytes() in own_files
            reads += 1
    for proc in procs:
        assert proc.wait() == 0, proc.stderr.read().decode()
    assert reads > 0
    final = snapshot(Path(store.get_tree("shared/model", tmp_path / "final")))
    assert final in versions
    leftovers = list(store.root.rglob("*.tmp"))
    assert leftovers == [], leftovers


# --- gc --------------------------------------------------------------------------------------
def test_gc_removes_only_unreferenced_blobs(store: LocalArtifactStore, tmp_path: Path) -> None:
    tree = make_sample_tree(tmp_path / "src")
    (tmp_path / "gone.bin").write_bytes(os.urandom(1000))
    store.put_tree(tree, "keep/tree")
    store.put_file(tmp_path / "gone.bin", "drop/file")
    store.delete("drop/file")
    report = store.gc()
    assert (report["blobs_removed"], report["bytes_freed"]) == (1, 1000)
    assert store.gc()["blobs_removed"] == 0
    assert snapshot(Path(store.get_tree("keep/tree", tmp_path / "out"))) == snapshot(tree)


def test_check_reports_an_unusable_root(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    [check] = LocalArtifactStore(tmp_path / "a-file" / "store").check()
    assert not check.ok and "cannot write" in check.detail


# --- hashing helpers -----------------------------------------------------------------------------
def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "big").write_bytes(data)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(data).hexdigest()


def test_hash_tree_matches_stored_tree(store: LocalArtifactStore, tmp_path: Path) -> None:
    source = make_sample_tree(tmp_path / "src")
    manifest, digest = hash_tree(source)
    assert digest == store.put_tree(source, "t").sha256
    assert manifest["nested/run.sh"]["mode"] == 0o755
    assert manifest["empty.bin"] == {"sha256": hashlib.sha256(b"").hexdigest(), "size": 0,
                                     "mode": manifest["empty.bin"]["mode"]}
    assert list(manifest) == sorted(manifest)
    os.chmod(source / "top.txt", 0o600)
    assert hash_tree(source)[1] != digest, "modes are part of the tree hash"


def test_hash_tree_filter_and_link_cycles(tmp_path: Path) -> None:
    source = make_sample_tree(tmp_path / "src")
    os.symlink(source, source / "nested" / "loop")  # a cycle must not hang or duplicate
    rels = [rel for rel, _ in iter_tree_files(source)]
    assert len(rels) == len(set(rels)) and "nested/loop/top.txt" not in rels
    manifest, _ = hash_tree(source, include=lambda rel: not rel.endswith(".bin"))
    assert not any(rel.endswith(".bin") for rel in manifest) and "top.txt" in manifest
