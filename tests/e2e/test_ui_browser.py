"""``mldock ui`` in a real browser (Debian's Chromium, headless, driven by Playwright) over runs
made by the real ``mldock train`` of the session's built sklearn project.

The project copy's ``train`` first logs a ``loss`` curve of ``curve_steps`` points (with an
optional delay per step, so one run can be watched live), then trains the template's model. Each
page is saved as a screenshot under ``$MLDOCK_TEST_ARTIFACTS/ui`` (default ``test-artifacts/ui``
in the repository), which CI keeps.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("MLDOCK_TEST_ARTIFACTS") or REPO / "test-artifacts") / "ui"
MLDOCK = str(Path(sys.executable).parent / "mldock")
CURVE = '''

import time as _time

_template_train = train


def train(ctx) -> None:
    """The template's training, after a loss curve of ``curve_steps`` points (ui tests)."""
    delay = float(ctx.param("step_delay", 0))
    for step in range(int(ctx.param("curve_steps", 0))):
        ctx.log_metric("loss", 1.0 / (step + 1), step=step)
        if delay:
            _time.sleep(delay)
    _template_train(ctx)
'''


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    message = "Debian's chromium is not installed (apt-get install chromium; .ci/run does)"
    if os.environ.get("MLDOCK_REQUIRE_DOCKER") == "1":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def ui_project(built_project, tmp_path_factory, mldock):
    """A copy of the built project with the curve-logging train, rebuilt (code layer only)."""
    project = tmp_path_factory.mktemp("ui") / built_project.name
    shutil.copytree(built_project, project, ignore=shutil.ignore_patterns(".mldock"))
    train_py = next(project.glob("src/*/train.py"))
    train_py.write_text(train_py.read_text() + CURVE)
    mldock("build", cwd=project)
    return project


@pytest.fixture(scope="module")
def trained(ui_project, mldock):
    """Three runs: logistic with 300 curve points, forest with 300, and one that fails."""
    def train(*params: str, check: bool = True) -> str:
        args = [a for p in params for a in ("-p", p)]
        result = mldock("train", "--quiet", *args, cwd=ui_project, check=check)
        return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""

    runs = {"logistic": train("curve_steps=300"),
            "forest": train("curve_steps=300", "model=forest", "n_estimators=20")}
    failed = mldock("train", "--quiet", "-p", "model=bogus", cwd=ui_project, check=False)
    assert failed.returncode != 0
    listed = json.loads(mldock("runs", "list", "--json", cwd=ui_project).stdout)
    runs["failed"] = next(r["id"] for r in listed if r["status"] == "failed")
    return runs


@pytest.fixture(scope="module")
def ui_server(ui_project, trained):
    """The real ``mldock ui --port 0`` of the project; its URL read from its first line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")
           or k == "MLDOCK_REQUIRE_DOCKER"}
    process = subprocess.Popen([MLDOCK, "ui", "--port", "0"], cwd=ui_project, env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        line = process.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/runs", line)
        assert match, f"mldock ui printed {line!r}"
        yield match.group(1)
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        found = playwright.chromium.launch(executable_path=executable,
                                           args=["--no-sandbox", "--disable-gpu"])
        yield found
        found.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    found = context.new_page()
    errors: list[str] = []
    found.on("pageerror", lambda exc: errors.append(str(exc)))
    yield found
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def rows(page) -> list[str]:
    return page.locator("[data-testid=run-row]").evaluate_all(
        "rows => rows.map(r => r.dataset.run)")


def test_runs_table_sorts_and_filters(page, ui_server, trained):
    page.goto(f"{ui_server}/runs")
    page.wait_for_selector("[data-testid=run-row]")
    assert set(rows(page)) == set(trained.values())
    shot(page, "runs")

    page.click("th[data-sort='metric:loss']")  # descending first
    page.wait_for_selector("th.sorted-desc[data-sort='metric:loss']")
    page.click("th[data-sort='metric:loss']")
    page.wait_for_selector("th.sorted-asc[data-sort='metric:loss']")
    assert "sort=metric%3Aloss" in page.url and "order=asc" in page.url
    with_loss = [r for r in rows(page) if r != trained["failed"]]
    assert len(with_loss) == 2

    page.check("[data-testid=filter-failed]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=run-row]').length === 1")
    assert rows(page) == [trained["failed"]]
    page.uncheck("[data-testid=filter-failed]")
    page.fill("[data-testid=filter-where]", "param:model=forest")
    page.click("[data-testid=apply-filters]")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=run-row]').length === 1")
    assert rows(page) == [trained["forest"]]
    shot(page, "runs-filtered")


def test_a_run_shows_its_curve_with_every_point_and_its_lineage(page, ui_server, trained,
                                                               ui_project, mldock):
    run = trained["forest"]
    shown = json.loads(mldock("runs", "show", run, "--json", cwd=ui_project).stdout)
    page.goto(f"{ui_server}/runs/{run}")
    points = page.locator("[data-testid=points-loss]")
    points.wait_for()
    assert points.get_attribute("data-shown") == points.get_attribute("data-total") == "300"
    page.wait_for_selector("[data-testid=metric-chart] canvas")
    assert page.locator("[data-testid=lineage-image]").inner_text() == shown["lineage"]["image"]
    assert "model=forest" in page.locator("[data-testid=reproduce]").inner_text()
    assert page.locator("[data-testid=model-files] tr").count() >= 2  # header + files
    assert "trained a forest model" in page.locator("[data-testid=run-log]").inner_text()
    shot(page, "run")

    page.goto(f"{ui_server}/runs/{trained['failed']}")
    page.wait_for_selector("[data-testid=run-error]")
    assert "bogus" in page.locator("[data-testid=run-error]").inner_text()


def test_compare_two_runs(page, ui_server, trained):
    page.goto(f"{ui_server}/runs")
    page.wait_for_selector("[data-testid=run-row]")
    for run in (trained["logistic"], trained["forest"]):
        page.check(f"tr[data-run='{run}'] [data-testid=select-run]")
    page.click("[data-testid=compare-selected]")
    page.wait_for_selector("[data-testid=compare-table]")
    differs = page.locator("[data-testid=param-differs]").evaluate_all(
        "rows => rows.map(r => r.dataset.param)")
    assert "model" in differs and "curve_steps" not in differs
    page.select_option("[data-testid=compare-metric]", "loss")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=compare-chart]').dataset.points === '300,300'")
    shot(page, "compare")


def test_a_live_run_is_followed_until_it_finishes(page, ui_server, ui_project):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLDOCK_")
           or k == "MLDOCK_REQUIRE_DOCKER"}
    process = subprocess.Popen([MLDOCK, "train", "--quiet", "-p", "curve_steps=40", "-p",
                                "step_delay=0.25"], cwd=ui_project, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        page.goto(f"{ui_server}/runs")
        page.wait_for_selector("[data-testid=run-row] .status-running", timeout=120_000)
        live = page.locator("[data-testid=run-row]:has(.status-running)").first
        run = live.get_attribute("data-run")
        page.goto(f"{ui_server}/runs/{run}")
        page.wait_for_selector("[data-testid=status].status-running")
        shot(page, "run-live")
        page.wait_for_selector("[data-testid=status].status-finished", timeout=180_000)
        page.wait_for_function(
            "() => document.querySelector('[data-testid=points-loss]')?.dataset.total === '40'")
        assert process.wait(timeout=120) == 0
        assert process.stdout.read().strip().splitlines()[-1] == run
        shot(page, "run-finished")
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def test_endpoints_page_shows_a_local_deployment(page, ui_server, ui_project, trained, mldock,
                                                 unused_port):
    mldock("deploy", "--run", trained["logistic"], "--port", str(unused_port), cwd=ui_project)
    try:
        page.goto(f"{ui_server}/endpoints")
        row = page.locator("[data-testid=endpoint-row]").first
        row.wait_for(timeout=60_000)
        assert trained["logistic"] in row.inner_text()
        assert row.locator(".dot-ok").count() == 1
        shot(page, "endpoints")
    finally:
        mldock("undeploy", cwd=ui_project, check=False)


def test_unknown_run_and_bad_query_are_error_pages(page, ui_server):
    response = page.goto(f"{ui_server}/runs/no-such-run")
    assert response.status == 404
    assert "no-such-run" in page.locator("[data-testid=error-message]").inner_text()
    shot(page, "error-404")
    response = page.goto(f"{ui_server}/compare?ids=justone")
    assert response.status == 400
    response = page.goto(f"{ui_server}/api/runs?page=zero")
    assert response.status == 400 and "page" in page.content()
