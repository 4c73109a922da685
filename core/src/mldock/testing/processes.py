"""Server processes for tests: start on loopback, wait until ready, keep the log, stop the group.

Every emulator and server the suites need (moto, MLflow, a registry, the GCS emulator, Azurite) is
an ordinary program started by :class:`ServerProcess`, so they all share one behaviour:

* it binds 127.0.0.1 only, on a port from :func:`free_port`;
* it runs in its own process group (``start_new_session``): stopping it also ends the workers it
  forked (MLflow's gunicorn, npx's node), and nothing else;
* its output goes to a log file that outlives it; when it does not become ready, or dies, the test
  fails with the tail of that log instead of a bare timeout;
* a missing program follows one policy (:func:`require_program`): fail under CI
  (``MLDOCK_REQUIRE_DOCKER=1``, see :mod:`mldock.testing.docker`), skip with a reason otherwise.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from mldock.testing.docker import unavailable

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 180.0  # seconds: a few on an idle machine, far more on a loaded 2-core CI box
STOP_TIMEOUT = 10.0
TAIL_CHARS = 3000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released).

    Another process may take it before the caller binds it; servers started through
    :class:`ServerProcess` show that as "address in use" in their log tail.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def require_program(name: str, hint: str) -> str:
    """The path of program ``name``: next to this interpreter first (a virtual environment's
    console scripts), then on ``PATH``; otherwise skip the test (fail it under CI) with ``hint``."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        unavailable(f"{name} is not installed: {hint}")
    return found


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


def http_request(method: str, url: str, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None,
                 timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` of one plain-HTTP request; any status is returned, not raised.

    Only ``http://`` URLs: the servers here listen on loopback without TLS, and a request to
    anything else is a mistake in the test.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not a plain http:// URL: {url!r}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()


def http_answers(url: str) -> bool:
    """Whether ``url`` gives any HTTP answer (an error status counts: the server is up)."""
    try:
        http_request("GET", url, timeout=2)
    except OSError:
        return False
    return True


class ServerProcess:
    """One started server: its command, port, log file and process; :meth:`stop` ends its group.

    Use :meth:`start` rather than the constructor: it waits for readiness and turns a server that
    does not come up into a test failure showing the log's tail.
    """

    def __init__(self, name: str, command: Sequence[str], port: int, log: Path,
                 process: subprocess.Popen[bytes]) -> None:
        self.name = name
        self.command = list(command)
        self.port = port
        self.log = log
        self.process = process

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{LOOPBACK}:{self.port}"

    @classmethod
    def start(cls, name: str, command: Sequence[str], *, port: int, log_dir: Path,
              health_url: str | None = None, env: Mapping[str, str] | None = None,
              cwd: Path | None = None, timeout: float = START_TIMEOUT) -> ServerProcess:
        """Start ``command`` in its own process group and wait until it is ready.

        Ready means ``health_url`` gives an HTTP answer, or, without one, that ``port`` accepts
        connections. ``env`` is the whole environment (default: this process's). On a timeout or
        an early exit the process group is stopped and the test fails with the log's tail.
        """
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{name}-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(command), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=dict(os.environ if env is None else env), cwd=cwd, start_new_session=True)
        server = cls(name, command, port, log, process)
        server.wait_ready(health_url, timeout)
        return server

    def wait_ready(self, health_url: str | None, timeout: float) -> None:
        """Poll until ready; stop the server and fail the test when it exits or times out."""
        deadline = time.monotonic() + timeout
        while True:
            ready = http_answers(health_url) if health_url else port_open(self.port)
            if ready:
                return
            code = self.process.poll()
            if code is not None or time.monotonic() > deadline:
                self.stop()
                why = (f"exited with code {code}" if code is not None
                       else f"was not ready after {timeout:.0f} s")
                pytest.fail(f"{self.name} {why} ({' '.join(self.command)});"
                            f" the end of {self.log}:\n{self.log_tail()}", pytrace=False)
            time.sleep(0.1)

    def log_tail(self, chars: int = TAIL_CHARS) -> str:
        """The last ``chars`` characters of the server's log (empty when it wrote nothing)."""
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM the server's process group, then SIGKILL it if it is still there after
        ``timeout``; the group is the server's own, so only its children share it."""
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=timeout)
        self._signal_group(signal.SIGKILL)  # workers that outlived their parent

    def _signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signum)


class Served:
    """A service backed by one :class:`ServerProcess` (an emulator, a registry): its URL, port
    and log, so each wrapper adds only what is its own."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def log(self) -> Path:
        return self.server.log


class ProcessSet:
    """The servers a fixture started; :meth:`stop_all` stops each one (last started first)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[ServerProcess] = []

    def start(self, name: str, command: Sequence[str], *, port: int,
              health_url: str | None = None, env: Mapping[str, str] | None = None,
              cwd: Path | None = None, timeout: float = START_TIMEOUT) -> ServerProcess:
        """:meth:`ServerProcess.start` with this set's log folder; remembered for stopping."""
        server = ServerProcess.start(name, command, port=port, log_dir=self.log_dir,
                                     health_url=health_url, env=env, cwd=cwd, timeout=timeout)
        self.started.append(server)
        return server

    def stop_all(self) -> None:
        while self.started:
            self.started.pop().stop()
