"""``mldock tune``: 12 local trials two at a time against the same trials one by one through
``mldock train``, and mldock's overhead per trial against Optuna calling the training function
in-process.

The project is the minimal template with a training function that stands for a real one: it
logs its objective six times over ``--seconds`` (sleeping, as a model waiting on I/O or a GPU
would; two cores shared with other work would make CPU-bound trials measure the machine, not
the tool). The twelve trials are a grid over one ``quality`` value, the same twelve values for
every contender:

* **tune**: ``mldock tune`` with ``parallel_trials = 2`` (each trial a container of the image,
  tracked as a child run; no early stopping, so every trial runs to its end);
* **train one by one**: ``mldock train -p quality=V`` twelve times in a row;
* **optuna in-process**: ``optuna`` with the same grid calling ``train(ctx)`` directly (a
  context of the runtime on a temporary folder), one trial at a time: the floor;
* **tune, 1 at a time**: ``mldock tune --parallel 1``, for the overhead per trial: (its wall time
  minus Optuna's) / 12. The same with ``--no-container``.

    uv run python bench/tune.py [--seconds 2] [--trials 12]

Goal (issue #15): tune ≤ 0.6× train one by one. Figures printed, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

MLDOCK = str(Path(sys.executable).parent / "mldock")

TRAIN = '''
import json
import time


def train(ctx):
    quality = float(ctx.param("quality"))
    pause = float(ctx.param("seconds")) / 6
    for step in range(6):
        time.sleep(pause)
        ctx.log_metric("score", quality * (step + 1) / 6, step=step)
    (ctx.model_dir / "model.json").write_text(json.dumps({"quality": quality}))


class Predictor:
    def load(self, model_dir):
        pass

    def predict(self, payload):
        return payload
'''

CONFIG = """
[project]
name = "{name}"
train = "benchtune.train:train"
predictor = "benchtune.train:Predictor"
requirements = "requirements.txt"

[hyperparameters]
seconds = {seconds}

[tune]
objective = "score"
direction = "maximize"
strategy = "grid"
max_trials = {trials}
parallel_trials = 2
seed = 1

[tune.space]
quality = {values}
"""


def run(*args: str, cwd: Path) -> float:
    """Seconds ``mldock ARGS`` took (raises with its stderr on failure)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    started = time.perf_counter()
    result = subprocess.run([MLDOCK, *args], cwd=cwd, capture_output=True, text=True, env=env,
                            check=False)
    if result.returncode != 0:
        raise SystemExit(f"mldock {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def project(root: Path, seconds: float, values: list[float]) -> Path:
    name = f"benchtune-{uuid.uuid4().hex[:8]}"
    run("init", name, "--template", "minimal", "--no-input", cwd=root)
    folder = root / name
    package = folder / "src" / "benchtune"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(TRAIN)
    (folder / "mldock.toml").write_text(textwrap.dedent(CONFIG).format(
        name=name, seconds=seconds, trials=len(values), values=values))
    run("build", cwd=folder)
    return folder


def optuna_in_process(folder: Path, seconds: float, values: list[float]) -> float:
    """Optuna's own loop calling train(ctx) in this process, one trial at a time."""
    import optuna

    sys.path.insert(0, str(folder / "src"))
    from benchtune.train import train
    from mldock.runtime.context import build_context

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scratch = Path(tempfile.mkdtemp(prefix="bench-optuna-"))

    def objective(trial: optuna.Trial) -> float:
        quality = trial.suggest_categorical("quality", values)
        where = scratch / str(trial.number)
        ctx = build_context([], {"MLDOCK_PLATFORM": "local", "MLDOCK_MODEL_DIR": str(where / "m"),
                                 "MLDOCK_OUTPUT_DIR": str(where / "o"),
                                 "MLDOCK_CHECKPOINT_DIR": str(where / "c"),
                                 "MLDOCK_HYPERPARAMETERS":
                                     f'{{"quality": {quality}, "seconds": {seconds}}}'})
        with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):
            train(ctx)
        ctx.close()
        return quality

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.GridSampler({"quality": values}))
    started = time.perf_counter()
    study.optimize(objective, n_trials=len(values))
    return time.perf_counter() - started


def cleanup(name: str) -> None:
    """Remove the bench project's containers and images (its name is its own)."""
    import docker

    client = docker.from_env()
    for image in client.images.list(name=name):
        for container in client.containers.list(all=True, filters={"ancestor": image.id}):
            with contextlib.suppress(Exception):
                container.remove(force=True)
        for tag in image.tags:
            with contextlib.suppress(Exception):
                client.images.remove(tag, noprune=True)
    client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="one trial's training time")
    parser.add_argument("--trials", type=int, default=12)
    args = parser.parse_args()
    values = [round(0.5 + i / (2 * args.trials), 4) for i in range(args.trials)]
    root = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    folder = project(root, args.seconds, values)
    try:
        tune = run("tune", "--new", cwd=folder)
        one_by_one = sum(run("train", "--quiet", "-p", f"quality={v}", cwd=folder)
                         for v in values)
        serial = run("tune", "--new", "--parallel", "1", cwd=folder)
        serial_process = run("tune", "--new", "--parallel", "1", "--no-container", cwd=folder)
        floor = optuna_in_process(folder, args.seconds, values)
    finally:
        cleanup(folder.name)
    n = len(values)
    print(f"{n} trials of {args.seconds:.1f} s of training each")
    print(f"  mldock tune, 2 in parallel (containers)  {tune:7.1f} s")
    print(f"  mldock train one by one (containers)     {one_by_one:7.1f} s")
    print(f"  ratio tune / one by one                  {tune / one_by_one:7.2f}x (goal <= 0.6x)")
    print(f"  optuna in-process, 1 at a time          {floor:7.1f} s")
    print(f"  mldock tune, 1 at a time (containers)   {serial:7.1f} s  overhead per trial"
          f" {(serial - floor) / n:5.2f} s")
    print(f"  mldock tune, 1 at a time, --no-container {serial_process:6.1f} s  overhead per"
          f" trial {(serial_process - floor) / n:5.2f} s")


if __name__ == "__main__":
    main()
