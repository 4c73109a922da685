"""``mldock ui`` against ``mlflow ui``: time to the first full render of the runs page and of a run
with 100,000 metric points, in the same headless Chromium (Debian's, driven by Playwright).

The same runs go to both: ``--runs`` runs (params ``lr``, ``n_estimators``, ``model``; metrics
``accuracy`` and ``loss``) and one run whose ``loss`` has ``--points`` steps. mldock's are written
to a project's SQLite tracker and served by the real ``mldock ui``; MLflow's are logged to an
``mlflow server`` (1 worker, SQLite) with ``log_batch`` and shown by its own UI. Each page load is
a fresh browser context (nothing cached), timed from navigation to:

* runs page: mldock's first page of rows drawn / MLflow's runs grid showing its first rows;
* run page: mldock's chart drawn with its point count shown / MLflow's metric chart line drawn.

Then mldock alone with ``--many`` runs (10,000 by default): the runs page must stay fast.

    uv run python bench/ui.py [--runs 1000] [--points 100000] [--many 10000] [--rounds 5]

Goal (issue #14): mldock ≤ 0.5× MLflow on both pages.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _project import render
from tracking import start_mlflow, stop

MLDOCK = str(Path(sys.executable).parent / "mldock")
TIMEOUT_MS = 180_000


def curve(points: int) -> list[tuple[int, float]]:
    return [(s, math.exp(-s / points * 5) + 0.01 * math.sin(s)) for s in range(points)]


def run_params(i: int) -> dict[str, object]:
    return {"lr": 10 ** -(1 + i % 4), "n_estimators": (10, 50, 100)[i % 3],
            "model": ("forest", "logistic")[i % 2]}


def scores(i: int) -> tuple[float, float]:
    """(accuracy, loss) of run ``i``: spread over [0, 1), the same for both tools."""
    accuracy = (i * 0.6180339887) % 1.0
    return accuracy, 1.0 - accuracy


# --- mldock -------------------------------------------------------------------------------------
def mldock_project(root: Path, runs: int, points: int) -> tuple[Path, str]:
    """The sklearn template rendered under ``root``, its SQLite tracker holding the runs;
    returns (project folder, id of the big run)."""
    from mldock.interfaces import Lineage, Metric, RunStatus
    from mldock.local.tracking import SqliteTracker

    root.mkdir(parents=True)
    project = render(root)
    tracker = SqliteTracker(project / ".mldock" / "runs.db", batch_size=5000)
    big = ""
    for i in range(runs):
        run = tracker.create_run(project.name, tags={"mldock.platform": "local"})
        tracker.log_params(run, run_params(i))
        tracker.set_lineage(run, Lineage(image=f"{project.name}:1", platform="local"))
        accuracy, loss = scores(i)
        tracker.log_metrics(run, [Metric("accuracy", accuracy, 0), Metric("loss", loss, 0)])
        if i == 0:
            big = run
            tracker.log_metrics(run, [Metric("loss", v, s) for s, v in curve(points)])
        tracker.finish_run(run, RunStatus.FINISHED)
    tracker.close()
    return project, big


def start_mldock_ui(project: Path) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")}
    process = subprocess.Popen([MLDOCK, "ui", "--port", "0"], cwd=project, env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    line = process.stderr.readline() if process.stderr else ""
    match = re.search(r"(http://127\.0\.0\.1:\d+)/runs", line)
    if not match:
        stop(process)
        sys.exit(f"mldock ui did not start: {line}")
    return process, match.group(1)


# --- MLflow -------------------------------------------------------------------------------------
def mlflow_runs(url: str, runs: int, points: int) -> tuple[str, str]:
    """The same runs logged to the MLflow server; returns (experiment id, big run id)."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(url)
    experiment = client.create_experiment("bench")
    now = int(time.time() * 1000)
    big = ""
    for i in range(runs):
        run = client.create_run(experiment).info.run_id
        accuracy, loss = scores(i)
        client.log_batch(run, params=[Param(k, str(v)) for k, v in run_params(i).items()],
                         metrics=[Metric("accuracy", accuracy, now, 0),
                                  Metric("loss", loss, now, 0)])
        if i == 0:
            big = run
            history = curve(points)
            for start in range(0, len(history), 1000):
                client.log_batch(run, metrics=[Metric("loss", v, now, s)
                                               for s, v in history[start:start + 1000]])
        client.set_terminated(run)
    return experiment, big


# --- timing in the browser ----------------------------------------------------------------------
def time_load(browser, url: str, ready: str, rounds: int) -> list[float]:
    """Seconds from navigation to ``ready`` (a JS predicate), each in a fresh context."""
    times = []
    for _ in range(rounds):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        started = time.perf_counter()
        page.goto(url)
        page.wait_for_function(ready, timeout=TIMEOUT_MS, polling=20)
        times.append(time.perf_counter() - started)
        context.close()
    return times


MLDOCK_RUNS_READY = "() => document.querySelectorAll('[data-testid=run-row]').length >= 50"
MLDOCK_RUN_READY = ("() => document.querySelector('[data-testid=points-loss]') &&"
                    " document.querySelector('[data-testid=metric-chart] canvas')")
MLFLOW_RUNS_READY = ("() => document.querySelectorAll('.ag-center-cols-container .ag-row')"
                     ".length >= 20")
MLFLOW_RUN_READY = ("() => [...document.querySelectorAll('.js-plotly-plot .scatterlayer path')]"
                    ".some(p => (p.getAttribute('d') || '').length > 200)")


def report(name: str, ours: list[float], theirs: list[float] | None) -> None:
    mine = statistics.median(ours)
    line = f"{name:<34} mldock {mine * 1000:8.0f} ms"
    if theirs:
        peer = statistics.median(theirs)
        line += f"   mlflow {peer * 1000:8.0f} ms   ratio {mine / peer:.2f}  (goal <= 0.50)"
    print(line, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--many", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or sys.exit("needs Debian's chromium (apt-get install"
                                                     " chromium)")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="mldock-bench-ui-"))
    processes: list[subprocess.Popen] = []
    try:
        started = time.perf_counter()
        project, big = mldock_project(work / "mldock", args.runs, args.points)
        print(f"mldock: {args.runs} runs + {args.points:,} points written in"
              f" {time.perf_counter() - started:.1f} s", flush=True)
        ui, ui_url = start_mldock_ui(project)
        processes.append(ui)
        server, ml_url = start_mlflow(work / "mlflow")
        processes.append(server)
        started = time.perf_counter()
        experiment, ml_big = mlflow_runs(ml_url, args.runs, args.points)
        print(f"mlflow: the same logged in {time.perf_counter() - started:.1f} s", flush=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium,
                                                 args=["--no-sandbox", "--disable-gpu"])
            report(f"runs page ({args.runs} runs)",
                   time_load(browser, f"{ui_url}/runs", MLDOCK_RUNS_READY, args.rounds),
                   time_load(browser, f"{ml_url}/#/experiments/{experiment}/runs",
                             MLFLOW_RUNS_READY, args.rounds))
            report(f"run page ({args.points:,} points)",
                   time_load(browser, f"{ui_url}/runs/{big}", MLDOCK_RUN_READY, args.rounds),
                   time_load(browser, f"{ml_url}/#/experiments/{experiment}/runs/{ml_big}"
                                      "/model-metrics", MLFLOW_RUN_READY, args.rounds))
            if args.many > args.runs:
                stop(ui)
                many, _ = mldock_project(work / "many", args.many, 0)
                ui, ui_url = start_mldock_ui(many)
                processes.append(ui)
                report(f"runs page ({args.many} runs)",
                       time_load(browser, f"{ui_url}/runs", MLDOCK_RUNS_READY, args.rounds),
                       None)
            browser.close()
    finally:
        for process in processes:
            stop(process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
