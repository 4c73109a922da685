"""The batch driver that runs *inside* the image on Azure ML: the model over every input file.

Standard library only, and self-contained: :mod:`mldock_azure.batch` passes this file's source
to ``python3 -c`` as the command job's command, so nothing is added to the image or to the
user's code. It starts the image's own server (``mldock-runtime serve``, on loopback) with the
mounted model, waits until it is ready, and posts every input file to ``/invocations``, as
SageMaker batch transform does with the same server: the same decoding, the same predictor, the
same answers as the online endpoint.

Line-based inputs (CSV, JSON Lines) are sent whole when they fit in one request, else as runs of
whole lines below the request limit (a CSV header then reaches only the first request), and the
answers are asked for as JSON Lines: ``<file>.out`` has one line per input record. Any other
file is sent whole and its answer written as it came. A refused record fails the job, naming the
file and the server's reason.

Usage: ``python3 -c SOURCE MODEL_DIR INPUT_DIR OUTPUT_DIR CONTENT_TYPE ACCEPT``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

LINE_TYPES = ("text/csv", "application/jsonlines", "application/x-jsonlines",
              "application/jsonl", "application/x-ndjson")
# below the runtime's default request limit of 6 MB (raise both for bigger requests)
CHUNK_BYTES = int(os.environ.get("MLDOCK_BATCH_CHUNK_BYTES", str(5 * 1024 * 1024)))
READY_TIMEOUT_S = float(os.environ.get("MLDOCK_BATCH_READY_TIMEOUT", "900"))


def say(text: str) -> None:
    print("mldock-batch: " + text, flush=True)


def inputs(folder: Path) -> list[Path]:
    """Every file under ``folder``, sorted, hidden files skipped."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(Path(root) / name for name in sorted(files) if not name.startswith("."))
    return found


def chunks(path: Path, content_type: str) -> Iterator[bytes]:
    """The request bodies for one file: whole, or runs of whole lines below CHUNK_BYTES."""
    data = path.read_bytes()
    if content_type not in LINE_TYPES or len(data) <= CHUNK_BYTES:
        if data.strip():
            yield data
        return
    batch: list[bytes] = []
    size = 0
    for line in data.splitlines(keepends=True):
        if not line.strip():
            continue
        if batch and size + len(line) > CHUNK_BYTES:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield b"".join(batch)


def free_port() -> str:
    """A free loopback port: processes of a node may share its network, so not a fixed one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def call(url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """``(status, body)`` of one request to the local server."""
    # S310: url is always http://127.0.0.1:<port>/… (the server this driver started)
    request = urllib.request.Request(url, data=body, headers=headers or {},  # noqa: S310
                                     method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(request, timeout=600) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_ready(base: str, server: subprocess.Popen[bytes]) -> None:
    """Until the server's readiness route answers 200; its exit (a model that cannot load)
    ends the job with the server's code."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        if server.poll() is not None:
            say(f"the server exited with code {server.returncode} before the model was loaded")
            raise SystemExit(3)
        try:
            status, _ = call(base + "/v2/health/ready")
        except OSError:
            status = 0
        if status == 200:
            return
        if time.monotonic() > deadline:
            say(f"the model was not ready after {READY_TIMEOUT_S:.0f} s")
            raise SystemExit(3)
        time.sleep(0.5)


def predict_file(base: str, path: Path, target: Path, content_type: str, accept: str) -> int:
    """Post one file (in chunks) and write the answers to ``target``; the number of requests."""
    target.parent.mkdir(parents=True, exist_ok=True)
    line_based = content_type in LINE_TYPES
    headers = {"Content-Type": content_type,
               "Accept": "application/jsonlines" if line_based and not accept else
               (accept or "application/json")}
    sent = 0
    with open(target, "wb") as sink:
        for body in chunks(path, content_type):
            status, answer = call(base + "/invocations", body, headers)
            if status != 200:
                reason = answer.decode("utf-8", "replace").strip().splitlines()
                first = reason[0][:500] if reason else ""
                say(f"{path}: the server answered {status}: {first}")
                raise SystemExit(1)
            sink.write(answer)
            if line_based and answer and not answer.endswith(b"\n"):
                sink.write(b"\n")
            sent += 1
    return sent


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        say("usage: MODEL_DIR INPUT_DIR OUTPUT_DIR CONTENT_TYPE ACCEPT")
        return 2
    model, data, out = (Path(a) for a in argv[:3])
    content_type = argv[3].split(";")[0].strip().lower()
    accept = argv[4].strip() if argv[4].strip() not in ("", "-") else ""
    files = inputs(data) if data.is_dir() else [data]
    if not files:
        say(f"no input files under {data}")
        return 1
    port = os.environ.get("MLDOCK_BATCH_PORT") or free_port()
    env = dict(os.environ, MLDOCK_MODEL_DIR=str(model), MLDOCK_HOST="127.0.0.1",
               MLDOCK_PORT=port)
    server = subprocess.Popen(["mldock-runtime", "serve"], env=env)
    base = "http://127.0.0.1:" + port
    try:
        wait_ready(base, server)
        for path in files:
            rel = path.relative_to(data) if data.is_dir() else Path(path.name)
            target = out / (str(rel) + ".out")
            requests = predict_file(base, path, target, content_type, accept)
            say(f"{rel}: {requests} request(s) -> {target.relative_to(out)}")
        say(f"{len(files)} file(s) done")
        return 0
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
