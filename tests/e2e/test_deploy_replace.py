"""Redeploying never loses the live endpoint to a bad request (issue 10, item 8).

Through the real CLI on the real engine: a bad ``--port`` is refused before anything changes, a
port held by someone else is refused, a new model that cannot load leaves the old one serving on
its port, and a good one replaces it on the same port once it answers.
"""

from __future__ import annotations

import json
import shutil
import socket
import urllib.request
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serves(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


def _endpoint(mldock, project: Path, name: str) -> dict:
    listed = json.loads(mldock("deploy", "--list", "--json", cwd=project).stdout)
    mine = [d for d in listed if d["name"] == name]
    assert len(mine) == 1, listed
    return mine[0]


def _one_line_error(result, *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], result.stderr


def _broken_model(project: Path, good_run: str, bad_run: str) -> None:
    """The local copy ``deploy`` serves for ``bad_run``: the good model with its file truncated,
    so the serving container's load() fails (an earlier deploy may have fetched it already)."""
    models = project / ".mldock" / "models"
    shutil.copytree(models / good_run, models / bad_run, dirs_exist_ok=True)
    (models / bad_run / "model.joblib").write_bytes(b"not a model")


def test_bad_port_and_unloadable_model_leave_the_endpoint_serving(project_copy, mldock):
    first = mldock("train", "-q", cwd=project_copy).stdout.strip()
    second = mldock("train", "-q", cwd=project_copy).stdout.strip()
    name = f"keep-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    try:
        url = mldock("deploy", "--run", first, "--name", name, "--port", str(port),
                     cwd=project_copy).stdout.strip()
        assert url == f"http://127.0.0.1:{port}" and _serves(url)

        for bad in ("99999", "-1"):
            result = mldock("deploy", "--run", second, "--name", name, "--port", bad,
                            cwd=project_copy, check=False)
            assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
            assert "--port" in result.stderr
            assert _serves(url) and _endpoint(mldock, project_copy, name)["run_id"] == first

        with socket.socket() as holder:  # someone else's port
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            taken = holder.getsockname()[1]
            result = mldock("deploy", "--run", second, "--name", name, "--port", str(taken),
                            cwd=project_copy, check=False)
            _one_line_error(result, f"port {taken}", "in use")
        assert _serves(url) and _endpoint(mldock, project_copy, name)["run_id"] == first

        _broken_model(project_copy, first, second)
        for args in ((), ("--port", str(_free_port()))):  # same port (probe), then another one
            result = mldock("deploy", "--run", second, "--name", name, *args,
                            cwd=project_copy, check=False)
            _one_line_error(result, "not ready" if "not ready" in result.stderr else "exited",
                            f"still serves run {first}")
            kept = _endpoint(mldock, project_copy, name)
            assert kept["run_id"] == first and kept["url"] == url and _serves(url)
            answer = mldock("predict", "--name", name, "--data", "sample.json", cwd=project_copy)
            assert json.loads(answer.stdout)["predictions"]
    finally:
        mldock("undeploy", name, cwd=project_copy, check=False)


def test_redeploy_on_the_same_port_swaps_once_the_new_one_answers(project_copy, mldock, engine):
    first = mldock("train", "-q", cwd=project_copy).stdout.strip()
    second = mldock("train", "-q", cwd=project_copy).stdout.strip()
    name = f"swap-{uuid.uuid4().hex[:8]}"
    try:
        url = mldock("deploy", "--run", first, "--name", name, "--port", str(_free_port()),
                     cwd=project_copy).stdout.strip()
        again = mldock("deploy", "--run", second, "--name", name, cwd=project_copy).stdout.strip()
        assert again == url and _serves(url)
        assert _endpoint(mldock, project_copy, name)["run_id"] == second
        answer = mldock("predict", "--name", name, "--data", "sample.json", cwd=project_copy)
        assert json.loads(answer.stdout)["predictions"]
        left = engine.containers.list(all=True, filters={"name": f"mldock-{name}"})
        assert [c.name for c in left] == [f"mldock-{name}"]  # no probe or old container left
        moved = mldock("deploy", "--run", first, "--name", name, "--port", "0",
                       cwd=project_copy).stdout.strip()
        assert moved != url and _serves(moved) and not _serves(url)
    finally:
        mldock("undeploy", name, cwd=project_copy, check=False)
