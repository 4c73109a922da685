"""The contained tree walker (mldock.trees) and the local store on hostile model folders.

Each case is a real folder on disk with real links, FIFOs, sockets and device nodes: what a
``train`` could leave in its model folder for the host to read.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import threading
from pathlib import Path

import pytest
from mldock.errors import MldockError
from mldock.local.storage import LocalArtifactStore
from mldock.trees import UnsafeTreeError, open_entry, walk_contained

SECRET = b"H6_SECRET_MARKER_f1e2d3"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the model folder, holding a secret the walk must never read."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(SECRET)
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"w" * 100)
    (folder / "sub" / "config.json").write_text("{}")
    os.chmod(folder / "sub" / "config.json", 0o600)
    return folder


def refused(folder: Path) -> str:
    with pytest.raises(UnsafeTreeError) as info:
        walk_contained(folder)
    return info.value.message


def no_hang(func, *args):
    """Run ``func`` in a thread: a hang (a FIFO opened for reading) fails instead of blocking
    the test session. The result or the exception is returned."""
    box: list = []

    def run() -> None:
        try:
            box.append(func(*args))
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert box, f"{func.__name__} hung"
    return box[0]


def test_plain_tree_is_listed_sorted_with_modes(model: Path) -> None:
    entries = walk_contained(model)
    assert [e.rel for e in entries] == ["sub/config.json", "weights.bin"]
    config = entries[0]
    assert config.mode == 0o600 and config.size == 2
    info = os.stat(model / "sub" / "config.json")
    assert config.identity == (info.st_dev, info.st_ino)
    with open_entry(config) as handle:
        assert handle.read() == b"{}"


def test_link_to_proc_environ_is_refused_naming_it(model: Path) -> None:
    os.symlink("/proc/self/environ", model / "env")
    assert refused(model) == ("model folder contains a link that leaves it:"
                              " env -> /proc/self/environ")


@pytest.mark.parametrize("make", [
    pytest.param(lambda m, o: os.symlink(o / "secret.txt", m / "abs"), id="absolute-file"),
    pytest.param(lambda m, o: os.symlink("../outside/secret.txt", m / "rel"), id="dotdot"),
    pytest.param(lambda m, o: os.symlink("../../outside/secret.txt", m / "sub" / "deep"),
                 id="dotdot-from-subfolder"),
    pytest.param(lambda m, o: os.symlink(o, m / "dirlink"), id="folder-outside"),
    pytest.param(lambda m, o: os.symlink("..", m / "parent"), id="parent-folder"),
    pytest.param(lambda m, o: os.symlink("/", m / "root"), id="filesystem-root"),
    pytest.param(lambda m, o: os.symlink("/nonexistent/anything", m / "dangling-out"),
                 id="dangling-outside"),
])
def test_links_leaving_the_folder_are_refused(model: Path, outside: Path, make) -> None:
    make(model, outside)
    assert "contains a link that leaves it" in refused(model)


def test_link_chain_out_is_refused_showing_the_chain(model: Path, outside: Path) -> None:
    os.symlink("b", model / "a")
    os.symlink("sub/c", model / "b")
    os.symlink(str(outside / "secret.txt"), model / "sub" / "c")
    message = refused(model)
    assert "a -> b -> sub/c -> " in message or "b -> sub/c -> " in message
    assert message.endswith(str(outside / "secret.txt"))


def test_dotdot_through_a_folder_link_resolves_like_the_kernel(model: Path, outside: Path
                                                               ) -> None:
    """Textually ``x/y/d/../../outside/secret.txt`` stays inside; the kernel resolves ``d``
    first (to ``model/e``), so ``..`` twice leaves the folder. Judged as the kernel reads it."""
    (model / "e").mkdir()
    (model / "x" / "y").mkdir(parents=True)
    os.symlink("../../e", model / "x" / "y" / "d")
    os.symlink("d/../../outside/secret.txt", model / "x" / "y" / "l")
    assert (model / "x" / "y" / "l").read_bytes() == SECRET  # what a follower would read
    assert "x/y/l -> d/../../outside/secret.txt" in refused(model)


def test_hop_outside_and_back_is_refused(model: Path, outside: Path) -> None:
    os.symlink(str(model / "weights.bin"), outside / "back")
    os.symlink(str(outside / "back"), model / "via-outside")
    assert "via-outside" in refused(model)


def test_links_inside_are_stored_as_copies_of_their_targets(model: Path) -> None:
    os.symlink("weights.bin", model / "latest.bin")
    os.symlink("sub", model / "current")
    os.symlink(str(model / "sub" / "config.json"), model / "abs-inside.json")
    os.symlink("nowhere", model / "dangling")  # no content: left out
    entries = {e.rel: e for e in walk_contained(model)}
    assert sorted(entries) == ["abs-inside.json", "current/config.json", "latest.bin",
                               "sub/config.json", "weights.bin"]
    assert entries["latest.bin"].path == Path(os.path.realpath(model / "weights.bin"))
    assert entries["current/config.json"].mode == 0o600
    with open_entry(entries["latest.bin"]) as handle:
        assert handle.read() == b"w" * 100


@pytest.mark.parametrize("make", [
    pytest.param(lambda m: os.symlink(".", m / "self"), id="folder-self"),
    pytest.param(lambda m: os.symlink("..", m / "sub" / "up"), id="folder-parent-inside"),
    pytest.param(lambda m: (os.symlink("b", m / "a"), os.symlink("a", m / "b")), id="a-b-a"),
    pytest.param(lambda m: os.symlink("loop", m / "loop"), id="self-link"),
])
def test_link_loops_are_errors_not_hangs(model: Path, make) -> None:
    make(model)
    result = no_hang(walk_contained, model)
    assert isinstance(result, UnsafeTreeError) and "link loop" in result.message


def test_fifo_is_refused_without_opening_it(model: Path) -> None:
    os.mkfifo(model / "pipe")
    result = no_hang(walk_contained, model)
    assert isinstance(result, UnsafeTreeError)
    assert result.message == ("model folder contains a FIFO (named pipe), which cannot be"
                              " stored: pipe")


def test_link_to_a_fifo_inside_is_refused(model: Path) -> None:
    os.mkfifo(model / "sub" / "pipe")
    os.symlink("sub/pipe", model / "innocent.bin")
    result = no_hang(walk_contained, model)
    assert isinstance(result, UnsafeTreeError) and "FIFO" in result.message


def test_socket_is_refused(model: Path) -> None:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(model / "sock"))
        assert "socket, which cannot be stored: sock" in refused(model)


def test_device_node_is_refused(model: Path) -> None:
    """What ``mknod`` (allowed by Docker's default capabilities) leaves in a bind mount."""
    try:
        os.mknod(model / "disk", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        pytest.skip("mknod needs CAP_MKNOD")
    assert "device file, which cannot be stored: disk" in refused(model)


def test_file_swapped_after_the_walk_is_refused(model: Path, outside: Path) -> None:
    """A file replaced by a link or a FIFO between walk and read is not read (nor waited on)."""
    entries = {e.rel: e for e in walk_contained(model)}
    os.unlink(model / "weights.bin")
    os.symlink(outside / "secret.txt", model / "weights.bin")
    with pytest.raises(UnsafeTreeError, match=r"changed while it was being read: weights.bin"):
        open_entry(entries["weights.bin"])
    os.unlink(model / "weights.bin")
    os.mkfifo(model / "weights.bin")
    result = no_hang(open_entry, entries["weights.bin"])
    assert isinstance(result, UnsafeTreeError)


def test_names_with_control_characters_are_quoted(model: Path) -> None:
    os.symlink("/etc/hostname", model / "evil\x1b[2Jname")
    message = refused(model)
    assert "\x1b" not in message and "evil\\x1b[2Jname" in message


def test_not_a_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(NotADirectoryError):
        walk_contained(tmp_path / "f")


# --- the local store ----------------------------------------------------------------------------
def store_files(store: LocalArtifactStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


def test_local_store_refuses_a_link_out_and_stores_nothing(model: Path, outside: Path,
                                                           tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    os.symlink(outside / "secret.txt", model / "zz-leak")  # after the good files in order
    with pytest.raises(MldockError) as info:
        store.put_tree(model, "runs/1/model")
    assert info.value.message.startswith("model folder contains a link that leaves it: zz-leak")
    assert not store.exists("runs/1/model")
    assert not any(SECRET in p.read_bytes() for p in store_files(store))


def test_local_store_roundtrip_of_links_inside(model: Path, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    os.symlink("weights.bin", model / "latest.bin")
    os.symlink("sub", model / "current")
    store.put_tree(model, "m")
    assert store.stats.blobs_written == 3  # weights, config, manifest: each content once
    out = store.get_tree("m", tmp_path / "out")
    assert not any(p.is_symlink() for p in out.rglob("*"))
    assert (out / "latest.bin").read_bytes() == b"w" * 100
    assert stat.S_IMODE(os.stat(out / "current" / "config.json").st_mode) == 0o600
    digest = hashlib.sha256(b"w" * 100).hexdigest()
    assert store.blob_path(digest).is_file()


def test_local_store_refuses_a_fifo_without_hanging(model: Path, tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "store")
    os.mkfifo(model / "pipe")
    result = no_hang(store.put_tree, model, "m")
    assert isinstance(result, UnsafeTreeError) and not store.exists("m")
