"""The base class alone: a backend that implements only the primitives (objects in a dict) gets
dedup, publication order, verified and staged fetches, the model-folder walk and the error texts."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from mldock.cas import (
    BlobDownload,
    BlobMissingError,
    BlobSource,
    ContentAddressedStore,
    StoreStats,
    TransferProgress,
    blob_name,
    ref_name,
)
from mldock.cas.layout import changed
from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.testing._common import make_sample_tree, snapshot
from mldock.testing.storage import GOLDEN_OBJECTS, write_golden_tree


class DictStore(ContentAddressedStore):
    """Objects by name in a dict; every primitive call is logged."""

    def __init__(self) -> None:
        self.uri = "dict://"
        self.stats = StoreStats()
        self.objects: dict[str, bytes] = {}
        self.calls: list[tuple[str, str]] = []

    def has_blob(self, digest: str, size: int) -> bool:
        self.calls.append(("has", digest))
        data = self.objects.get(blob_name(digest))
        return data is not None and len(data) == size

    def put_blob(self, source: BlobSource, meter: TransferProgress) -> None:
        self.calls.append(("put", source.sha256))
        with source.open() as handle:
            data = handle.read()
        if len(data) != source.size:
            raise changed(source.label)
        self.objects[blob_name(source.sha256)] = data

    def get_blob(self, download: BlobDownload, meter: TransferProgress) -> None:
        data = self.objects.get(blob_name(download.sha256))
        if data is None:
            raise BlobMissingError(download.sha256)
        with download.open() as out:
            out.write(data)

    def put_ref(self, key: str, data: bytes) -> None:
        self.calls.append(("ref", key))
        self.objects[ref_name(key)] = data

    def get_ref(self, key: str) -> bytes | None:
        return self.objects.get(ref_name(key))

    def list_refs(self, prefix: str) -> Iterable[str]:
        return [name[5:-12] for name in self.objects if name.startswith("refs/")]

    def delete_ref(self, key: str) -> None:
        self.objects.pop(ref_name(key), None)


@pytest.fixture
def store() -> DictStore:
    return DictStore()


def test_blobs_then_manifest_then_reference(store: DictStore, tmp_path: Path) -> None:
    ref = store.put_tree(make_sample_tree(tmp_path / "t"), "m")
    kinds = [kind for kind, _ in store.calls if kind != "has"]
    assert kinds[-1] == "ref" and store.calls[-1] == ("ref", "m")
    assert [c for c in store.calls if c[0] == "put"][-1] == ("put", ref.sha256)  # the manifest


def test_a_blob_present_is_never_sent(store: DictStore, tmp_path: Path) -> None:
    tree = make_sample_tree(tmp_path / "t")
    store.put_tree(tree, "a")
    store.calls.clear()
    store.put_tree(tree, "b")  # its manifest exists: one lookup, no blob sent
    assert [kind for kind, _ in store.calls] == ["has", "ref"]
    (tmp_path / "f").write_bytes(b"once")
    store.put_file(tmp_path / "f", "f1")
    store.calls.clear()
    store.put_file(tmp_path / "f", "f2")
    assert [kind for kind, _ in store.calls] == ["has", "ref"]
    assert store.stats.blobs_reused >= 2


def test_same_objects_as_the_local_store(store: DictStore, tmp_path: Path) -> None:
    store.put_tree(write_golden_tree(tmp_path / "t"), "models/iris")
    (tmp_path / "f").write_bytes(b"hello\n")
    store.put_file(tmp_path / "f", "notes/readme")
    blobs = {k: v for k, v in store.objects.items() if k.startswith("blobs/")}
    assert blobs == {k: v for k, v in GOLDEN_OBJECTS.items() if k.startswith("blobs/")}


def test_roundtrip_and_listing(store: DictStore, tmp_path: Path) -> None:
    tree = make_sample_tree(tmp_path / "t")
    store.put_tree(tree, "runs/1/model")
    assert snapshot(Path(store.get_tree("runs/1/model", tmp_path / "out"))) == snapshot(tree)
    assert store.list("runs/") == ["runs/1/model"] and store.list("x") == []
    store.delete("runs/1/model")
    assert not store.exists("runs/1/model")


def test_corrupt_blob_leaves_nothing(store: DictStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"good bytes")
    ref = store.put_file(tmp_path / "f", "k")
    store.objects[blob_name(ref.sha256)] = b"evil bytes"
    with pytest.raises(MldockError, match="'k' is corrupt"):
        store.get_file("k", tmp_path / "out")
    assert list(tmp_path.iterdir()) == [tmp_path / "f"]


def test_missing_blob_and_missing_key(store: DictStore, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    ref = store.put_file(tmp_path / "f", "k")
    del store.objects[blob_name(ref.sha256)]
    with pytest.raises(MldockError, match=r"'k': its content .* is missing from dict://"):
        store.get_file("k", tmp_path / "out")
    with pytest.raises(NotFoundError, match="no artifact 'nope' in dict://"):
        store.get_tree("nope", tmp_path / "out")
    with pytest.raises(UsageError, match="is a single file"):
        store.get_tree("k", tmp_path / "out")


def test_link_out_of_the_folder_is_refused_before_any_request(store: DictStore,
                                                              tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "env").symlink_to("/proc/self/environ")
    with pytest.raises(MldockError, match="a link that leaves it: env"):
        store.put_tree(tmp_path / "t", "m")
    assert store.calls == [] and store.objects == {}
