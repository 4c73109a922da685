"""The page's HTTP server on loopback, over a real SQLite tracker: JSON routes, pages, and bad
input answered with 400/404/405 (never a traceback)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from mldock.interfaces import Lineage, Metric, RunStatus
from mldock.local.tracking import SqliteTracker
from mldock.ui.app import UiApp
from mldock.ui.server import UiServer


@pytest.fixture
def tracker(tmp_path):
    found = SqliteTracker(tmp_path / "runs.db")
    yield found
    found.close()


@pytest.fixture
def runs(tracker, tmp_path):
    """Three finished runs of project 'demo' (one with a 5,000-point curve), a running one and a
    run of another project."""
    ids = {}
    for name, model, acc in [("a", "forest", 0.9), ("b", "logistic", 0.8), ("c", "forest", 0.5)]:
        run = tracker.create_run("demo", tags={"mldock.env": "dev", "mldock.instances": "2"}
                                 if name == "a" else None)
        tracker.log_params(run, {"model": model, "C": 1.0 if name != "b" else 0.5})
        tracker.log_metrics(run, [Metric("accuracy", acc, 0)])
        tracker.set_lineage(run, Lineage(git_commit="abc", git_dirty=True, image="demo:1",
                                         platform="local"))
        ids[name] = run
    tracker.log_metrics(ids["a"], [Metric("loss", 1 / (s + 1), s) for s in range(5000)])
    for name in ("a", "b"):
        tracker.finish_run(ids[name], RunStatus.FINISHED)
    tracker.finish_run(ids["c"], RunStatus.FAILED, error="ValueError: bad model")
    ids["live"] = tracker.create_run("demo")
    ids["other"] = tracker.create_run("elsewhere")
    log = tmp_path / "logs" / ids["a"] / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text("line 1\nline 2\n")
    tracker.flush()
    return ids


@pytest.fixture
def server(tracker, runs, tmp_path):
    app = UiApp(tracker, "demo", title="demo", max_age_s=0.0,
                log_path=lambda run_id: tmp_path / "logs" / run_id / "train.log")
    found = UiServer(("127.0.0.1", 0), app)
    found.serve_in_thread()
    yield found
    found.shutdown()
    found.server_close()


def get(server, path, **headers):
    request = urllib.request.Request(server.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get_json(server, path):
    status, _, body = get(server, path)
    return status, json.loads(body)


def test_the_runs_page_lists_this_projects_runs_newest_first(server, runs):
    status, data = get_json(server, "/api/runs")
    assert status == 200
    assert [r["id"] for r in data["runs"]] == [runs["live"], runs["c"], runs["b"], runs["a"]]
    assert data["total"] == 4 and data["running"] == 1
    assert data["columns"] == {"params": ["C", "model"], "metrics": ["accuracy", "loss"]}


def test_filter_sort_and_paginate(server, runs):
    _, data = get_json(server, "/api/runs?status=finished&sort=metric:accuracy&order=asc")
    assert [r["id"] for r in data["runs"]] == [runs["b"], runs["a"]]
    _, data = get_json(server, "/api/runs?where=param:model%3Dforest&where=metric:accuracy%3E0.6")
    assert [r["id"] for r in data["runs"]] == [runs["a"]]
    _, data = get_json(server, "/api/runs?sort=param:C&per_page=2&page=2")
    assert data["pages"] == 2 and data["page"] == 2 and len(data["runs"]) == 2
    _, data = get_json(server, "/api/runs?q=dev")
    assert [r["id"] for r in data["runs"]] == [runs["a"]]


def test_a_run_in_full_with_its_command_and_log(server, runs):
    status, data = get_json(server, f"/api/runs/{runs['a']}")
    assert status == 200 and data["params"] == {"C": 1.0, "model": "forest"}
    assert data["reproduce"].splitlines() == [
        "git checkout abc", "# the work tree had uncommitted changes when this run started",
        "mldock --env dev train --instances 2 -p C=1.0 -p model=forest"]
    assert data["has_log"] is True
    _, log = get_json(server, f"/api/runs/{runs['a']}/log")
    assert log["text"] == "line 1\nline 2\n" and log["offset"] == 14
    _, more = get_json(server, f"/api/runs/{runs['a']}/log?offset=14")
    assert more["text"] == ""


def test_curves_are_decimated_and_zoom_returns_full_resolution(server, runs):
    _, data = get_json(server, f"/api/runs/{runs['a']}/metrics?keys=loss,accuracy&points=500")
    loss = data["series"]["loss"]
    assert loss["total"] == 5000 and loss["shown"] == len(loss["steps"]) <= 500
    assert loss["steps"][0] == 0 and loss["steps"][-1] == 4999
    assert data["series"]["accuracy"]["steps"] == [0]
    _, zoomed = get_json(server, f"/api/runs/{runs['a']}/metrics?keys=loss&low=100&high=299")
    assert zoomed["series"]["loss"]["steps"] == list(range(100, 300))


def test_compare_highlights_the_params_that_differ(server, runs):
    status, data = get_json(server, f"/api/compare?ids={runs['a']},{runs['b']}")
    assert status == 200 and data["differing_params"] == ["C", "model"]
    _, same = get_json(server, f"/api/compare?ids={runs['a']},{runs['c']}")
    assert same["differing_params"] == []


def test_pages_are_html_shells_with_the_run_named(server, runs):
    status, headers, body = get(server, f"/runs/{runs['a']}")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert f'data-run="{runs["a"]}"' in body.decode() and 'data-page="run"' in body.decode()
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, _ = get(server, "/")
    assert status == 200  # urllib followed the redirect to /runs


def test_the_static_files_ship_in_the_package(server):
    for name in ("app.js", "app.css", "vendor/uplot/uPlot.iife.min.js"):
        status, _, body = get(server, f"/static/{name}")
        assert status == 200 and len(body) > 1000


@pytest.mark.parametrize(("path", "status", "text"), [
    ("/runs/no-such-run", 404, "no-such-run"),
    ("/api/runs/no-such-run", 404, "no-such-run"),
    ("/api/runs?page=x", 400, "page"),
    ("/api/runs?sort=colour", 400, "sort"),
    ("/api/runs?where=nonsense", 400, "where"),
    ("/compare?ids=onlyone", 400, "2 to 10"),
    ("/compare?ids=a%20b,c", 400, "not a run id"),
    ("/api/runs/{a}/metrics", 400, "keys"),
    ("/api/runs/{a}/metrics?keys=nosuch", 404, "nosuch"),
    ("/api/runs/{a}/metrics?keys=loss&low=abc", 400, "low"),
    ("/api/runs/{a}/metrics?keys=loss&points=1", 400, "points"),
    ("/api/runs/{b}/log", 404, "no log"),
    ("/api/runs/{other}", 404, "elsewhere"),
    ("/static/../server.py", 404, "no such file"),
    ("/static/app.py", 404, "no such file"),
    ("/nowhere", 404, "no page"),
])
def test_bad_input_is_a_clear_4xx_never_a_traceback(server, runs, path, status, text):
    got, headers, body = get(server, path.format(**runs))
    page = body.decode()
    assert got == status, page
    assert text in page and "Traceback" not in page
    assert headers["Content-Type"].startswith(
        "application/json" if path.startswith("/api/") else "text/html")


def test_the_page_is_read_only_and_refuses_foreign_hosts(server):
    request = urllib.request.Request(server.url + "/api/runs", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 405
    status, _, body = get(server, "/runs", Host="evil.example:80")
    assert status == 403 and b"not this machine" in body


def test_a_plugin_tracker_error_is_one_line_500(server, tracker, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("database is locked\nsecond line")

    monkeypatch.setattr(server.app.index, "runs", broken)
    status, data = get_json(server, "/api/runs")
    assert status == 500 and data["error"] == "RuntimeError: database is locked"


def test_model_files_are_listed_from_the_store_manifest(tracker, tmp_path):
    from mldock.local.storage import LocalArtifactStore

    store = LocalArtifactStore(str(tmp_path / "store"))
    model = tmp_path / "model"
    (model / "sub").mkdir(parents=True)
    (model / "model.joblib").write_bytes(b"x" * 10)
    (model / "sub" / "meta.json").write_text("{}")
    run = tracker.create_run("demo")
    tracker.log_artifact(run, store.put_tree(model, f"runs/{run}/model"))
    tracker.finish_run(run, RunStatus.FINISHED)
    app = UiApp(tracker, "demo", title="demo", open_store=LocalArtifactStore.from_uri)
    details = app.details(run)
    files = details["model_files"]
    assert files is not None, details.get("model_files_error")
    assert [(f["path"], f["size"]) for f in files] == [("model.joblib", 10), ("sub/meta.json", 2)]
