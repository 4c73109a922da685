"""``mldock-runtime train`` in a subprocess: manifest, metrics, failures, exit codes, SIGTERM."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time

import pytest


@pytest.fixture
def run_train(rt):
    def run(*args: str, timeout: float = 30, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(rt.cmd("train", *args), check=False, env=rt.env(**env),
                              capture_output=True, text=True, timeout=timeout)
    return run


@pytest.fixture
def local_dirs(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.csv").write_text("1,2\n3,4\n5,6\n")
    return {"MLDOCK_PLATFORM": "local", "MLDOCK_MODEL_DIR": str(tmp_path / "model"),
            "MLDOCK_OUTPUT_DIR": str(tmp_path / "output"),
            "MLDOCK_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "MLDOCK_INPUT_TRAIN": str(data)}


def test_local_success_writes_manifest_metrics_and_stdout(run_train, local_dirs, tmp_path):
    result = run_train("--w=3", MLDOCK_TRAIN="toy.train:train",
                       MLDOCK_PREDICTOR="toy.predict:Predictor", MLDOCK_RUN_ID="run-1",
                       MLDOCK_HYPERPARAMETERS='{"w": 2, "extra": "x"}', **local_dirs)
    assert result.returncode == 0, result.stderr
    model = tmp_path / "model"
    weights = model / "weights.json"
    assert json.loads(weights.read_text()) == {"w": 3}
    manifest = json.loads((model / "mldock-model.json").read_text())
    assert manifest["format"] == 1
    assert manifest["predictor"] == "toy.predict:Predictor"
    assert manifest["run_id"] == "run-1"
    assert manifest["created_at"].endswith("Z")
    assert manifest["files"] == {"weights.json": hashlib.sha256(weights.read_bytes()).hexdigest()}
    metrics = [json.loads(line) for line in
               (tmp_path / "output" / "mldock-metrics.jsonl").read_text().splitlines()]
    assert [(m["key"], m["value"], m["step"]) for m in metrics] == \
        [("rows", 3, None), ("loss", 0.5, 1), ("accuracy", 0.9, 1)]
    assert "mldock-metric rows=3\n" in result.stdout
    assert "mldock-metric loss=0.5 step=1\n" in result.stdout
    seen = json.loads((tmp_path / "output" / "ctx.json").read_text())
    assert seen["hyperparameters"] == {"w": 3, "extra": "x"} and seen["platform"] == "local"


def test_sagemaker_success(run_train, tmp_path):
    root = tmp_path / "opt_ml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"w": "5", "sagemaker_program": "x"}))
    (root / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    (root / "input" / "data" / "train").mkdir(parents=True)
    (root / "input" / "data" / "train" / "data.csv").write_text("1\n2\n")
    result = run_train(MLDOCK_OPT_ML=str(root), MLDOCK_TRAIN="toy.train:train",
                       TRAINING_JOB_NAME="sm-job")
    assert result.returncode == 0, result.stderr
    assert json.loads((root / "model" / "weights.json").read_text()) == {"w": 5}
    manifest = json.loads((root / "model" / "mldock-model.json").read_text())
    assert manifest["run_id"] == "sm-job" and manifest["platform"] == "sagemaker"
    seen = json.loads((root / "output" / "data" / "ctx.json").read_text())
    assert seen["hyperparameters"] == {"w": 5} and seen["hosts"] == ["algo-1"]
    assert not (root / "output" / "failure").exists()


def _two_host_tree(tmp_path, current: str):
    root = tmp_path / "opt_ml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "resourceconfig.json").write_text(
        json.dumps({"current_host": current, "hosts": ["algo-1", "algo-2"]}))
    (root / "input" / "data" / "train").mkdir(parents=True)
    (root / "input" / "data" / "train" / "data.csv").write_text("1\n")
    return root


def test_only_the_primary_publishes_the_model(run_train, tmp_path):
    primary = _two_host_tree(tmp_path / "h1", "algo-1")
    result = run_train(MLDOCK_OPT_ML=str(primary), MLDOCK_TRAIN="toy.train:train",
                       MLDOCK_STAGING_DIR=str(tmp_path / "h1" / "staging"))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (primary / "model").iterdir()) == \
        ["mldock-model.json", "weights.json"]

    secondary = _two_host_tree(tmp_path / "h2", "algo-2")
    staging = tmp_path / "h2" / "staging"
    result = run_train(MLDOCK_OPT_ML=str(secondary), MLDOCK_TRAIN="toy.train:train",
                       MLDOCK_STAGING_DIR=str(staging))
    assert result.returncode == 0, result.stderr
    # SageMaker uploads every host's /opt/ml/model: the non-primary's stays empty
    assert list((secondary / "model").glob("**/*")) == []
    assert (staging / "model-rank1" / "weights.json").is_file()  # train(ctx) ran unchanged
    assert "only the primary host (rank 0) publishes the model" in result.stderr
    assert json.loads((secondary / "output" / "data" / "ctx.json").read_text())["rank"] == 1


def test_a_non_primary_never_deletes_the_shared_model_folder(rt, tmp_path):
    """SageMaker SDK local mode shares one /opt/ml/model between hosts: what a non-primary finds
    there (here written straight to it) may be the primary's model and must survive."""
    src = tmp_path / "src" / "direct"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "train.py").write_text(
        "import os, pathlib\n"
        "def train(ctx):\n"
        "    model = pathlib.Path(os.environ['MLDOCK_OPT_ML']) / 'model'\n"
        "    (model / 'nested').mkdir(parents=True, exist_ok=True)\n"
        "    (model / 'nested' / 'w.bin').write_text('x')\n"
        "    (model / 'top.txt').write_text('y')\n")
    root = _two_host_tree(tmp_path, "algo-2")
    env = rt.env(MLDOCK_OPT_ML=str(root), MLDOCK_TRAIN="direct.train:train",
                 MLDOCK_STAGING_DIR=str(tmp_path / "staging"))
    env["PYTHONPATH"] += f"{os.pathsep}{tmp_path / 'src'}"
    result = subprocess.run(rt.cmd(), env=env, capture_output=True, text=True, timeout=60,
                            check=False)  # no command: resourceconfig.json says train
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (root / "model").iterdir()) == ["nested", "top.txt"]
    assert "removed" not in result.stderr


def test_every_host_writes_when_asked(run_train, tmp_path):
    root = _two_host_tree(tmp_path, "algo-2")
    result = run_train(MLDOCK_OPT_ML=str(root), MLDOCK_TRAIN="toy.train:train",
                       MLDOCK_MODEL_ON_EVERY_HOST="1")
    assert result.returncode == 0, result.stderr
    assert (root / "model" / "weights.json").is_file()
    assert not (root / "model" / "mldock-model.json").exists()  # the primary writes it
    assert "MLDOCK_MODEL_ON_EVERY_HOST is set" in result.stderr


def test_raising_train_on_sagemaker_writes_failure_file(run_train, tmp_path):
    root = tmp_path / "opt_ml"
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "resourceconfig.json").write_text('{"hosts": ["algo-1"]}')
    result = run_train(MLDOCK_OPT_ML=str(root), MLDOCK_TRAIN="toy.train:broken")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ZeroDivisionError: the loss exploded" in result.stderr
    failure = (root / "output" / "failure").read_text()
    # the first 1024 characters become the FailureReason: the error comes first
    assert failure[:1024].startswith("ZeroDivisionError: the loss exploded")
    assert "Traceback" in failure
    assert not (root / "model" / "mldock-model.json").exists()


def test_raising_train_locally_exit_1_traceback_on_stderr(run_train, local_dirs, tmp_path):
    result = run_train(MLDOCK_TRAIN="toy.train:broken", **local_dirs)
    assert result.returncode == 1
    assert "ZeroDivisionError: the loss exploded" in result.stderr
    assert not (tmp_path / "model" / "mldock-model.json").exists()


@pytest.mark.parametrize(("reference", "message"), [
    (None, "MLDOCK_TRAIN is not set"),
    ("toy.train", "must have the form 'module:object'"),
    ("toy.train:nothing", "has no attribute 'nothing'"),
    ("nosuchpackage.train:train", "module 'nosuchpackage' not found"),
])
def test_bad_reference_exit_2(run_train, local_dirs, reference, message):
    env = dict(local_dirs)
    if reference:
        env["MLDOCK_TRAIN"] = reference
    result = run_train(**env)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_reference_on_sagemaker_also_fills_failure_file(run_train, tmp_path):
    root = tmp_path / "opt_ml"
    result = run_train(MLDOCK_OPT_ML=str(root), TRAINING_JOB_ARN="arn:x",
                       MLDOCK_TRAIN="toy.train:nothing")
    assert result.returncode == 2
    assert "has no attribute 'nothing'" in (root / "output" / "failure").read_text()


def test_unknown_command_and_help(rt):
    env = rt.env()
    bad = subprocess.run(rt.cmd("fly"), check=False, env=env, capture_output=True, text=True,
                         timeout=30)
    assert bad.returncode == 2 and "unknown command 'fly'" in bad.stderr
    ok = subprocess.run(rt.cmd("--help"), check=False, env=env, capture_output=True, text=True,
                        timeout=30)
    assert ok.returncode == 0 and "usage: mldock-runtime" in ok.stdout


def test_sigterm_runs_on_stop_and_exits_143(rt, local_dirs, tmp_path):
    env = rt.env(MLDOCK_TRAIN="toy.train:long_running", **local_dirs)
    proc = subprocess.Popen(rt.cmd("train"), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        started = tmp_path / "output" / "started"
        deadline = time.monotonic() + 15
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text()) == {"epoch": 3}
    assert "Traceback" not in err
    assert "SIGTERM received" in err
    assert not (tmp_path / "model" / "mldock-model.json").exists()
