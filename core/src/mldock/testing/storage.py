"""Conformance tests for :class:`mldock.interfaces.ArtifactStore` backends.

Subclass :class:`ArtifactStoreContract` in a test module, set ``record`` (capability flags come from
its ``capabilities``) and give a ``store`` fixture that builds a fresh, empty store through the
record's factory (for a cloud bucket: a unique prefix per test). Every test says what it checks and
what usually makes it fail::

    class TestMyStore(ArtifactStoreContract):
        record = registered_record("storage", "mystore")

        @pytest.fixture
        def store(self, tmp_path):
            return self.record.build(FactoryContext(uri=f"mystore://{tmp_path}"))

        def corrupt(self, store, key):  # optional: enables the hash-verification test
            ...
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import ArtifactStore, HealthCheck
from mldock.testing._common import (
    Capability,
    ContractBase,
    backend_label,
    make_sample_tree,
    require_capability,
    snapshot,
)

BAD_KEYS = ["", "/absolute", "a/../b", "..", "a//b", "a/", "./a", "a/./b", "a\\b", "nul\x00byte"]


class ArtifactStoreContract(ContractBase):
    """The behaviour every artifact store promises (see :class:`~mldock.interfaces.ArtifactStore`).

    Capability flags, from the record: ``supports_delete`` (``delete``), ``supports_list``
    (``list``), ``supports_concurrency`` (``atomic``: readers polling during a write),
    ``supports_content_addressing`` (``content-addressed``; needs :meth:`bytes_sent`). Expected of
    every store unless narrowed: ``supports_modes`` (``file-modes``: permission bits survive a tree
    roundtrip).
    """

    concern = "storage"  # flags from the record's capabilities (mldock.testing._common)
    supports_delete = Capability("delete")
    supports_list = Capability("list")
    supports_concurrency = Capability("atomic")
    supports_content_addressing = Capability("content-addressed")
    supports_modes = Capability("file-modes", baseline=True)

    # --- what a subclass provides --------------------------------------------------------------
    @pytest.fixture
    def store(self) -> ArtifactStore:
        """A fresh, empty store. Override this fixture in your subclass."""
        raise NotImplementedError(f"{type(self).__name__} must define a `store` fixture")

    def corrupt(self, store: ArtifactStore, key: str) -> None:
        """Change the stored bytes of ``key`` (a file) without updating its recorded hash.

        Override to enable :meth:`test_corrupted_content_is_detected`.
        """
        raise NotImplementedError

    def bytes_sent(self, store: ArtifactStore) -> int | None:
        """Content bytes the store has transferred so far, or ``None`` if it does not count.

        Default: ``store.stats.bytes_sent`` when present.
        """
        return getattr(getattr(store, "stats", None), "bytes_sent", None)

    # --- files ----------------------------------------------------------------------------------
    def test_file_roundtrip(self, store: ArtifactStore, tmp_path: Path) -> None:
        """A file comes back byte for byte and its reference describes it.

        Usually fails when the backend opens files in text mode, or reports the size or hash of
        something other than the file's bytes.
        """
        import hashlib

        data = bytes(range(256)) * 40 + b"\r\n\x00tail"
        (tmp_path / "in.bin").write_bytes(data)
        ref = store.put_file(tmp_path / "in.bin", "models/one.bin")
        assert (ref.key, ref.kind, ref.size) == ("models/one.bin", "file", len(data))
        assert ref.sha256 == hashlib.sha256(data).hexdigest()
        assert ref.uri == store.uri_for("models/one.bin")
        out = store.get_file("models/one.bin", tmp_path / "out" / "one.bin")
        assert Path(out).read_bytes() == data

    def test_empty_file_roundtrip(self, store: ArtifactStore, tmp_path: Path) -> None:
        """An empty file is stored and fetched as an empty file.

        Usually fails when "no bytes" is confused with "no object" or a zero-length upload is
        skipped.
        """
        (tmp_path / "empty").write_bytes(b"")
        assert store.put_file(tmp_path / "empty", "e/empty").size == 0
        assert Path(store.get_file("e/empty", tmp_path / "got")).read_bytes() == b""

    def test_overwrite_replaces_file(self, store: ArtifactStore, tmp_path: Path) -> None:
        """Putting a key again replaces its content.

        Usually fails when the backend keeps the first version (e.g. caches by key, not by hash).
        """
        for text in ("first", "second"):
            (tmp_path / "f").write_text(text)
            store.put_file(tmp_path / "f", "k")
        assert Path(store.get_file("k", tmp_path / "got")).read_text() == "second"

    def test_missing_key_raises_not_found(self, store: ArtifactStore, tmp_path: Path) -> None:
        """Fetching a key that was never stored raises NotFoundError naming the key.

        Usually fails when the SDK's own exception (404, FileNotFoundError) leaks through.
        """
        for fetch in (store.get_file, store.get_tree):
            with pytest.raises(NotFoundError, match="never/stored"):
                fetch("never/stored", tmp_path / "dest")
        assert not store.exists("never/stored")

    @pytest.mark.parametrize("key", BAD_KEYS)
    def test_bad_keys_are_rejected(self, store: ArtifactStore, tmp_path: Path, key: str) -> None:
        """Absolute keys, '..', empty parts and backslashes raise UsageError before any I/O.

        Usually fails when keys are joined to a path or prefix without validation (path traversal).
        """
        (tmp_path / "f").write_text("x")
        with pytest.raises(UsageError):
            store.put_file(tmp_path / "f", key)
        with pytest.raises(UsageError):
            store.get_file(key, tmp_path / "dest")

    def test_exists(self, store: ArtifactStore, tmp_path: Path) -> None:
        """exists() is false before a put and true after, for files and trees.

        Usually fails when exists() checks a different path than put writes (e.g. a tree's folder
        instead of its manifest).
        """
        (tmp_path / "f").write_text("x")
        assert not store.exists("a/file") and not store.exists("a/tree")
        store.put_file(tmp_path / "f", "a/file")
        store.put_tree(make_sample_tree(tmp_path / "t"), "a/tree")
        assert store.exists("a/file") and store.exists("a/tree")

    def test_source_errors_are_clear(self, store: ArtifactStore, tmp_path: Path) -> None:
        """put_file of a missing file and put_tree of a file raise MldockError, not OSError.

        Usually fails when the backend opens the source without checking it first.
        """
        (tmp_path / "f").write_text("x")
        with pytest.raises(MldockError):
            store.put_file(tmp_path / "missing", "k")
        with pytest.raises(MldockError):
            store.put_tree(tmp_path / "f", "k")

    # --- trees ----------------------------------------------------------------------------------
    def test_tree_roundtrip(self, store: ArtifactStore, tmp_path: Path) -> None:
        """A tree with nested folders, an empty file, binary bytes and unicode names comes back
        whole.

        Usually fails on unicode names (encoding of keys), on empty files, or when nested folders
        are flattened.
        """
        source = make_sample_tree(tmp_path / "src")
        ref = store.put_tree(source, "trees/sample")
        assert (ref.kind, ref.key) == ("tree", "trees/sample")
        assert ref.size == sum(len(v) for v in snapshot(source).values())
        assert len(ref.sha256) == 64
        out = store.get_tree("trees/sample", tmp_path / "out")
        assert snapshot(Path(out)) == snapshot(source)

    def test_tree_modes_kept(self, store: ArtifactStore, tmp_path: Path) -> None:
        """An executable file in a tree is executable after get_tree.

        Usually fails when the manifest does not record permission bits.
        """
        require_capability(self, "supports_modes", "file modes")
        store.put_tree(make_sample_tree(tmp_path / "src"), "t")
        out = Path(store.get_tree("t", tmp_path / "out"))
        assert os.stat(out / "nested" / "run.sh").st_mode & 0o100

    def test_tree_hash_depends_only_on_content(self, store: ArtifactStore, tmp_path: Path) -> None:
        """The same content gives the same tree hash under two keys; one changed byte changes it.

        Usually fails when the manifest is serialised in file-system order or includes timestamps.
        """
        source = make_sample_tree(tmp_path / "src")
        first = store.put_tree(source, "t/one").sha256
        assert store.put_tree(source, "t/two").sha256 == first
        (source / "top.txt").write_text("hellO\n")
        assert store.put_tree(source, "t/three").sha256 != first

    def test_overwrite_replaces_tree(self, store: ArtifactStore, tmp_path: Path) -> None:
        """Putting a tree again replaces it whole: files missing from the new version are gone.

        Usually fails when a tree is stored as loose objects under a prefix and old ones remain.
        """
        source = make_sample_tree(tmp_path / "src")
        store.put_tree(source, "t")
        (source / "top.txt").unlink()
        (source / "new.txt").write_text("new")
        store.put_tree(source, "t")
        assert snapshot(Path(store.get_tree("t", tmp_path / "out"))) == snapshot(source)

    def test_kind_mismatch_is_an_error(self, store: ArtifactStore, tmp_path: Path) -> None:
        """get_file of a tree and get_tree of a file raise MldockError instead of guessing.

        Usually fails when the backend writes the manifest to the destination as if it were a file.
        """
        (tmp_path / "f").write_text("x")
        store.put_file(tmp_path / "f", "a/file")
        store.put_tree(make_sample_tree(tmp_path / "t"), "a/tree")
        with pytest.raises(MldockError):
            store.get_file("a/tree", tmp_path / "x")
        with pytest.raises(MldockError):
            store.get_tree("a/file", tmp_path / "y")

    # --- list and delete -------------------------------------------------------------------------
    def test_list_sorted_with_prefix(self, store: ArtifactStore, tmp_path: Path) -> None:
        """list() returns complete keys sorted; list('p/') only those under p/; keys nest.

        Usually fails when list() returns the files inside a tree, or the order of the backend.
        """
        require_capability(self, "supports_list", "list")
        (tmp_path / "f").write_text("x")
        keys = ["runs/b/model", "runs/a/model", "runs/a/model/extra", "other"]
        for key in keys:
            store.put_file(tmp_path / "f", key)
        store.put_tree(make_sample_tree(tmp_path / "t"), "runs/c/tree")
        assert store.list() == sorted([*keys, "runs/c/tree"])
        assert store.list("runs/a/") == ["runs/a/model", "runs/a/model/extra"]
        assert store.list("nothing/") == []

    def test_delete(self, store: ArtifactStore, tmp_path: Path) -> None:
        """delete() makes a key disappear from exists/list/get; deleting it again is no error.

        Usually fails when a tree's files are removed but its manifest is not (or the reverse).
        """
        require_capability(self, "supports_delete", "delete")
        (tmp_path / "f").write_text("x")
        store.put_file(tmp_path / "f", "d/file")
        store.put_tree(make_sample_tree(tmp_path / "t"), "d/tree")
        store.put_file(tmp_path / "f", "d/kept")
        for key in ("d/file", "d/tree"):
            store.delete(key)
            assert not store.exists(key)
            with pytest.raises(NotFoundError):
                store.get_file(key, tmp_path / "x")
            store.delete(key)
        assert store.exists("d/kept")
        if self.supports_list:
            assert store.list("d/") == ["d/kept"]

    # --- atomicity, integrity, deduplication --------------------------------------------------
    def test_readers_never_see_a_partial_tree(self, store: ArtifactStore, tmp_path: Path) -> None:
        """Readers polling while a large tree is written see the old tree or the new one, never a
        mix.

        Also checks a brand-new key: once exists() or list() shows it, get_tree gets all of it.
        Usually fails when files are uploaded under the final key one by one, or when the manifest
        (or index) is written before the files it names.
        """
        require_capability(self, "supports_concurrency", "concurrent readers")
        versions = {}
        for name, count in (("old", 40), ("new", 160)):
            root = tmp_path / name
            for i in range(count):
                (root / f"d{i % 7}").mkdir(parents=True, exist_ok=True)
                (root / f"d{i % 7}" / f"f{i}.txt").write_text(f"{name} {i}\n" * 200)
            versions[name] = snapshot(root)
        store.put_tree(tmp_path / "old", "live/model")
        done, errors, seen = threading.Event(), [], {"reads": 0}

        def read(key: str, allowed: list[dict[str, bytes]], n: int) -> None:
            visible = store.exists(key) or (self.supports_list and key in store.list("live/"))
            if not visible:
                return
            try:
                got = snapshot(Path(store.get_tree(key, tmp_path / "reads" / f"{key[5:]}{n}")))
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                errors.append(f"{key}: {type(exc).__name__}: {exc}")
                return
            seen["reads"] += 1
            if got not in allowed:
                errors.append(f"{key}: partial or mixed tree with {len(got)} files")

        def reader(who: int) -> None:
            n = 0
            while not done.is_set() and not errors:
                n += 1
                read("live/model", [versions["old"], versions["new"]], who * 100000 + n)
                read("live/fresh", [versions["new"]], who * 100000 + n)
            read("live/model", [versions["new"]], who * 100000 + n + 1)  # after: the new one

        threads = [threading.Thread(target=reader, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        try:
            store.put_tree(tmp_path / "new", "live/model")
            store.put_tree(tmp_path / "new", "live/fresh")
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=120)
        assert not errors, errors[:5]
        assert seen["reads"] >= 2

    def test_corrupted_content_is_detected(self, store: ArtifactStore, tmp_path: Path) -> None:
        """A fetch of content whose bytes no longer match the recorded hash raises MldockError
        naming the key, and leaves nothing at the destination.

        Usually fails when downloads are not hashed, or are hashed after being moved into place.
        """
        (tmp_path / "f").write_bytes(os.urandom(4096))
        store.put_file(tmp_path / "f", "sealed/file")
        try:
            self.corrupt(store, "sealed/file")
        except NotImplementedError:
            pytest.skip(f"{backend_label(self)} gives no corrupt(store, key) helper: override it"
                        " in the contract subclass to test hash verification")
        dest = tmp_path / "out" / "file"
        with pytest.raises(MldockError, match="sealed/file"):
            store.get_file("sealed/file", dest)
        assert not dest.exists()

    def test_unchanged_content_is_not_sent_again(self, store: ArtifactStore, tmp_path: Path
                                                 ) -> None:
        """Storing content the store already has transfers (almost) no bytes; a tree with one
        changed file transfers about that file only.

        Usually fails when deduplication is by key or mtime instead of by content hash.
        """
        require_capability(self, "supports_content_addressing", "content-addressed")
        if self.bytes_sent(store) is None:
            pytest.skip(f"{backend_label(self)} exposes no byte counter: give"
                        " store.stats.bytes_sent or override bytes_sent(store)")
        def sent() -> int:
            return self.bytes_sent(store) or 0

        big = os.urandom(1 << 20)
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "big.bin").write_bytes(big)
        (tmp_path / "t" / "small.txt").write_text("v1")
        before = sent()
        store.put_file(tmp_path / "t" / "big.bin", "dedup/a")
        first = sent() - before
        store.put_file(tmp_path / "t" / "big.bin", "dedup/b")
        second = sent() - before - first
        assert first >= len(big) and second < len(big) // 16, (first, second)
        before = sent()
        store.put_tree(tmp_path / "t", "dedup/tree1")  # big.bin already stored
        (tmp_path / "t" / "small.txt").write_text("v2")
        store.put_tree(tmp_path / "t", "dedup/tree2")
        assert sent() - before < len(big) // 16

    # --- model folders --------------------------------------------------------------------------
    def test_link_leaving_the_folder_is_refused(self, store: ArtifactStore, tmp_path: Path
                                                ) -> None:
        """A tree holding a link that points outside it is refused by an error naming the link,
        and nothing is published under the key.

        Usually fails when the backend walks the folder with ``os.walk``/``rglob`` and follows
        links (a model folder's ``env -> /proc/self/environ`` would copy the host's secrets into
        the store): walk it with :func:`mldock.trees.walk_contained`.
        """
        secret = tmp_path / "outside.txt"
        secret.write_text("never stored")
        tree = tmp_path / "model"
        (tree / "sub").mkdir(parents=True)
        (tree / "weights.bin").write_bytes(b"w" * 100)
        (tree / "sub" / "leak").symlink_to(secret)
        with pytest.raises(MldockError, match="sub/leak"):
            store.put_tree(tree, "links/out")
        assert not store.exists("links/out")

    def test_link_inside_the_folder_is_stored_as_a_copy(self, store: ArtifactStore,
                                                        tmp_path: Path) -> None:
        """A link to a file inside the tree comes back as a regular file with the target's bytes.

        Usually fails when links are skipped, or stored as links that dangle after a fetch.
        """
        tree = tmp_path / "model"
        tree.mkdir()
        (tree / "checkpoint-9.bin").write_bytes(b"nine")
        (tree / "latest.bin").symlink_to("checkpoint-9.bin")
        store.put_tree(tree, "links/in")
        out = Path(store.get_tree("links/in", tmp_path / "out"))
        assert not (out / "latest.bin").is_symlink()
        assert (out / "latest.bin").read_bytes() == b"nine"

    # --- misc -----------------------------------------------------------------------------------
    def test_progress_receives_lines(self, store: ArtifactStore, tmp_path: Path) -> None:
        """A progress sink given to put and get receives only strings (possibly none).

        Usually fails when the backend passes raw SDK callback values (ints, dicts) to the sink.
        """
        lines: list[Any] = []
        store.put_tree(make_sample_tree(tmp_path / "t"), "p/t", progress=lines.append)
        store.get_tree("p/t", tmp_path / "out", progress=lines.append)
        assert all(isinstance(line, str) for line in lines)

    def test_check_is_healthy(self, store: ArtifactStore) -> None:
        """check() of a working store returns HealthChecks that all pass.

        Usually fails when the check probes a location the store does not use.
        """
        checks = store.check()
        assert all(isinstance(c, HealthCheck) for c in checks)
        assert all(c.ok for c in checks), [c for c in checks if not c.ok]


# --- the content-addressed layout, as mldock has always written it ------------------------------
GOLDEN_OBJECTS: dict[str, bytes] = {
    "blobs/sha256/d8/cf87a0db3a90a07e1741397fab39aa233234d79b800f71ea4848155f30f78e":
        b"weights\x00\x01",
    "blobs/sha256/e8/c628edc9968ef0c668f54e0ba2636b35503357eb1aca0ddc828aeace432f67":
        b'{"a": 1}\n',
    "blobs/sha256/58/91b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03": b"hello\n",
    "blobs/sha256/3b/e8077578a2d0399c75edad7dd8702382188b2df2a994423f71307a0318dd7a": (
        b'{"model.bin":{"mode":420,"sha256":"d8cf87a0db3a90a07e1741397fab39aa233234d79b800f71ea48'
        b'48155f30f78e","size":9},"sub/config.json":{"mode":493,"sha256":"e8c628edc9968ef0c668f54e'
        b'0ba2636b35503357eb1aca0ddc828aeace432f67","size":9}}'),
    "refs/models/iris/.mldock-ref": (
        b'{"format": 1, "key": "models/iris", "kind": "tree", "sha256": "3be8077578a2d0399c75edad7'
        b'dd8702382188b2df2a994423f71307a0318dd7a", "size": 18, "stored_at": 1796029215.7088935}'),
    "refs/notes/readme/.mldock-ref": (
        b'{"format": 1, "key": "notes/readme", "kind": "file", "sha256": "5891b5b522d5df086d0ff0b1'
        b'10fbd9d21bb4fc7163af34d08286a2e846f6be03", "size": 6, "stored_at": 1796029215.7102726}'),
}
"""Every object of a store written by mldock before :mod:`mldock.cas` (commit 46c859c's local
store: ``put_tree(GOLDEN_TREE, "models/iris")`` then ``put_file(b"hello\\n", "notes/readme")``),
by its name under the store's root. A store on :mod:`mldock.cas` must read these back and write
the same bytes (``stored_at`` aside) for the same content."""

GOLDEN_TREE: dict[str, tuple[bytes, int]] = {
    "model.bin": (b"weights\x00\x01", 0o644),
    "sub/config.json": (b'{"a": 1}\n', 0o755),
}
"""The tree stored as ``models/iris`` in :data:`GOLDEN_OBJECTS`: relpath -> (bytes, mode)."""


def write_golden_tree(folder: Path) -> Path:
    """Create :data:`GOLDEN_TREE` under ``folder``; return ``folder``."""
    for rel, (data, mode) in GOLDEN_TREE.items():
        path = folder.joinpath(*rel.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
    return folder
