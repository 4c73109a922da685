"""Health routes answer while a prediction runs (issue #9: /ping took 2.7 s behind a 3 s predict).

The predictor here blocks until the test releases it (a file appears), so every check is about
ordering — health answered while the prediction is still running — never about a timer.
"""

from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

GATED_PREDICTOR = '''
"""Blocks in predict until the release file exists; reports how many predicts overlapped."""
import os
import threading
import time
from pathlib import Path

GATE = Path(os.environ["GATE_DIR"])
_lock = threading.Lock()
_running = [0, 0, 0]  # now, most at once, started so far


class Predictor:
    def predict(self, payload):
        with _lock:
            _running[0] += 1
            _running[1] = max(_running[1], _running[0])
            _running[2] += 1
            (GATE / f"started-{_running[2]}").write_text("")
        deadline = time.monotonic() + 60
        while not (GATE / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        with _lock:
            _running[0] -= 1
        return {"echo": payload, "most_at_once": _running[1]}
'''

POST = (b"POST /invocations HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: 3\r\n\r\n[1]")
PING = b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.fixture
def gated(rt, start_server, tmp_path):
    """start(**env) -> (server, gate folder) with the gated predictor loaded."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "gated.py").write_text(textwrap.dedent(GATED_PREDICTOR))
    gate = tmp_path / "gate"
    gate.mkdir()

    def start(**env: str):
        srv = start_server(PYTHONPATH=f"{rt.image_root}:{rt.toy_src}:{src}",
                           MLDOCK_PREDICTOR="gated:Predictor", GATE_DIR=str(gate), **env)
        srv.wait_for("/ping", 200)
        return srv, gate

    yield start
    (gate / "release").write_text("")  # never leave a server thread blocked


def wait_started(gate: Path, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while len(list(gate.glob("started-*"))) < count:
        assert time.monotonic() < deadline, f"{count} prediction(s) never started"
        time.sleep(0.01)


def pending(sock: socket.socket) -> bool:
    """Has the server written anything to ``sock`` yet (without waiting)?"""
    return bool(select.select([sock], [], [], 0)[0])


def read_responses(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    data, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            rest += sock.recv(65536)
        out.append((head, rest[:length]))
        data = rest[length:]
    return out


def test_health_routes_answer_while_a_prediction_runs(gated):
    srv, gate = gated()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as busy:
        busy.sendall(POST)
        wait_started(gate)
        for path in ("/ping", "/health", "/v2/health/ready", "/v2/health/live", "/metrics",
                     "/execution-parameters"):
            status, _, _ = srv.request("GET", path)  # 10 s client timeout: it must not wait
            assert status == 200, path
        assert not pending(busy), "the prediction finished before it was released"
        (gate / "release").write_text("")
        [(head, body)] = read_responses(busy, 1)
    assert head.startswith(b"HTTP/1.1 200") and json.loads(body)["echo"] == [1]


def test_pipelined_requests_stay_in_order_behind_a_running_prediction(gated):
    srv, gate = gated()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(POST + PING + POST.replace(b"[1]", b"[2]") + PING)
        wait_started(gate)
        assert srv.request("GET", "/ping")[0] == 200  # another connection is not held up
        assert not pending(sock), "a pipelined answer overtook the running prediction"
        (gate / "release").write_text("")
        answers = [json.loads(body) for _, body in read_responses(sock, 4)]
    assert [a.get("echo", a.get("status")) for a in answers] == [[1], "ok", [2], "ok"]


@pytest.mark.parametrize("threads", [1, 2])
def test_slow_predictions_queue_on_a_bounded_pool(gated, threads):
    srv, gate = gated(MLDOCK_PREDICT_THREADS=str(threads))
    sockets = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(6)]
    try:
        for sock in sockets:
            sock.sendall(POST)
        wait_started(gate, threads)
        assert srv.request("GET", "/ping")[0] == 200
        (gate / "release").write_text("")
        answers = [json.loads(read_responses(sock, 1)[0][1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    assert len(list(gate.glob("started-*"))) == 6
    assert max(a["most_at_once"] for a in answers) == threads


def test_sigterm_waits_for_the_running_prediction(gated):
    srv, gate = gated()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(POST)
        wait_started(gate)
        srv.proc.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            srv.proc.wait(timeout=0.5)  # still finishing the prediction
        (gate / "release").write_text("")
        [(head, body)] = read_responses(sock, 1)
    assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" in head
    assert json.loads(body)["echo"] == [1]
    code, err = srv.stop()
    assert code == 0 and "Traceback" not in err


def test_client_half_close_still_gets_the_prediction(gated):
    """A client that shuts its write side after the request (``nc -N``) still gets its answer."""
    srv, gate = gated()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(POST)
        sock.shutdown(socket.SHUT_WR)
        wait_started(gate)
        (gate / "release").write_text("")
        [(_, body)] = read_responses(sock, 1)
        assert json.loads(body)["echo"] == [1]
        assert sock.recv(10) == b""  # then closed


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_bad_thread_count_is_a_one_line_startup_error(rt, model_dir, value):
    env = rt.env(MLDOCK_PREDICT_THREADS=value, MLDOCK_PORT="0", MLDOCK_MODEL_DIR=str(model_dir),
                 MLDOCK_PREDICTOR="toy.predict:Predictor")
    proc = subprocess.run(rt.cmd("serve"), env=env, capture_output=True, text=True, timeout=30,
                          check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"MLDOCK_PREDICT_THREADS={value!r}" in proc.stderr and "Traceback" not in proc.stderr
