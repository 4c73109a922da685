"""``kill -9`` of ``mldock train`` (issue 10, item 9): the next command records the truth.

The killed CLI cannot finish its run, so ``runs list`` / ``runs show`` / ``logs -f`` reconcile it:
while the training container still runs the run stays ``running`` (that is the truth), once the
container has ended the run is ``killed`` with the reason, and ``logs -f`` returns when the job
ends instead of waiting forever. A ``--no-container`` run killed with -9 is ``killed`` at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

SLOW_TRAIN = '''
import time


def train(ctx):
    for step in range(40):
        print(f"step {step}", flush=True)
        ctx.log_metric("loss", 1.0 / (step + 1), step=step)
        time.sleep(0.5)
'''
CLI = str(Path(sys.executable).parent / "mldock")


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}


def _set_train(project: Path) -> None:
    (project / "src" / project.name.replace("-", "_") / "train.py").write_text(SLOW_TRAIN)


def _start_and_kill(project: Path, runs_json, *args: str) -> dict:
    """Start ``mldock train ARGS`` in its own session, wait until its run logs metrics, then
    ``kill -9`` it (and reap it); returns the run as listed just before."""
    child = subprocess.Popen([CLI, "train", *args], cwd=project, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)
    try:
        live = None
        deadline = time.monotonic() + 180
        while live is None and time.monotonic() < deadline and child.poll() is None:
            time.sleep(1)
            runs = runs_json(project)
            if runs and runs[0]["status"] == "running" and runs[0]["metrics"].get("loss"):
                live = runs[0]
        assert live is not None, "the run never got going"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        return live
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if "--no-container" in args:  # its training child was in the same (own) session
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


def test_kill_9_of_a_container_run(project_copy, mldock, runs_json, engine):
    _set_train(project_copy)
    mldock("build", cwd=project_copy)
    live = _start_and_kill(project_copy, runs_json)
    name = f"mldock-train-{live['id']}"
    try:
        container = engine.containers.get(name)
        assert container.status == "running"
        run = json.loads(mldock("runs", "show", live["id"], "--json", cwd=project_copy).stdout)
        assert run["status"] == "running"  # the truth: its container still trains
        follower = subprocess.Popen([CLI, "logs", "-f", live["id"]], cwd=project_copy,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=_env())
        try:
            note = follower.stderr.readline()  # said at once, and -f keeps following
            assert "still trains" in note and follower.poll() is None, note
            container.stop(timeout=2)
            out, err = follower.communicate(timeout=120)  # ends because the job ended
        finally:
            if follower.poll() is None:
                follower.kill()
        assert follower.returncode == 0, err
        assert "step 0" in out and f"run {live['id']} killed" in err
        listed = next(r for r in runs_json(project_copy) if r["id"] == live["id"])
        assert listed["status"] == "killed", listed
        assert "exit code 137" in listed["error"] or "exit code 143" in listed["error"]
        assert "pid " in listed["error"] and listed["ended_at"] is not None
        assert not engine.containers.list(all=True, filters={"name": name})
    finally:
        for leftover in engine.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True)


def test_kill_9_of_a_no_container_run(project_copy, mldock, runs_json):
    _set_train(project_copy)
    live = _start_and_kill(project_copy, runs_json, "--no-container")
    listed = next(r for r in runs_json(project_copy) if r["id"] == live["id"])
    assert listed["status"] == "killed", listed
    assert "ended without recording the outcome" in listed["error"]
    done = subprocess.run([CLI, "logs", "-f", live["id"]], cwd=project_copy, env=_env(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "step 0" in done.stdout
