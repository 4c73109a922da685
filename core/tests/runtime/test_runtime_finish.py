"""Two SageMaker hosts as two real runtime processes: the secondary waits for the primary.

SageMaker SDK local mode stops every host as soon as one exits; a quick secondary used to kill the
primary before it had written the model. These tests check the order of events, never timings.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

PRIMARY_TRAIN = '''
import os, pathlib, time

def train(ctx):
    release = pathlib.Path(os.environ["RELEASE_FILE"])
    while not release.exists():  # held until the test says so
        time.sleep(0.05)
    (pathlib.Path(ctx.model_dir) / "weights.txt").write_text("primary")
'''

SECONDARY_TRAIN = '''
def train(ctx):
    pass
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _host_tree(root: Path, current: str, hosts: list[str]) -> Path:
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": current, "hosts": hosts}))
    (root / "model").mkdir()
    return root


def _module(tmp_path: Path, name: str, source: str) -> Path:
    src = tmp_path / f"src-{name}" / name
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "train.py").write_text(source)
    return src.parent


def _start(rt, tmp_path: Path, host: str, module: str, source: str, **extra: str):
    tree = _host_tree(tmp_path / host, host, ["localhost", "secondary"])
    env = rt.env(MLDOCK_OPT_ML=str(tree), MLDOCK_TRAIN=f"{module}.train:train", **extra)
    env["PYTHONPATH"] += f"{os.pathsep}{_module(tmp_path, module, source)}"
    return tree, subprocess.Popen(rt.cmd("train"), env=env, stderr=subprocess.PIPE, text=True)


def test_secondary_waits_until_the_primary_has_published(rt, tmp_path):
    """Fails when a secondary exits while the primary still trains (compose then kills it)."""
    port = str(_free_port())
    release = tmp_path / "release"
    primary_tree, primary = _start(rt, tmp_path, "localhost", "prim", PRIMARY_TRAIN,
                                   MLDOCK_FINISH_PORT=port, RELEASE_FILE=str(release))
    _, secondary = _start(rt, tmp_path, "secondary", "sec", SECONDARY_TRAIN,
                          MLDOCK_FINISH_PORT=port)
    try:
        seen = []
        for line in secondary.stderr:  # until it says it waits (or exits without waiting)
            seen.append(line)
            if "waiting for the primary host localhost" in line:
                break
        assert any("waiting for the primary host" in line for line in seen), "".join(seen)
        assert secondary.poll() is None  # still there while the primary trains
        release.touch()
        assert primary.wait(timeout=120) == 0, primary.stderr.read()
        assert secondary.wait(timeout=120) == 0
        assert (primary_tree / "model" / "mldock-model.json").is_file()
    finally:
        release.touch()
        for process in (primary, secondary):
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stderr.close()


def test_secondary_does_not_wait_for_an_unreachable_primary(rt, tmp_path):
    """A primary whose name does not resolve (no network between the hosts) is not waited for."""
    tree = _host_tree(tmp_path / "h2", "algo-2", ["primary.invalid", "algo-2"])
    env = rt.env(MLDOCK_OPT_ML=str(tree), MLDOCK_TRAIN="sec.train:train",
                 MLDOCK_FINISH_PORT=str(_free_port()))
    env["PYTHONPATH"] += f"{os.pathsep}{_module(tmp_path, 'sec', SECONDARY_TRAIN)}"
    result = subprocess.run(rt.cmd("train"), env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "primary host primary.invalid not reachable" in result.stderr


def test_waiting_can_be_turned_off(rt, tmp_path):
    tree = _host_tree(tmp_path / "h2", "algo-2", ["localhost", "algo-2"])
    env = rt.env(MLDOCK_OPT_ML=str(tree), MLDOCK_TRAIN="sec.train:train", MLDOCK_PRIMARY_WAIT="0")
    env["PYTHONPATH"] += f"{os.pathsep}{_module(tmp_path, 'sec', SECONDARY_TRAIN)}"
    result = subprocess.run(rt.cmd("train"), env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert "waiting for the primary" not in result.stderr
    assert "not reachable" not in result.stderr
