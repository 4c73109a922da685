"""A full disk, for real: small tmpfs file systems as the store, the runs database and ``.mldock``.

Each test mounts its own tmpfs of a few MB (root is needed; without it the tests fail under
MLDOCK_REQUIRE_DOCKER=1, as CI sets it, and skip elsewhere) and unmounts it afterwards. The
promise checked: the user reads ``no space left on <folder>: free some space …`` and no
temporary file is left behind, through the store and tracker APIs and through the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from mldock.errors import MldockError
from mldock.local.storage import LocalArtifactStore, atomic_write_bytes
from mldock.local.tracking import SqliteTracker

MLDOCK = str(Path(sys.executable).parent / "mldock")
BIG_TRAIN = '''

_fit = train


def train(ctx):
    """The template's training, then a model file bigger than the store's disk."""
    import os

    _fit(ctx)
    with open(os.path.join(ctx.model_dir, "weights.bin"), "wb") as handle:
        handle.write(os.urandom(3 << 20))
'''


@pytest.fixture
def small_disk(tmp_path: Path):
    """``small_disk(name, size="2m")``: a fresh tmpfs mounted at ``tmp_path/name`` (or at
    ``name`` when it is an absolute path)."""
    mounted: list[Path] = []

    def mount(name: str | Path, size: str = "2m") -> Path:
        point = tmp_path / name
        point.mkdir()
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                                 str(point)], check=False, capture_output=True, text=True)
        if result.returncode != 0:
            reason = f"cannot mount a tmpfs: {result.stderr.strip() or result.returncode}"
            if os.environ.get("MLDOCK_REQUIRE_DOCKER") == "1":
                pytest.fail(f"{reason} (the disk-full tests need root)", pytrace=False)
            pytest.skip(reason)
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        if subprocess.run(["umount", str(point)], check=False, capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], check=True)


def fill(folder: Path) -> Path:
    """Write a file in ``folder`` until its disk is full; return the file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_blob_bigger_than_the_disk(small_disk, tmp_path: Path) -> None:
    disk = small_disk("store", "1m")
    store = LocalArtifactStore(disk / "artifacts")
    (tmp_path / "big.bin").write_bytes(os.urandom(2 << 20))
    with pytest.raises(MldockError) as info:
        store.put_file(tmp_path / "big.bin", "big")
    assert info.value.message == (f"no space left on {disk / 'artifacts'}: free some space and"
                                  " try again")
    assert "[storage] uri" in info.value.hint
    assert files_under(disk) == [], "a temporary blob was left behind"


def test_small_write_failing_at_flush_and_close_leaves_no_temp(small_disk) -> None:
    """A write smaller than the buffer fails only at flush, and again at close: the temp file
    must still be removed."""
    disk = small_disk("refs", "1m")
    (disk / "refs").mkdir()
    filler = fill(disk)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(disk / "refs" / "ref.json", b"x" * 3000)
    assert files_under(disk) == [filler.name]


def test_tree_on_a_full_store_then_freed(small_disk, tmp_path: Path) -> None:
    disk = small_disk("store")
    store = LocalArtifactStore(disk / "artifacts")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "a.bin").write_bytes(os.urandom(300_000))
    (tmp_path / "model" / "b.bin").write_bytes(os.urandom(300_000))
    store.put_file(tmp_path / "model" / "a.bin", "warm")  # the store's folders exist
    filler = fill(disk)
    with pytest.raises(MldockError, match=r"^no space left on "):
        store.put_tree(tmp_path / "model", "m")
    assert not store.exists("m")
    assert [f for f in files_under(disk) if "tmp" in f.split("/")] == []
    filler.unlink()
    store.put_tree(tmp_path / "model", "m")  # room again: it works, nothing to clean by hand
    assert store.exists("m")


def test_new_runs_database_on_a_full_disk(small_disk) -> None:
    disk = small_disk("db", "1m")
    fill(disk)
    with pytest.raises(MldockError) as info:
        SqliteTracker(disk / "runs.db").create_run("p")
    assert info.value.message == f"no space left on {disk}: free some space and try again"
    assert "WAL" not in str(info.value) and "[tracking] uri" in info.value.hint


def test_existing_runs_database_fills_up_then_recovers(small_disk) -> None:
    disk = small_disk("db", "1m")
    tracker = SqliteTracker(disk / "runs.db")
    run = tracker.create_run("p")
    filler = fill(disk)
    with pytest.raises(MldockError, match=f"^no space left on {disk}: free some space"):
        tracker.log_params(run, {f"p{i}": "v" * 1000 for i in range(300)})
    filler.unlink()
    tracker.log_params(run, {"alpha": 1})
    assert tracker.get_run(run).params == {"alpha": 1}
    tracker.close()


# --- through the real CLI -------------------------------------------------------------------------
def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    return subprocess.run([MLDOCK, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def make_project(root: Path) -> Path:
    name = f"h6full{uuid.uuid4().hex[:8]}"
    made = cli("init", name, "--template", "minimal", "--no-input", cwd=root)
    assert made.returncode == 0, made.stderr
    project = root / name
    with open(project / "src" / name / "train.py", "a") as handle:
        handle.write(BIG_TRAIN)
    return project


def test_cli_train_into_a_full_store(small_disk, tmp_path: Path) -> None:
    disk = small_disk("store")
    project = make_project(tmp_path)
    with open(project / "mldock.toml", "a") as handle:
        handle.write(f'\n[storage]\nuri = "{disk / "artifacts"}"\n')
    result = cli("train", "--no-container", cwd=project)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no space left on {disk / 'artifacts'}: free some space")
    assert "Traceback" not in result.stderr
    assert [f for f in files_under(disk) if f.startswith("artifacts/tmp/")] == []
    assert not (disk / "artifacts" / "refs").exists(), "nothing may be published"
    runs = json.loads(cli("runs", "list", "--json", cwd=project).stdout)
    assert runs[0]["status"] == "failed" and "no space left on" in runs[0]["error"]


def test_cli_train_with_a_full_runs_database(small_disk, tmp_path: Path) -> None:
    """The project's ``.mldock`` (runs database, run folders) is a full disk."""
    project = make_project(tmp_path)
    dot = small_disk(project / ".mldock", "1m")
    fill(dot)
    result = cli("train", "--no-container", cwd=project)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "WAL" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: no space left on {dot}: free some space"), result.stderr

