"""What a user hits on a bad day: each is one clear line, a non-zero exit, and nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

SLOW_TRAIN = '''
import time
from pathlib import Path


def train(ctx):
    def save():
        (ctx.checkpoint_dir / "checkpoint.txt").write_text("step saved")
    ctx.on_stop(save)
    for step in range(600):
        ctx.log_metric("loss", 1.0 / (step + 1), step=step)
        time.sleep(0.1)
'''

RAISING_TRAIN = '''
def train(ctx):
    raise ValueError("the data has no column named 'species'")
'''


def _set_train(project: Path, source: str) -> None:
    (project / "src" / project.name.replace("-", "_") / "train.py").write_text(source)


def test_train_before_build_is_a_clear_error(project_copy, mldock):
    _set_train(project_copy, RAISING_TRAIN)  # code changed: the image no longer matches
    result = mldock("train", cwd=project_copy, check=False)
    assert result.returncode == 4
    assert result.stderr.strip().startswith(f"error: image {project_copy.name}:")
    assert "mldock build" in result.stderr and "Traceback" not in result.stderr


def test_raising_train_marks_run_failed_with_traceback(project_copy, mldock, engine):
    _set_train(project_copy, RAISING_TRAIN)
    mldock("build", cwd=project_copy)
    result = mldock("train", cwd=project_copy, check=False)
    assert result.returncode == 1
    run_id = result.stdout.strip()
    assert "Traceback" in result.stderr  # the traceback is shown in the streamed log
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: run {run_id} failed:")
    assert "no column named 'species'" in result.stderr.strip().splitlines()[-1]
    run = json.loads(mldock("runs", "show", run_id, "--json", cwd=project_copy).stdout)
    assert run["status"] == "failed" and "no column named 'species'" in run["error"]
    failure = project_copy / ".mldock" / "runs" / run_id / "opt_ml" / "output" / "failure"
    assert "ValueError" in failure.read_text()  # the SageMaker failure file, read back


def test_sigterm_marks_run_killed_keeps_checkpoint_and_metrics_arrive_live(project_copy, mldock):
    _set_train(project_copy, SLOW_TRAIN)
    mldock("build", cwd=project_copy)
    cli = Path(sys.executable).parent / "mldock"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    child = subprocess.Popen([str(cli), "train"], cwd=project_copy, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    try:
        live = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and live is None:
            time.sleep(1)
            runs = json.loads(mldock("runs", "list", "--json", cwd=project_copy).stdout)
            if runs and runs[0]["status"] == "running" and runs[0]["metrics"].get("loss"):
                live = runs[0]
        assert live is not None, "metrics did not reach the tracker while the run was going"
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, stderr[-2000:]
    run = json.loads(mldock("runs", "show", live["id"], "--json", cwd=project_copy).stdout)
    assert run["status"] == "killed"
    assert len(run["metric_history"]["loss"]) >= 2
    checkpoint = project_copy / ".mldock" / "runs" / live["id"] / "opt_ml" / "checkpoints"
    assert (checkpoint / "checkpoint.txt").read_text() == "step saved"


def test_unknown_run_id(built_project, mldock):
    result = mldock("runs", "show", "doesnotexist", cwd=built_project, check=False)
    assert result.returncode == 4 and "doesnotexist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_port_taken(built_project, mldock):
    mldock("train", "-q", "--no-container", "-p", "n_estimators=3", cwd=built_project)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = mldock("deploy", "--port", str(port), cwd=built_project, check=False)
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: port")


def test_no_engine_running(built_project, mldock):
    result = mldock("train", cwd=built_project, check=False,
                    env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert result.returncode == 3
    assert result.stderr.strip().startswith("error: cannot reach the Docker engine")
    assert "Traceback" not in result.stderr


def test_malformed_payload_is_a_clear_error(built_project, mldock, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = mldock("predict", "--data", str(bad), cwd=built_project, check=False)
    assert result.returncode == 2 and "not valid JSON" in result.stderr
