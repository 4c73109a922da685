"""``mldock-runtime serve``: bind at once, load the model in the background, answer every route.

Environment read (first match wins where several are listed):

- port: ``SAGEMAKER_BIND_TO_PORT``, ``AIP_HTTP_PORT``, ``MLDOCK_PORT``, else 8080;
  host: ``MLDOCK_HOST`` (default ``0.0.0.0``)
- payload limit in MB: ``SAGEMAKER_MAX_PAYLOAD_IN_MB``, ``MLDOCK_MAX_PAYLOAD_MB``, else 6
- ``MLDOCK_WORKERS`` (default 1): pre-forked processes on the same port (``SO_REUSEPORT``
  sockets, else one shared socket), each loading the model; ``auto`` means one per CPU
- ``MLDOCK_PREDICTOR`` (else the manifest's ``predictor``), the model directory (see
  :mod:`mldock.runtime.modeldir`), ``AIP_HEALTH_ROUTE`` / ``AIP_PREDICT_ROUTE``,
  ``MLDOCK_MODEL_NAME`` (v2 metadata, default ``model``)
- ``MLDOCK_ACCESS_LOG=1`` (one stderr line per request), ``MLDOCK_GRACEFUL_TIMEOUT`` (seconds to
  finish in-flight requests after SIGTERM, default 10), ``MLDOCK_KEEPALIVE_TIMEOUT`` (idle
  connections closed after, default 75)
- ``MLDOCK_PREDICT_THREADS`` (default 1): predictions run on this many threads per worker, off
  the event loop, so health routes answer while a prediction runs; more than 1 only helps a
  predictor that releases the GIL and is thread-safe
- ``MLDOCK_LOAD_FAILURE_GRACE`` (seconds, default 5; ``inf`` never exits): after the model fails
  to load, the server keeps answering (readiness routes give the reason) for this long, then
  exits 3 with the reason on stderr, so the platform sees a failed container and restarts it or
  reports the failure instead of probing a server that answers 500 forever.

SIGTERM/SIGINT: stop accepting, finish in-flight requests, close idle connections, exit 0 (3 when
the model had failed to load).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mldock.runtime.app import App, AppConfig
from mldock.runtime.httpproto import HttpProtocol, ServerState
from mldock.runtime.logs import log
from mldock.runtime.metrics import Metrics
from mldock.runtime.modeldir import model_source
from mldock.runtime.names import ENV_PREDICTOR
from mldock.runtime.platform import detect_serving_platform
from mldock.runtime.predictor import FAILED, ModelState, start_loading

EXIT_OK, EXIT_USAGE, EXIT_MODEL_FAILED = 0, 2, 3
DEFAULT_LOAD_FAILURE_GRACE = 5.0


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    workers: int
    max_payload_mb: float
    platform: str
    model_source: str
    predictor: str | None
    access_log: bool
    graceful_timeout: float
    keepalive_timeout: float
    app: AppConfig
    load_failure_grace: float = DEFAULT_LOAD_FAILURE_GRACE

    @property
    def max_body(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *,
                 serve_argument: bool = False) -> ServerConfig:
        """Read the configuration; raises ValueError with a readable message on bad values."""
        env = os.environ if env is None else env

        def first(*names: str) -> tuple[str, str] | None:
            for name in names:
                if env.get(name, "").strip():
                    return name, env[name].strip()
            return None

        def number(names: tuple[str, ...], default: float, kind: type = float,
                   minimum: float = 0, maximum: float = float("inf")) -> float:
            """The first set variable of ``names`` as a number in (minimum, maximum]."""
            found = first(*names)
            if found is None:
                return default
            try:
                value = kind(found[1])
            except ValueError:
                raise ValueError(f"{found[0]}={found[1]!r} is not a number") from None
            if not minimum < value <= maximum:
                raise ValueError(f"{found[0]}={found[1]!r} is out of range")
            return value

        port = int(number(("SAGEMAKER_BIND_TO_PORT", "AIP_HTTP_PORT", "MLDOCK_PORT"), 8080, int,
                          minimum=-1, maximum=65535))  # 0: any free port
        raw_workers = env.get("MLDOCK_WORKERS", "").strip().lower()
        workers = (os.cpu_count() or 1) if raw_workers == "auto" \
            else int(number(("MLDOCK_WORKERS",), 1, int))
        max_mb = number(("SAGEMAKER_MAX_PAYLOAD_IN_MB", "MLDOCK_MAX_PAYLOAD_MB"), 6.0)
        platform = detect_serving_platform(env, serve_argument=serve_argument)
        return cls(
            # all interfaces: the container contract (SageMaker, Vertex AI and Azure ML reach
            # the server from outside the container); MLDOCK_HOST narrows it
            host=env.get("MLDOCK_HOST", "").strip() or "0.0.0.0",  # noqa: S104
            port=port, workers=workers,
            max_payload_mb=max_mb, platform=platform,
            model_source=model_source(platform, env),
            predictor=env.get(ENV_PREDICTOR, "").strip() or None,
            access_log=env.get("MLDOCK_ACCESS_LOG", "").strip().lower() in ("1", "true", "yes"),
            graceful_timeout=number(("MLDOCK_GRACEFUL_TIMEOUT",), 10.0),
            keepalive_timeout=number(("MLDOCK_KEEPALIVE_TIMEOUT",), 75.0),
            load_failure_grace=max(0.0, number(("MLDOCK_LOAD_FAILURE_GRACE",),
                                               DEFAULT_LOAD_FAILURE_GRACE, minimum=-1e-9)),
            app=AppConfig(workers=workers, max_payload_mb=max_mb,
                          health_route=env.get("AIP_HEALTH_ROUTE") or None,
                          predict_route=env.get("AIP_PREDICT_ROUTE") or None,
                          model_name=env.get("MLDOCK_MODEL_NAME") or "model",
                          predict_threads=int(number(("MLDOCK_PREDICT_THREADS",), 1, int,
                                                     maximum=256))))


REUSE_PORT = hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int, *, reuse_port: bool = False) -> socket.socket:
    """A listening socket, bound before anything slow happens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def _until_stopped(stop: asyncio.Event, failed: asyncio.Event, model: ModelState,
                         grace: float) -> int:
    """Wait for SIGTERM, or for a failed load plus ``grace`` seconds; returns the exit code."""
    waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(failed.wait())]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    # the loader thread records FAILED before its ``failed.set`` reaches this loop: a SIGTERM in
    # between (a probe saw the 500 and stopped us) must still exit 3
    if not failed.is_set() and model.status != FAILED:
        return EXIT_OK
    if grace != float("inf") and not stop.is_set():
        log(f"the model failed to load; exiting in {grace:g}s (MLDOCK_LOAD_FAILURE_GRACE),"
            " readiness routes give the reason until then")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), grace)
    else:
        await stop.wait()
    log(f"exiting with code {EXIT_MODEL_FAILED}: the model failed to load: {model.error}")
    return EXIT_MODEL_FAILED


async def _serve_async(sock: socket.socket, config: ServerConfig, worker: int | None,
                       env: Mapping[str, str]) -> int:
    loop = asyncio.get_running_loop()
    model = ModelState()
    metrics = Metrics(worker)
    state = ServerState(App(config.app, model, metrics), max_body=config.max_body,
                        access_log=config.access_log, threads=config.app.predict_threads)
    server = await loop.create_server(lambda: HttpProtocol(state), sock=sock, backlog=1024)
    failed = asyncio.Event()

    def loaded(result: ModelState) -> None:  # runs on the loader thread
        if result.status == FAILED:
            # RuntimeError: the loop is already closed, the server is stopping anyway
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(failed.set)

    start_loading(model, config.model_source, config.predictor, env, loaded)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def sweep() -> None:
        while True:
            await asyncio.sleep(min(5.0, config.keepalive_timeout))
            state.close_stale(config.keepalive_timeout)

    sweeper = loop.create_task(sweep())
    code = await _until_stopped(stop, failed, model, config.load_failure_grace)
    server.close()  # stop accepting
    state.close_idle()
    deadline = time.monotonic() + config.graceful_timeout
    while state.connections and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for conn in list(state.connections):
        conn.close()
    sweeper.cancel()
    await asyncio.sleep(0)  # let the transports finish closing
    return code


def run_worker(sock: socket.socket, config: ServerConfig, worker: int | None,
               env: Mapping[str, str]) -> int:
    return asyncio.run(_serve_async(sock, config, worker, env))


def bind_all(config: ServerConfig) -> list[socket.socket]:
    """One socket, or with several workers one ``SO_REUSEPORT`` socket each on the same port.

    Measured: with one shared socket, whichever worker wakes first accepts a whole burst of new
    connections (asyncio accepts in a loop), so keep-alive clients often all land on one worker.
    ``SO_REUSEPORT`` lets the kernel spread connections across workers. The parent keeps every
    socket open, so connections queued for a worker that is being restarted are not lost.
    """
    reuse = config.workers > 1 and REUSE_PORT
    first = bind(config.host, config.port, reuse_port=reuse)
    sockets = [first]
    if reuse:
        port = first.getsockname()[1]
        sockets += [bind(config.host, port, reuse_port=True) for _ in range(config.workers - 1)]
    return sockets


def _supervise(sockets: list[socket.socket], config: ServerConfig,
               env: Mapping[str, str]) -> int:
    """Fork ``workers`` processes on the sockets; restart any that dies; forward SIGTERM.

    A worker that exits because the model failed to load is not restarted (it would fail again):
    the others are stopped and the server exits with that code.
    """
    children: dict[int, int] = {}  # pid -> worker index
    stopping = False
    result = EXIT_OK

    def spawn(index: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            mine = sockets[index % len(sockets)]
            for other in sockets:
                if other is not mine:
                    other.close()
            code = 1
            try:
                code = run_worker(mine, config, index, env)
            finally:
                os._exit(code)
        children[pid] = index

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for worker in range(config.workers):
        spawn(worker)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        index = children.pop(pid, None)
        if os.waitstatus_to_exitcode(status) == EXIT_MODEL_FAILED:
            result = EXIT_MODEL_FAILED
            if not stopping:
                forward(signal.SIGTERM, None)
            continue
        if index is None or stopping:
            continue
        log(f"worker {index} (pid {pid}) exited with status {os.waitstatus_to_exitcode(status)};"
            " restarting it")
        time.sleep(1.0)
        spawn(index)
    return result


def serve(argv: Sequence[str] = (), env: Mapping[str, str] | None = None, *,
          serve_argument: bool = False) -> int:
    """Run the server until SIGTERM; returns the process exit code."""
    env = os.environ if env is None else env
    try:
        config = ServerConfig.from_env(env, serve_argument=serve_argument)
    except ValueError as exc:
        log(f"cannot start the server: {exc}")
        return EXIT_USAGE
    try:
        sockets = bind_all(config)
    except OSError as exc:
        log(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
            " (is another server using the port? set MLDOCK_PORT)")
        return EXIT_USAGE
    # a comparison, not a bind (S104 sees the literal)
    shown = "127.0.0.1" if config.host in ("0.0.0.0", "") else config.host  # noqa: S104
    port = sockets[0].getsockname()[1]
    log(f"serving on http://{shown}:{port} (bound to {config.host}:{port}, platform"
        f" {config.platform}, model {config.model_source}, {config.workers} worker(s),"
        f" pid {os.getpid()})")
    sys.stderr.flush()
    if config.workers == 1:
        return run_worker(sockets[0], config, None, env)
    return _supervise(sockets, config, env)
