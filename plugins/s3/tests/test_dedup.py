"""How few requests and bytes a push costs: the lookups that make content addressing cheap."""

from __future__ import annotations

import os
from pathlib import Path

from mldock.cas import hash_tree, manifest_bytes
from mldock.testing._common import snapshot


def make_files(root: Path, names: range, size: int = 1024) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in names:
        (root / f"f{i:03d}.bin").write_bytes(i.to_bytes(4, "little") + os.urandom(size))
    return root


def sent(store) -> tuple[int, int, int]:
    return store.stats.bytes_sent, store.stats.requests_head, store.stats.requests_list


def test_unchanged_repush_is_one_lookup_and_no_bytes(make_store, tmp_path):
    """The tree's manifest is already stored: nothing else is looked up or sent."""
    store = make_store()
    tree = make_files(tmp_path / "t", range(40))
    store.put_tree(tree, "m")
    before = sent(store)
    store.put_tree(tree, "m")
    store.put_tree(tree, "m2")  # the same content under another key: same answer
    bytes_, heads, lists = (a - b for a, b in zip(sent(store), before, strict=True))
    assert (bytes_, heads, lists) == (0, 2, 0)


def test_one_changed_file_costs_that_file(make_store, tmp_path):
    """Blobs of the key's previous manifest are known: only the new file is looked up and sent."""
    store = make_store()
    tree = make_files(tmp_path / "t", range(40))
    store.put_tree(tree, "m")
    (tree / "f007.bin").write_bytes(b"changed")
    before = sent(store)
    store.put_tree(tree, "m")
    bytes_, heads, lists = (a - b for a, b in zip(sent(store), before, strict=True))
    manifest, _ = hash_tree(tree)
    assert bytes_ == len(b"changed") + len(manifest_bytes(manifest))
    assert (heads, lists) == (2, 0)  # the new manifest, then the one new blob


def test_many_unknown_blobs_are_settled_by_listing(make_store, tmp_path):
    """A new tree sharing half its files with a stored one, pushed under a new key: a few LIST
    pages (10 keys each here) settle the 45 blobs, and only the 25 new ones are sent."""
    store = make_store()
    store.blobs.list_page = 10
    store.put_tree(make_files(tmp_path / "a", range(20)), "a")
    tree = make_files(tmp_path / "b", range(20, 45))
    for path in (tmp_path / "a").iterdir():
        (tree / path.name).write_bytes(path.read_bytes())
    before = sent(store)
    store.put_tree(tree, "b")
    bytes_, heads, lists = (a - b for a, b in zip(sent(store), before, strict=True))
    manifest, _ = hash_tree(tree)
    new = sum(e["size"] for rel, e in manifest.items() if int(rel[1:4]) >= 20)
    assert bytes_ == new + len(manifest_bytes(manifest))
    assert heads <= 5 and 1 <= lists <= 10  # instead of 46 HEADs
    assert snapshot(Path(store.get_tree("b", tmp_path / "out"))) == snapshot(tree)


def test_sparse_listing_falls_back_to_head(make_store, tmp_path):
    """When each LIST page settles too few keys (a big store, 2-key pages here), listing stops
    and HEAD requests decide the rest: still exact, never much dearer than HEADs alone."""
    store = make_store()
    store.put_tree(make_files(tmp_path / "old", range(100, 160)), "old")
    store.blobs.list_page = 2
    tree = make_files(tmp_path / "t", range(30))
    for path in sorted((tmp_path / "old").iterdir())[:10]:
        (tree / path.name).write_bytes(path.read_bytes())
    before = sent(store)
    store.put_tree(tree, "new")
    bytes_, heads, lists = (a - b for a, b in zip(sent(store), before, strict=True))
    manifest, _ = hash_tree(tree)
    new = sum(e["size"] for rel, e in manifest.items() if int(rel[1:4]) < 100)
    assert bytes_ == new + len(manifest_bytes(manifest))
    assert lists == 1 and heads >= 30  # one page, then HEADs for what it left open
    assert snapshot(Path(store.get_tree("new", tmp_path / "out"))) == snapshot(tree)
