"""What is stored did not change: the local store on :mod:`mldock.cas` reads a store written before
it (commit 46c859c's bytes, :data:`mldock.testing.storage.GOLDEN_OBJECTS`) and writes the same
bytes for the same content; plus the layout's own rules."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest
from mldock.cas import (
    BlobSource,
    blob_name,
    key_of_ref,
    parse_manifest,
    parse_ref,
    ref_body,
    ref_name,
    validate_key,
)
from mldock.errors import MldockError, UsageError
from mldock.local.storage import LocalArtifactStore
from mldock.testing._common import snapshot
from mldock.testing.storage import GOLDEN_OBJECTS, GOLDEN_TREE, write_golden_tree

STORED_AT = re.compile(rb'"stored_at": [0-9.e+-]+')


def files_of(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by ``/``-separated name (the lock file aside)."""
    return {path.relative_to(root).as_posix(): path.read_bytes()
            for path in sorted(root.rglob("*")) if path.is_file() and path.name != "lock"}


def without_time(data: bytes) -> bytes:
    return STORED_AT.sub(b'"stored_at": T', data)


def test_new_code_writes_the_bytes_the_old_code_wrote(tmp_path: Path) -> None:
    """Same objects, same names, same bytes (the reference's ``stored_at`` aside)."""
    store = LocalArtifactStore(tmp_path / "store")
    tree = store.put_tree(write_golden_tree(tmp_path / "tree"), "models/iris")
    (tmp_path / "file.txt").write_bytes(b"hello\n")
    store.put_file(tmp_path / "file.txt", "notes/readme")
    written = files_of(store.root)
    assert sorted(written) == sorted(GOLDEN_OBJECTS)
    for name, data in GOLDEN_OBJECTS.items():
        assert without_time(written[name]) == without_time(data), name
    assert tree.sha256 == "3be8077578a2d0399c75edad7dd8702382188b2df2a994423f71307a0318dd7a"
    blob = store.root / blob_name(tree.sha256)
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444  # blobs stay read-only


def test_a_store_written_before_reads_back(tmp_path: Path) -> None:
    """The old store's folder, object by object, is read by the new code: trees, files, listing,
    and gc keeps every blob the references use."""
    root = tmp_path / "old"
    for name, data in GOLDEN_OBJECTS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    store = LocalArtifactStore(root)
    assert store.list() == ["models/iris", "notes/readme"]
    assert store.stat("models/iris").size == 18
    out = Path(store.get_tree("models/iris", tmp_path / "out"))
    assert snapshot(out) == snapshot(write_golden_tree(tmp_path / "expected"))
    for rel, (_, mode) in GOLDEN_TREE.items():
        assert stat.S_IMODE((out / rel).stat().st_mode) == mode
    assert Path(store.get_file("notes/readme", tmp_path / "r")).read_bytes() == b"hello\n"
    assert store.gc()["blobs_removed"] == 0
    assert sorted(files_of(root)) == sorted(GOLDEN_OBJECTS)


def test_reference_document_format() -> None:
    body = json.loads(ref_body("a/b", "0" * 64, 3, "file"))
    assert set(body) == {"format", "key", "sha256", "size", "kind", "stored_at"}
    assert (body["format"], body["key"], body["kind"]) == (1, "a/b", "file")
    start = b'{"format": 1, "key": "k", "kind": "tree"'
    assert ref_body("k", "0" * 64, 1, "tree").startswith(start)


def test_names() -> None:
    digest = "ab" + "c" * 62
    assert blob_name(digest) == f"blobs/sha256/ab/{'c' * 62}"
    assert ref_name("models/iris") == "refs/models/iris/.mldock-ref"
    assert key_of_ref("models/iris/.mldock-ref") == "models/iris"
    assert key_of_ref("models/iris/other") is None
    assert key_of_ref("/.mldock-ref") is None


@pytest.mark.parametrize("key", ["a/.mldock-ref", ".mldock-ref-x/b", "a/../b", "a\\b", ""])
def test_reserved_and_unsafe_keys(key: str) -> None:
    with pytest.raises(UsageError, match="invalid artifact key"):
        validate_key(key)


@pytest.mark.parametrize("data", [b"not json", b'{"kind": "tree", "sha256": "x", "size": 1}',
                                  b'{"kind": "link", "sha256": "' + b"0" * 64 + b'", "size": 1}'])
def test_damaged_reference_names_key_and_place(data: bytes) -> None:
    with pytest.raises(MldockError, match="artifact 'k': its reference s3://b/r is damaged"):
        parse_ref(data, "k", "s3://b/r")


@pytest.mark.parametrize("rel", ["../evil", "/abs", "a//b", "a/./b"])
def test_manifest_with_an_unsafe_path_is_refused(rel: str) -> None:
    data = json.dumps({rel: {"sha256": "0" * 64, "size": 1, "mode": 420}}).encode()
    with pytest.raises(MldockError, match="malformed or lists an unsafe path"):
        parse_manifest(data, "k")


def test_a_blob_source_knows_when_its_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"one")
    source = BlobSource.of_file(path)
    assert source.unchanged()
    path.write_bytes(b"three")
    assert not source.unchanged()
    os.utime(path, ns=(0, source.signature[1]))
    assert not source.unchanged()  # size differs even with the old mtime
