"""Serving runtime under a hostile upload: a body sent in 1-byte chunks (issue #10, item 6).

Starts the in-container runtime (stdlib only, one worker) on 127.0.0.1 with a predictor that
answers the payload's length, then for each size sends ``{"x": "aaa…"}`` as ``Transfer-Encoding:
chunked`` with one byte per chunk (6 wire bytes per body byte), all at once. Reports the wall time
until the answer, the server's CPU seconds spent (from ``/proc/PID/stat``), and the slowest
``/ping`` answered on a second connection meanwhile (a stalled worker shows up there).

    uv run python bench/http_chunked.py [--sizes 1,3] (MB)
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "core" / "src"
PREDICTOR = "class Predictor:\n    def predict(self, payload):\n        return len(payload['x'])\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += sock.recv(65536)
    return head.split(b"\r\n")[0] + b" " + rest[:length]


def ping_while(port: int, done: threading.Event, worst: list[float]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        while not done.is_set():
            started = time.perf_counter()
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: b\r\n\r\n")
            read_response(sock)
            worst[0] = max(worst[0], time.perf_counter() - started)
            time.sleep(0.05)


def one_size(port: int, pid: int, megabytes: float) -> None:
    payload = b'{"x": "' + b"a" * (int(megabytes * 1024 * 1024) - 9) + b'"}'
    wire = (b"POST /invocations HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
            + b"".join(b"1\r\n%c\r\n" % byte for byte in payload) + b"0\r\n\r\n")
    done, worst = threading.Event(), [0.0]
    pinger = threading.Thread(target=ping_while, args=(port, done, worst), daemon=True)
    pinger.start()
    cpu, started = cpu_seconds(pid), time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sender = threading.Thread(target=sock.sendall, args=(wire,), daemon=True)
        sender.start()
        answer = read_response(sock)
    wall, used = time.perf_counter() - started, cpu_seconds(pid) - cpu
    done.set()
    pinger.join()
    print(f"{megabytes:g} MB in 1-byte chunks ({len(wire) / 1e6:.1f} MB on the wire):"
          f" {wall:.2f} s wall, {used:.2f} s server CPU, slowest /ping {worst[0] * 1000:.0f} ms"
          f" -> {answer[:60]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,3", help="body sizes in MB, comma-separated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "benchpred.py").write_text(PREDICTOR)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{tmp}", "MLDOCK_PORT": str(port),
               "MLDOCK_HOST": "127.0.0.1", "MLDOCK_PREDICTOR": "benchpred:Predictor",
               "MLDOCK_MODEL_DIR": tmp, "MLDOCK_MAX_PAYLOAD_MB": "64"}
        proc = subprocess.Popen([sys.executable, "-m", "mldock.runtime", "serve"], env=env,
                                stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                        sock.sendall(b"GET /ping HTTP/1.1\r\nHost: b\r\n\r\n")
                        if b" 200 " in read_response(sock):
                            break
                except OSError:
                    pass
                time.sleep(0.05)
            for size in args.sizes.split(","):
                one_size(port, proc.pid, float(size))
        finally:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
