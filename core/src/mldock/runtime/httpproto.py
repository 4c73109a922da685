"""A small HTTP/1.1 server protocol on asyncio: keep-alive, pipelining, Content-Length and chunked
request bodies (framed by :mod:`mldock.runtime.framing`), ``Expect: 100-continue``, limits,
graceful close.

Why not ``http.server``: it is thread-per-connection and re-parses headers with the email package,
several times slower than the model's own ``predict``. Cheap routes (health, metrics) are answered
inline in ``data_received``; routes the app marks as blocking (predictions) run on a small pool of
threads (:mod:`mldock.runtime.offload`), so a 3 s ``predict`` never delays ``/ping`` — platforms
restart containers whose health checks time out. A connection with a prediction in flight stops
reading until it is answered, so pipelined requests on one connection are answered in order and a
flood of slow requests queues instead of piling up in memory.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any, Optional

from mldock.runtime.framing import MAX_HEAD, HttpError, Request, RequestReader
from mldock.runtime.offload import PredictPool

__all__ = ["MAX_HEAD", "HttpError", "HttpProtocol", "Request", "Response", "ServerState",
           "error_body", "http_date"]
REASONS = {100: "Continue", 200: "OK", 400: "Bad Request", 404: "Not Found",
           405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout",
           411: "Length Required", 413: "Payload Too Large", 415: "Unsupported Media Type",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable",
           505: "HTTP Version Not Supported"}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_date_cache: list[Any] = [0, ""]

# (status, body, content type, extra headers or None)
# Optional, not ``X | None``: this alias is evaluated at import, and images may run Python 3.9.
Response = tuple[int, bytes, str, Optional[list[tuple[str, str]]]]


def http_date() -> str:
    """RFC 9110 date, recomputed at most once a second."""
    now = int(time.time())
    if now != _date_cache[0]:
        t = time.gmtime(now)
        _date_cache[0] = now
        _date_cache[1] = (f"{_DAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year}"
                          f" {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")
    return _date_cache[1]


def error_body(message: str) -> bytes:
    import json

    return json.dumps({"error": message}).encode("utf-8")


class ServerState:
    """What all connections of one worker share: the app, the limits, the thread pool, the
    shutdown flag.

    ``app.blocking(request)``, when the app has it, says which requests run on the pool;
    without it every request is answered inline.
    """

    def __init__(self, app: Callable[[Request], Response], *, max_body: int,
                 access_log: bool = False, threads: int = 1) -> None:
        self.app = app
        self.max_body = max_body
        self.access_log = access_log
        self.closing = False
        self.connections: set[HttpProtocol] = set()
        self.blocking: Callable[[Request], bool] = getattr(app, "blocking", lambda _: False)
        self.pool = PredictPool(threads)

    def close_idle(self) -> None:
        """Start shutting down: idle connections close now, busy ones after their response."""
        self.closing = True
        for conn in list(self.connections):
            if conn.idle:
                conn.close()

    def close_stale(self, max_idle: float) -> None:
        """Close connections silent for ``max_idle`` s; never one whose answer is being made."""
        now = time.monotonic()
        for conn in list(self.connections):
            if not conn.busy and now - conn.last_activity > max_idle:
                conn.close()


def _internal_error(exc: BaseException) -> Response:
    """A bug in the app (it maps its own errors): the traceback goes to the log, not the client."""
    import traceback

    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return 500, error_body(f"internal error: {type(exc).__name__}"), "application/json", None


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.reader = RequestReader(state.max_body)
        self.busy = False  # a request of this connection is running on the pool
        self.closed = False
        self.discarding = False
        self.eof = False
        self.write_paused = False
        self.continued: Request | None = None  # the request "100 Continue" was sent for
        self.last_activity = time.monotonic()
        self.peer = "-"

    # --- asyncio callbacks ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer = str(peer[0])
        self.state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.state.connections.discard(self)

    def eof_received(self) -> bool:
        """The client finished sending: answer what is running, then close; else close now."""
        self.eof = True
        return self.busy

    def pause_writing(self) -> None:  # the client is not reading: stop reading its requests
        self.write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        if self.discarding:
            return
        self.reader.feed(data)
        if not self.busy:
            self._process()

    # --- request handling ----------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self.busy and self.reader.idle

    def _update_reading(self) -> None:
        if self.transport is None or self.closed:
            return
        if self.busy or self.write_paused:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def _process(self) -> None:
        """Answer every complete request buffered, until one has to wait for the pool."""
        try:
            while not self.closed and not self.discarding and not self.busy:
                request = self.reader.next_request()
                if request is None:
                    self._maybe_continue(self.reader.request)
                    return
                self._dispatch(request)
        except HttpError as exc:
            self._fail(exc.status, exc.message)

    def _dispatch(self, request: Request) -> None:
        started = time.perf_counter()
        state = self.state
        if state.blocking(request):
            self.busy = True
            self._update_reading()
            state.pool.submit(state.app, request,
                              lambda result, error: self._finished(request, started, result,
                                                                   error))
            return
        try:
            response = state.app(request)
        except Exception as exc:  # noqa: BLE001 - the app maps errors itself; this is a bug
            response = _internal_error(exc)
        self._respond(request, response, started)

    def _finished(self, request: Request, started: float, response: Response | None,
                  error: BaseException | None) -> None:
        """On the loop, once the pool has answered ``request``: write it, go on reading."""
        self.busy = False
        if error is not None or response is None:
            response = _internal_error(error or RuntimeError("the app returned no response"))
        if self.closed:
            return  # the client went away meanwhile
        self._respond(request, response, started)
        self._update_reading()
        self._process()
        if self.eof and not self.busy:
            self.close()

    def _maybe_continue(self, request: Request | None) -> None:
        if request is not None and request is not self.continued \
                and request.headers.get("expect", "").lower() == "100-continue":
            self.continued = request
            if self.transport is not None:
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _respond(self, request: Request, response: Response, started: float) -> None:
        status, body, content_type, extra = response
        keep_alive = request.keep_alive and not self.state.closing
        self._write(status, body, content_type, extra, keep_alive,
                    head_only=request.method == "HEAD", http10=request.version == "HTTP/1.0")
        if self.state.access_log:
            ms = (time.perf_counter() - started) * 1000
            sys.stderr.write(f'{self.peer} "{request.method} {request.target} {request.version}"'
                             f" {status} {len(body)} {ms:.2f}ms\n")
        if not keep_alive:
            self.close()

    def _write(self, status: int, body: bytes, content_type: str,
               extra: list[tuple[str, str]] | None, keep_alive: bool, *, head_only: bool = False,
               http10: bool = False) -> None:
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\nServer: mldock\r\n"
                f"Date: {http_date()}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n")
        if extra:
            head += "".join(f"{name}: {value}\r\n" for name, value in extra)
        if not keep_alive:
            head += "Connection: close\r\n"
        elif http10:
            head += "Connection: keep-alive\r\n"
        data = (head + "\r\n").encode("latin-1")
        if self.transport is not None:  # None only before connection_made
            self.transport.write(data if head_only else data + body)

    def _fail(self, status: int, message: str) -> None:
        """Answer a request we could not read, then stop reading this connection.

        The write side is shut down first and the rest of the upload discarded for a moment, so
        the client reads the error instead of a connection reset.
        """
        self.reader = RequestReader(self.state.max_body)
        if self.closed or self.transport is None:
            return
        self._write(status, error_body(message), "application/json", None, keep_alive=False)
        self.discarding = True
        try:
            if self.transport.can_write_eof():
                self.transport.write_eof()
        except OSError:
            pass
        asyncio.get_running_loop().call_later(2.0, self.close)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
