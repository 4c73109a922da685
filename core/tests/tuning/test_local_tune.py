"""``mldock tune --no-container``: the real CLI, real trial processes, a real Optuna study.

The trials train in local processes (the container path is tests/e2e/test_tune.py): six grid
points, two at a time, median early stopping. One point is bad and slow, so it is still running
when a good trial has completed, whatever order the grid sampler picks: it is always pruned.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

TRAIN = '''
import time


def train(ctx):
    quality = float(ctx.param("quality"))
    delay = float(ctx.param("delay"))
    slow = quality < 0.5
    for step in range(6):
        time.sleep(delay * (10 if slow else 1))
        ctx.log_metric("score", quality * (step + 1) / 6, step=step)
    (ctx.model_dir / "model.txt").write_text(str(quality))


class Predictor:
    def load(self, model_dir):
        self.quality = (model_dir / "model.txt").read_text()

    def predict(self, payload):
        return {"quality": self.quality}
'''

CONFIG = """
[project]
name = "tuned"
train = "tuned_pkg.train:train"
predictor = "tuned_pkg.train:Predictor"

[hyperparameters]
delay = {delay}

[tune]
objective = "score"
direction = "maximize"
strategy = "grid"
max_trials = 6
parallel_trials = 2
early_stopping = "median"
seed = 3

[tune.space]
quality = {values}

[tune.local]
startup_trials = 1
"""
GOOD = [0.9, 0.92, 0.94, 0.96, 0.98]


def make_project(root: Path, *, delay: float, values: list[float]) -> Path:
    package = root / "src" / "tuned_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "train.py").write_text(TRAIN)
    (root / "mldock.toml").write_text(textwrap.dedent(CONFIG).format(delay=delay,
                                                                     values=values))
    return root


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    return {**env, **(extra or {})}


def mldock(*args: str, cwd: Path, env: dict[str, str] | None = None,
           check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "mldock", *args], cwd=cwd, env=_env(env),
                            capture_output=True, text=True, timeout=600, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"mldock {' '.join(args)}: {result.returncode}\n{result.stderr}")
    return result


def listed(project: Path) -> list[dict]:
    return json.loads(mldock("runs", "list", "--json", cwd=project).stdout)


def test_six_trials_two_at_a_time_one_pruned(tmp_path):
    """Every grid point runs once as a child run; the bad one is stopped early (killed, tagged
    pruned); the best finished trial's model is the tune's, and runs list puts it first."""
    project = make_project(tmp_path, delay=0.05, values=[*GOOD, 0.1])
    result = mldock("tune", "--no-container", "--json", cwd=project)
    summary = json.loads(result.stdout)
    assert summary["status"] == "finished" and not summary["resumed"]
    trials = summary["trials"]
    assert sorted(t["trial"] for t in trials) == list(range(6))
    assert sorted(t["params"]["quality"] for t in trials) == sorted([*GOOD, 0.1])
    bad = next(t for t in trials if t["params"]["quality"] == 0.1)
    assert bad["pruned"] and bad["status"] == "killed"
    assert bad["metrics"]["score"] < 0.1  # stopped before its last step (0.1 at step 5)
    finished = [t for t in trials if t["status"] == "finished"]
    best = max(finished, key=lambda t: t["metrics"]["score"])
    assert summary["best"] == best["run"] and trials[0]["run"] == best["run"]

    [tune] = listed(project)  # trials are listed under their tune, not beside it
    assert tune["id"] == summary["tune"] and tune["status"] == "finished"
    assert tune["tags"]["mldock.tune.best"] == best["run"]
    assert [t["id"] for t in tune["trials"]] == [t["run"] for t in trials]
    assert all(t["tags"]["mldock.parent"] == tune["id"] for t in tune["trials"])
    assert tune["params"]["quality"] == best["params"]["quality"]
    assert [a["key"] for a in tune["artifacts"]] == [f"runs/{tune['id']}/model"]

    table = mldock("runs", "list", cwd=project).stdout.splitlines()
    assert table[1].startswith(f"{tune['id']} (tune)")
    assert best["run"] in table[2] and any("pruned" in line for line in table[2:])

    shown = json.loads(mldock("runs", "show", tune["id"], "--json", cwd=project).stdout)
    curve = shown["metric_history"]["score"]  # the objective over trials, step = trial
    assert sorted(p["step"] for p in curve) == sorted(t["trial"] for t in finished)
    exported = tmp_path / "best-model"
    mldock("runs", "export", tune["id"], str(exported), cwd=project)
    assert (exported / "model.txt").read_text() == str(best["params"]["quality"])
    log = mldock("logs", tune["id"], cwd=project).stdout
    assert "trial" in log and "best: trial" in log


def _wait_for(project: Path, child: subprocess.Popen, done: int) -> list[dict]:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.3)
        runs = listed(project)
        trials = runs[0].get("trials", []) if runs else []
        # median stopping prunes good trials too: a pruned trial has ended as well
        if sum(t["status"] == "finished" or "mldock.pruned" in t["tags"]
               for t in trials) >= done:
            return trials
    raise AssertionError(f"the search never had {done} ended trials")


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_killed_search_resumes_without_repeating_finished_trials(tmp_path, how):
    """kill -9 (or SIGTERM, Ctrl-C's way) mid-search; the next 'mldock tune' takes the same
    study up again by itself: the trials finished before are kept, no grid point is finished
    twice, and the budget is reached."""
    project = make_project(tmp_path, delay=0.4, values=[*GOOD, 0.88])
    child = subprocess.Popen([sys.executable, "-m", "mldock", "tune", "--no-container"],
                             cwd=project, env=_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        before = _wait_for(project, child, 2)
        child.send_signal(getattr(signal, how))
        _, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
    if how == "SIGTERM":
        assert child.returncode == 130 and "resume" in err
    kept = {t["id"] for t in before if t["status"] == "finished" or "mldock.pruned" in t["tags"]}
    [paused] = listed(project)
    assert paused["status"] == "running"  # paused, not finished: it can go on

    result = json.loads(mldock("tune", "--no-container", "--json", cwd=project).stdout)
    assert result["resumed"] and result["tune"] == paused["id"]
    assert result["status"] == "finished"
    done = [t for t in result["trials"] if t["status"] == "finished" or t["pruned"]]
    assert len(done) == 6
    assert sorted(t["params"]["quality"] for t in done) == sorted([*GOOD, 0.88])
    assert kept <= {t["run"] for t in done}


def test_no_tune_section_is_one_line(tmp_path):
    project = make_project(tmp_path, delay=0.01, values=GOOD)
    text = (project / "mldock.toml").read_text()
    (project / "mldock.toml").write_text(text[:text.index("[tune]")])
    result = mldock("tune", "--no-container", cwd=project, check=False)
    assert result.returncode == 2
    assert "has no [tune] section" in result.stderr and "Traceback" not in result.stderr


def test_resume_of_another_spec_is_refused(tmp_path):
    project = make_project(tmp_path, delay=0.01, values=GOOD)
    first = json.loads(mldock("tune", "--no-container", "--json", "--max-trials", "2",
                              cwd=project).stdout)
    result = mldock("tune", "--no-container", "--resume", first["tune"], cwd=project,
                    check=False)
    assert result.returncode == 2 and "is finished: it cannot go on" in result.stderr
    assert "Traceback" not in result.stderr


def test_without_optuna_one_line_says_what_to_install(tmp_path):
    project = make_project(tmp_path, delay=0.01, values=GOOD)
    blocker = tmp_path / "no-optuna"
    blocker.mkdir()
    (blocker / "optuna.py").write_text("raise ImportError('not installed here')\n")
    result = mldock("tune", "--no-container", cwd=project, check=False,
                    env={"PYTHONPATH": str(blocker)})
    assert result.returncode == 3
    assert "pip install 'mldock-core[tune]'" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("strategy", "stopping"), [
    ("bayesian", "none"), ("random", "median"), ("hyperband", "hyperband")])
def test_every_local_strategy_runs(tmp_path, strategy, stopping):
    """TPE, random and Hyperband (TPE with the Hyperband pruner) over a continuous range: the
    budget is run, every value is inside the range, the best finished trial is the tune's."""
    project = make_project(tmp_path, delay=0.01, values=GOOD)
    text = (project / "mldock.toml").read_text()
    text = text.replace('strategy = "grid"', f'strategy = "{strategy}"')
    text = text.replace('early_stopping = "median"', f'early_stopping = "{stopping}"')
    text = text.replace(f"quality = {GOOD}",
                        'quality = { type = "float", low = 0.6, high = 0.99 }')
    (project / "mldock.toml").write_text(text)
    summary = json.loads(mldock("tune", "--no-container", "--json", "--max-trials", "5",
                                cwd=project).stdout)
    assert summary["status"] == "finished" and len(summary["trials"]) == 5
    assert all(0.6 <= t["params"]["quality"] <= 0.99 for t in summary["trials"])
    finished = [t for t in summary["trials"] if t["status"] == "finished"]
    assert summary["best"] == max(finished, key=lambda t: t["metrics"]["score"])["run"]
    [tune] = listed(project)
    assert tune["params"]["tune.strategy"] == strategy
    assert tune["params"]["tune.early_stopping"] == stopping
