"""The tuner's objective reaches each platform's tuner from ``ctx.log_metric`` alone.

Vertex AI: the hypertune file, in the format ``cloudml-hypertune`` writes. Azure ML: the job's
MLflow run, posted by the runtime's stdlib client to a real ``mlflow server``. SageMaker: the
log line its ``MetricDefinitions`` regex reads.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from mldock.runtime.context import build_context
from mldock.runtime.objective import (
    HypertuneReporter,
    MlflowReporter,
    metric_line_regex,
    tracking_base,
)


def _vertex_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    mount = tmp_path / "gcs"
    mount.mkdir(exist_ok=True)
    return {"MLDOCK_GCS_ROOT": str(mount), "CLOUD_ML_JOB_ID": "77",
            "AIP_MODEL_DIR": "gs://bkt/base/model/", "CLOUD_ML_TRIAL_ID": "4",
            "MLDOCK_STAGING_DIR": str(tmp_path / "staging"), **extra}


def test_vertex_objective_goes_to_the_hypertune_file(tmp_path):
    """Only the objective is written, as cloudml-hypertune writes it (values as strings, keys
    sorted, trial and step); a wrong format makes Vertex see no measurement."""
    metric_file = tmp_path / "hp" / "output.metrics"
    ctx = build_context([], _vertex_env(tmp_path, CLOUD_ML_HP_METRIC_FILE=str(metric_file),
                                        MLDOCK_TUNE_OBJECTIVE="val_acc"))
    ctx.log_metric("val_acc", 0.5, step=1)
    ctx.log_metric("loss", 0.9, step=1)
    ctx.log_metric("val_acc", 0.75, step=2)
    ctx.log_metric("val_acc", 1)
    ctx.close()
    lines = metric_file.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert [(e["val_acc"], e["global_step"], e["trial"]) for e in entries] == [
        ("0.5", "1", "4"), ("0.75", "2", "4"), ("1.0", "0", "4")]
    assert all(set(e) == {"val_acc", "global_step", "trial", "timestamp"} for e in entries)
    assert lines[0] == json.dumps(entries[0], sort_keys=True)
    assert not list(metric_file.parent.glob(".output.*"))  # no temporary file left behind


def test_vertex_metric_tag_names_the_objective_and_the_file_keeps_100(tmp_path):
    """``CLOUD_ML_HP_METRIC_TAG`` (Vertex's own variable) is enough; like hypertune the file
    holds the last 100 reports."""
    metric_file = tmp_path / "output.metrics"
    ctx = build_context([], _vertex_env(tmp_path, CLOUD_ML_HP_METRIC_FILE=str(metric_file),
                                        CLOUD_ML_HP_METRIC_TAG="auc"))
    for step in range(105):
        ctx.log_metric("auc", step / 100, step=step)
    ctx.close()
    entries = [json.loads(line) for line in metric_file.read_text().splitlines()]
    assert len(entries) == 100 and entries[0]["global_step"] == "5"
    assert entries[-1]["auc"] == "1.04"


def test_only_the_primary_host_reports(tmp_path):
    """On a multi-host trial the chief reports; a worker writing too would race it."""
    spec = {"cluster": {"workerpool0": ["c-0:2222"], "workerpool1": ["w-0:2222"]},
            "task": {"type": "workerpool1", "index": 0}}
    metric_file = tmp_path / "output.metrics"
    ctx = build_context([], _vertex_env(tmp_path, CLOUD_ML_HP_METRIC_FILE=str(metric_file),
                                        MLDOCK_TUNE_OBJECTIVE="acc",
                                        CLUSTER_SPEC=json.dumps(spec)))
    assert ctx.rank == 1
    ctx.log_metric("acc", 0.5)
    ctx.close()
    assert not metric_file.exists()


def test_no_objective_no_reporter(tmp_path):
    """A plain training job (no tuner) and platforms whose tuner reads the log report nothing
    more than before."""
    env = _vertex_env(tmp_path, CLOUD_ML_HP_METRIC_FILE=str(tmp_path / "f"))
    assert build_context([], env).objective is None
    local = {"MLDOCK_PLATFORM": "local", "MLDOCK_MODEL_DIR": str(tmp_path / "m"),
             "MLDOCK_OUTPUT_DIR": str(tmp_path / "o"), "MLDOCK_CHECKPOINT_DIR": str(tmp_path / "c"),
             "MLDOCK_TUNE_OBJECTIVE": "acc"}
    assert build_context([], local).objective is None


def test_sagemaker_regex_reads_the_log_line(tmp_path, capsys):
    """The regex SageMaker's MetricDefinitions get captures the value the runtime prints, for
    every number format Python prints, and no other metric's line."""
    ctx = build_context([], {"MLDOCK_PLATFORM": "local", "MLDOCK_MODEL_DIR": str(tmp_path / "m"),
                             "MLDOCK_OUTPUT_DIR": str(tmp_path / "o"),
                             "MLDOCK_CHECKPOINT_DIR": str(tmp_path / "c")})
    for value in (0.93, 1e-05, -2.5e10, 7):
        ctx.log_metric("val.acc", value, step=3)
    ctx.log_metric("xval.acc", 1.0)
    ctx.close()
    found = re.findall(metric_line_regex("val.acc"), capsys.readouterr().out)
    assert [float(v) for v in found] == [0.93, 1e-05, -2.5e10, 7.0]


def _azure_env(tmp_path: Path, uri: str, run_id: str, **extra: str) -> dict[str, str]:
    return {"AZUREML_RUN_ID": "azr-7", "MLDOCK_MODEL_DIR": str(tmp_path / "m"),
            "MLDOCK_OUTPUT_DIR": str(tmp_path / "o"), "MLDOCK_CHECKPOINT_DIR": str(tmp_path / "c"),
            "MLFLOW_TRACKING_URI": uri, "MLFLOW_RUN_ID": run_id,
            "MLDOCK_TUNE_OBJECTIVE": "val_loss", **extra}


def test_azureml_objective_reaches_the_mlflow_run(tmp_path, mlflow_server, monkeypatch,
                                                  mlflow_client_environment):
    """Azure ML sweeps read the primary metric from the job's MLflow run: the runtime's stdlib
    client posts every value of the objective (and only it), with its step, before the job ends."""
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # Azure ML's layout writes under ./outputs
    client = MlflowClient(tracking_uri=mlflow_server.url)
    experiment = client.create_experiment(f"objective-{tmp_path.name}")
    run_id = client.create_run(experiment).info.run_id
    ctx = build_context([], _azure_env(tmp_path, mlflow_server.url, run_id,
                                       MLFLOW_TRACKING_TOKEN="not-checked-here"))
    assert isinstance(ctx.objective, MlflowReporter)
    for step, value in enumerate((0.9, 0.5, 0.25)):
        ctx.log_metric("val_loss", value, step=step)
        ctx.log_metric("acc", 1 - value, step=step)
    ctx.close()  # waits for the queue to drain
    history = client.get_metric_history(run_id, "val_loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 0.9), (1, 0.5), (2, 0.25)]
    assert client.get_metric_history(run_id, "acc") == []


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str, dict]]] = []
    status = 200

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append((self.path, self.headers.get("Authorization", ""), body))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.seen, _Recorder.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_mlflow_request_carries_the_token_and_path(tmp_path, recorder, monkeypatch):
    """The token Azure ML gives the job goes as a bearer token to the tracking URI's path plus
    MLflow's REST route; a wrong route or a missing header is a 404/401 on Azure ML."""
    monkeypatch.chdir(tmp_path)
    base = f"http://127.0.0.1:{recorder.server_port}/mlflow/v1.0/subscriptions/s"
    ctx = build_context([], _azure_env(tmp_path, base, "r1", MLFLOW_TRACKING_TOKEN="tok-123"))
    ctx.log_metric("val_loss", 0.5, step=4)
    ctx.close()
    [(path, auth, body)] = _Recorder.seen
    assert path == "/mlflow/v1.0/subscriptions/s/api/2.0/mlflow/runs/log-metric"
    assert auth == "Bearer tok-123"
    assert (body["run_id"], body["key"], body["value"], body["step"]) == ("r1", "val_loss", 0.5, 4)
    assert isinstance(body["timestamp"], int)


def test_mlflow_refusal_is_one_warning_without_the_token(tmp_path, recorder, capfd,
                                                         monkeypatch):
    """A refused post never stops training and never prints the token; it is said once."""
    monkeypatch.chdir(tmp_path)
    _Recorder.status = 403
    base = f"http://127.0.0.1:{recorder.server_port}"
    ctx = build_context([], _azure_env(tmp_path, base, "r1", MLFLOW_TRACKING_TOKEN="tok-secret"))
    ctx.log_metric("val_loss", 0.5)
    ctx.log_metric("val_loss", 0.4)
    ctx.close()
    err = capfd.readouterr().err
    assert err.count("could not log val_loss") == 1 and "HTTP 403" in err
    assert "tok-secret" not in err
    assert len(_Recorder.seen) == 2  # a 4xx is not retried


def test_tracking_base_maps_azureml_scheme():
    assert tracking_base("azureml://eastus.api.azureml.ms/mlflow/v1.0/x/") == \
        "https://eastus.api.azureml.ms/mlflow/v1.0/x"
    assert tracking_base("http://h:5000") == "http://h:5000"


def test_hypertune_unwritable_folder_is_a_warning(tmp_path, capfd):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    reporter = HypertuneReporter("acc", {"CLOUD_ML_HP_METRIC_FILE": str(blocker / "out")})
    reporter.report(1.0, None)
    reporter.report(2.0, None)
    assert capfd.readouterr().err.count("could not write the hypertune file") == 1
