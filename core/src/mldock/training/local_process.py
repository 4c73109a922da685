"""``mldock train --no-container``: the same ``train(ctx)`` in a local process, for fast iteration.

The runtime's own training entry point runs in a child process with the ``MLDOCK_*`` environment
of the contract's local column, so the context the user's code sees has the same shape as in the
image. Metrics are tailed from the metrics file exactly as for a container run.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mldock.interfaces import TrainingResult
from mldock.interfaces.common import ProgressSink
from mldock.interfaces.deploy import MetricsSink
from mldock.runtime.names import (
    ENV_CHECKPOINT_DIR,
    ENV_HYPERPARAMETERS,
    ENV_MODEL_DIR,
    ENV_OUTPUT_DIR,
    ENV_PREDICTOR,
    ENV_PROJECT,
    ENV_RUN_ID,
    ENV_TRAIN,
    METRICS_FILE_NAME,
)
from mldock.session import Session
from mldock.training.metrics_tail import MetricsTail

KILLED_CODES = {143, -signal.SIGTERM, 130, -signal.SIGINT}


def train_in_process(session: Session, run_id: str, hyperparameters: Mapping[str, Any],
                     channels: Mapping[str, Path], *, progress: ProgressSink,
                     on_metrics: MetricsSink) -> TrainingResult:
    tree = session.run_dir(run_id) / "local"
    dirs = {name: tree / name for name in ("model", "output", "checkpoints")}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=True)
    metrics_file = dirs["output"] / METRICS_FILE_NAME
    project = session.config.model.project
    source = session.config.resolve_path(project.source)
    env = {
        **os.environ,
        "MLDOCK_PLATFORM": "local",
        ENV_TRAIN: project.train,
        ENV_PREDICTOR: project.predictor,
        ENV_PROJECT: project.name,
        ENV_RUN_ID: run_id,
        ENV_MODEL_DIR: str(dirs["model"]),
        ENV_OUTPUT_DIR: str(dirs["output"]),
        ENV_CHECKPOINT_DIR: str(dirs["checkpoints"]),
        "MLDOCK_METRICS_FILE": str(metrics_file),
        ENV_HYPERPARAMETERS: json.dumps(dict(hyperparameters)),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    for name, folder in channels.items():
        env[f"MLDOCK_INPUT_{name.upper()}"] = str(folder)
    child = subprocess.Popen([sys.executable, "-m", "mldock.runtime", "train"],
                             cwd=session.project_dir, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, bufsize=1)
    (tree / "pid").write_text(str(child.pid))  # 'mldock tune' stops a pruned trial by it
    tail: list[str] = []
    with MetricsTail(metrics_file, on_metrics):
        try:
            for raw in child.stdout or ():  # always a pipe: stdout=PIPE above
                line = raw.rstrip("\n")
                progress(line)
                tail = ([*tail, line])[-30:]
            code = child.wait()
        except KeyboardInterrupt:
            progress("stopping training (SIGTERM, checkpoint hook runs)...")
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
    if code == 0:
        status, failure = "finished", None
    elif code in KILLED_CODES:
        status, failure = "killed", None
    else:
        status = "failed"
        lines = [x for x in tail if x.strip()]
        failure = "\n".join(lines[-15:]) or f"training exited with code {code}"
    return TrainingResult(run_id=run_id, status=status, job_id=f"local-{run_id}",
                          model_uri=str(dirs["model"]), failure_reason=failure)
