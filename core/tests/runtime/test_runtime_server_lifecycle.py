"""Server start-up, loading, platforms, limits and shutdown, each on its own subprocess."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import time

import pytest
from mldock.runtime.payload import numpy_available


def test_liveness_at_once_503_until_loaded(start_server):
    srv = start_server(TOY_LOAD_SLEEP="2.5")
    # liveness answered while the model is still loading
    assert srv.request("GET", "/v2/health/live")[0] == 200
    for path in ("/ping", "/health", "/v2/health/ready"):
        status, headers, body = srv.request("GET", path)
        assert status == 503 and json.loads(body) == {"error": "model is loading"}
        assert headers["retry-after"] == "1"
    assert srv.post_json("/invocations", [[1, 2]])[0] == 503
    assert srv.post_json("/predict", {"instances": [[1, 2]]})[0] == 503
    assert "mldock_model_loaded 0" in srv.request("GET", "/metrics")[2].decode()
    srv.wait_for("/ping", 200, timeout=10)
    assert srv.post_json("/invocations", [[1, 2]]) == (200, [6])
    assert "mldock_model_loaded 1" in srv.request("GET", "/metrics")[2].decode()


def test_load_failure_reported_on_readiness(start_server):
    srv = start_server(TOY_LOAD_FAIL="1", MLDOCK_LOAD_FAILURE_GRACE="120")
    srv.wait_for("/ping", 500)
    status, _, body = srv.request("GET", "/v2/health/ready")
    assert status == 500 and "weights are corrupt" in json.loads(body)["error"]
    assert srv.request("GET", "/v2/health/live")[0] == 200
    assert srv.post_json("/invocations", [[1, 2]])[0] == 500
    code, err = srv.stop()  # stopped during the grace period: still a failed container
    assert code == 3 and "RuntimeError: weights are corrupt" in err


@pytest.mark.parametrize("workers", ["1", "2"])
def test_load_failure_exits_3_after_the_grace_period(start_server, workers):
    srv = start_server(TOY_LOAD_FAIL="1", MLDOCK_LOAD_FAILURE_GRACE="0.5",
                       MLDOCK_WORKERS=workers, wait=False)
    code = srv.proc.wait(timeout=60)  # exits by itself: no SIGTERM is sent
    err = srv.proc.stderr.read()
    assert code == 3
    assert "exiting in 0.5s (MLDOCK_LOAD_FAILURE_GRACE)" in err
    assert "exiting with code 3: the model failed to load: RuntimeError: weights are corrupt" \
        in err
    assert "restarting" not in err  # a worker whose model cannot load is not restarted


def test_missing_model_dir_exits_3_with_the_reason(start_server, tmp_path):
    srv = start_server(MLDOCK_MODEL_DIR=str(tmp_path / "absent"), MLDOCK_LOAD_FAILURE_GRACE="0",
                       wait=False)
    assert srv.proc.wait(timeout=60) == 3
    err = srv.proc.stderr.read()
    assert f"model directory {tmp_path / 'absent'} does not exist" in err.splitlines()[-1]


def test_bad_load_failure_grace_is_a_usage_error(rt):
    env = rt.env(MLDOCK_LOAD_FAILURE_GRACE="soon", MLDOCK_HOST="127.0.0.1", MLDOCK_PORT="0")
    result = subprocess.run(rt.cmd("serve"), env=env, capture_output=True, text=True,
                            timeout=30, check=False)
    assert result.returncode == 2
    assert "MLDOCK_LOAD_FAILURE_GRACE='soon' is not a number" in result.stderr


def test_sigterm_exits_0_and_startup_line(start_server):
    srv = start_server()
    srv.wait_for("/ping", 200)
    code, err = srv.stop()
    assert code == 0
    assert f"serving on http://127.0.0.1:{srv.port}" in err
    assert "Traceback" not in err


def test_sigterm_while_the_model_loads_exits_0_at_once(start_server):
    srv = start_server(TOY_LOAD_SLEEP="30")
    assert srv.request("GET", "/ping")[0] == 503
    started = time.monotonic()
    code, err = srv.stop()
    assert code == 0 and time.monotonic() - started < 5
    assert "Traceback" not in err and "Fatal" not in err


def test_sigterm_finishes_in_flight_request(start_server):
    srv = start_server()
    srv.wait_for("/ping", 200)
    body = b"[[1, 2]]"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                     b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body[:3])
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert srv.proc.poll() is None, "server quit with a request in flight"
        sock.sendall(body[3:])
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head, _, payload = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert json.loads(payload) == [6]
    assert srv.proc.wait(timeout=10) == 0


def test_idle_keepalive_connections_do_not_delay_shutdown(start_server):
    srv = start_server(MLDOCK_GRACEFUL_TIMEOUT="30")
    srv.wait_for("/ping", 200)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        code, _ = srv.stop()
        assert code == 0 and time.monotonic() - started < 5


def test_vertex_custom_routes_and_port(start_server, tmp_path):
    srv = start_server(port_var="AIP_HTTP_PORT", MLDOCK_PORT="1", AIP_MODE="PREDICTION",
                       AIP_HEALTH_ROUTE="/v1/endpoints/1/deployedModels/2",
                       AIP_PREDICT_ROUTE="/v1/endpoints/1/deployedModels/2:predict")
    srv.wait_for("/v1/endpoints/1/deployedModels/2", 200)
    status, body = srv.post_json("/v1/endpoints/1/deployedModels/2:predict",
                                 {"instances": [[1, 2]]})
    assert status == 200 and body == {"predictions": [6]}
    assert srv.post_json("/predict", {"instances": [[1, 1]]}) == (200, {"predictions": [4]})
    code, err = srv.stop()
    assert code == 0 and "platform vertex" in err


def test_vertex_storage_uri_local_path(start_server, model_dir):
    srv = start_server(MLDOCK_MODEL_DIR=None, AIP_MODE="PREDICTION",
                       AIP_STORAGE_URI=str(model_dir))
    srv.wait_for("/health", 200)
    assert srv.post_json("/predict", {"instances": [[2, 2]]}) == (200, {"predictions": [8]})


def test_vertex_gs_uri_without_credentials_fails_the_load_with_the_reason(start_server):
    """No google-cloud-storage needed any more: without a metadata server (not on GCP) the load
    fails, readiness says why, and the container exits 3."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    srv = start_server(MLDOCK_MODEL_DIR=None, port_var="AIP_HTTP_PORT",
                       AIP_STORAGE_URI="gs://bucket/models/iris",
                       GCE_METADATA_HOST=f"127.0.0.1:{closed_port}",
                       MLDOCK_LOAD_FAILURE_GRACE="120")
    srv.wait_for("/health", 500)
    error = json.loads(srv.request("GET", "/health")[2])["error"]
    assert "metadata server" in error and "STORAGE_EMULATOR_HOST" in error
    code, err = srv.stop()
    assert code == 3 and "platform vertex" in err and "Traceback" not in err.split("exiting")[-1]


def test_sagemaker_bind_to_port_and_payload_limit(start_server, model_dir):
    srv = start_server(port_var="SAGEMAKER_BIND_TO_PORT", MLDOCK_PORT="1",
                       SAGEMAKER_MAX_PAYLOAD_IN_MB="1", MLDOCK_MAX_PAYLOAD_MB="50")
    srv.wait_for("/ping", 200)
    params = json.loads(srv.request("GET", "/execution-parameters")[2])
    assert params["MaxPayloadInMB"] == 1
    big = json.dumps([[1, 2]] * 300_000)  # ~2 MB
    status, headers, body = srv.request("POST", "/invocations", big,
                                        {"Content-Type": "application/json"})
    assert status == 413 and "limit" in json.loads(body)["error"]
    assert headers["connection"] == "close"
    # a payload just under the limit is fine, and the server is still healthy
    ok = json.dumps([[1, 2]] * 100_000)
    assert srv.request("POST", "/invocations", ok, {"Content-Type": "application/json"})[0] == 200


def test_sagemaker_serve_argument_with_opt_ml_model(start_server, tmp_path):
    opt_ml = tmp_path / "opt_ml"
    (opt_ml / "model").mkdir(parents=True)
    (opt_ml / "model" / "weights.json").write_text('{"w": 10}')
    srv = start_server(MLDOCK_MODEL_DIR=None, MLDOCK_OPT_ML=str(opt_ml))
    srv.wait_for("/ping", 200)
    assert srv.post_json("/invocations", [[1, 0]]) == (200, [10])
    _, err = srv.stop()
    assert "platform sagemaker" in err


def test_azure_nested_model_trained_by_the_runtime(rt, start_server, tmp_path):
    """Train, register one level down, serve with the predictor named only by the manifest."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.csv").write_text("1\n")
    registered = tmp_path / "azureml-models" / "iris" / "1"
    model = registered / "model"
    train = subprocess.run(rt.cmd("train", "--w=7"), check=False, env=rt.env(
        MLDOCK_PLATFORM="local", MLDOCK_TRAIN="toy.train:train",
        MLDOCK_PREDICTOR="toy.predict:Predictor", MLDOCK_MODEL_DIR=str(model),
        MLDOCK_OUTPUT_DIR=str(tmp_path / "out"), MLDOCK_CHECKPOINT_DIR=str(tmp_path / "ck"),
        MLDOCK_INPUT_TRAIN=str(data)), capture_output=True, text=True, timeout=30)
    assert train.returncode == 0, train.stderr
    srv = start_server(MLDOCK_MODEL_DIR=None, MLDOCK_PREDICTOR=None,
                       AZUREML_MODEL_DIR=str(registered))
    srv.wait_for("/v2/health/ready", 200)
    assert srv.post_json("/score", [[1, 1]]) == (200, [14])
    _, err = srv.stop()
    assert f"model loaded from {model}" in err


def test_access_log_off_by_default_and_on_with_env(start_server):
    quiet = start_server()
    quiet.wait_for("/ping", 200)
    _, quiet_err = quiet.stop()
    assert '"GET /ping HTTP/1.1"' not in quiet_err
    loud = start_server(MLDOCK_ACCESS_LOG="1")
    loud.wait_for("/ping", 200)
    _, loud_err = loud.stop()
    assert '"GET /ping HTTP/1.1" 200' in loud_err


def test_prefork_workers(start_server):
    srv = start_server(MLDOCK_WORKERS="2")
    # each worker loads the model itself; wait until fresh connections keep finding it ready
    deadline, streak = time.monotonic() + 10, 0
    while streak < 10 and time.monotonic() < deadline:
        streak = streak + 1 if srv.request("GET", "/ping")[0] == 200 else 0
    assert streak == 10
    for _ in range(10):
        assert srv.post_json("/invocations", [[1, 2]]) == (200, [6])
    assert json.loads(srv.request("GET", "/execution-parameters")[2])[
        "MaxConcurrentTransforms"] == 2
    assert re.search(r'mldock_model_loaded\{worker="[01]"\} 1', srv.request("GET", "/metrics")[2]
                     .decode())
    code, _ = srv.stop()
    assert code == 0


def test_bad_port_setting_exit_2(rt):
    env = rt.env(MLDOCK_PORT="eighty", MLDOCK_PREDICTOR="toy.predict:Predictor")
    result = subprocess.run(rt.cmd("serve"), check=False, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and "MLDOCK_PORT='eighty' is not a number" in result.stderr


def test_port_in_use_exit_2(rt, start_server):
    srv = start_server()
    env = rt.env(MLDOCK_PORT=str(srv.port), MLDOCK_HOST="127.0.0.1",
                 MLDOCK_PREDICTOR="toy.predict:Predictor")
    result = subprocess.run(rt.cmd("serve"), check=False, env=env, capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 2 and "cannot listen" in result.stderr


@pytest.mark.skipif(not numpy_available(), reason="numpy is not installed in the test"
                                                  " environment; npy payloads need it")
def test_npy_in_and_out(start_server):
    import io

    import numpy

    srv = start_server(isolated=False)
    srv.wait_for("/ping", 200)
    out = io.BytesIO()
    numpy.save(out, numpy.array([[1.0, 2.0], [3.0, 4.0]]))
    status, headers, body = srv.request("POST", "/invocations", out.getvalue(),
                                        {"Content-Type": "application/x-npy",
                                         "Accept": "application/x-npy"})
    assert status == 200 and headers["content-type"] == "application/x-npy"
    assert numpy.load(io.BytesIO(body)).tolist() == [6.0, 14.0]
