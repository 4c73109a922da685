"""A small HTTP/1.1 server protocol on asyncio: keep-alive, pipelining, Content-Length and chunked
request bodies, ``Expect: 100-continue``, limits, graceful close.

Why not ``http.server``: it is thread-per-connection and re-parses headers with the email package,
several times slower than the model's own ``predict``. Requests are answered in arrival order,
inline in ``data_received`` (predictions are CPU-bound; a thread hop would only add latency), so
pipelined requests on one connection can never be answered out of order.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from typing import Any

MAX_HEAD = 64 * 1024
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
Response = "tuple[int, bytes, str, list[tuple[str, str]] | None]"  # a string: Python 3.9 images


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


class Request:
    """One parsed request. ``path`` has the query string removed; header names are lower-case."""

    __slots__ = (
        "body",
        "chunked",
        "headers",
        "keep_alive",
        "length",
        "method",
        "path",
        "query",
        "target",
        "version",
    )

    def __init__(self, method: str, target: str, version: str, headers: dict[str, str]):
        self.method = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.version = version
        self.headers = headers
        self.body = b""
        connection = headers.get("connection", "").lower()
        if version == "HTTP/1.1":
            self.keep_alive = "close" not in connection
        else:
            self.keep_alive = "keep-alive" in connection
        self.length = 0
        self.chunked = False


class HttpError(Exception):
    """Ends a request with ``status`` and a JSON ``{"error": message}`` body."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


class ServerState:
    """What all connections of one worker share: the app, the limits, the shutdown flag."""

    def __init__(self, app: Callable[[Request], Response], *, max_body: int,
                 access_log: bool = False) -> None:
        self.app = app
        self.max_body = max_body
        self.access_log = access_log
        self.closing = False
        self.connections: set[HttpProtocol] = set()

    def close_idle(self) -> None:
        """Start shutting down: idle connections close now, busy ones after their response."""
        self.closing = True
        for conn in list(self.connections):
            if conn.idle:
                conn.close()

    def close_stale(self, max_idle: float) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            if now - conn.last_activity > max_idle:
                conn.close()


def _parse_head(head: bytes) -> Request:
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise HttpError(400, "malformed request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        if version.startswith("HTTP/"):
            raise HttpError(505, f"{version} is not supported; use HTTP/1.1")
        raise HttpError(400, "malformed request line")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t" or name[0] in " \t":
            raise HttpError(400, f"malformed header line {line[:60]!r}")
        name = name.lower()
        value = value.strip()
        if name in headers:
            if name == "content-length" and headers[name] != value:
                raise HttpError(400, "conflicting Content-Length headers")
            if name != "content-length":
                headers[name] += ", " + value
        else:
            headers[name] = value
    request = Request(method, target, version, headers)
    encoding = headers.get("transfer-encoding")
    if encoding is not None:
        if "content-length" in headers:
            raise HttpError(400, "both Transfer-Encoding and Content-Length are set")
        if encoding.lower().rsplit(",", 1)[-1].strip() != "chunked" or version == "HTTP/1.0":
            raise HttpError(501, f"unsupported Transfer-Encoding {encoding!r}")
        request.chunked = True
    elif "content-length" in headers:
        length = headers["content-length"]
        if not length.isdigit():
            raise HttpError(400, "malformed Content-Length")
        request.length = int(length)
    return request


def _parse_chunked(buf: bytearray, limit: int) -> bytes | None:
    """The decoded body if ``buf`` holds a complete chunked body (consumed from ``buf``), else None."""
    pos = 0
    parts: list[bytes] = []
    total = 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            if len(buf) - pos > 4096:
                raise HttpError(400, "malformed chunk size line")
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        if not size_text or any(c not in b"0123456789abcdefABCDEF" for c in size_text):
            raise HttpError(400, "malformed chunk size")
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            while True:  # optional trailers, then an empty line
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    return None
                if eol == pos:
                    del buf[:pos + 2]
                    return b"".join(parts)
                pos = eol + 2
        total += size
        if total > limit:
            raise HttpError(413, f"request body is larger than the {limit} byte limit")
        if len(buf) < pos + size + 2:
            return None
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise HttpError(400, "malformed chunk")
        parts.append(bytes(buf[pos:pos + size]))
        pos += size + 2


class HttpProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: Request | None = None
        self.continue_sent = False
        self.closed = False
        self.discarding = False
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
        return False  # close our side too; a half-sent request is abandoned

    def pause_writing(self) -> None:  # the client is not reading: stop reading its requests
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.last_activity = time.monotonic()
        if self.discarding:
            return
        self.buf += data
        try:
            self._process()
        except HttpError as exc:
            self._fail(exc.status, exc.message)

    # --- request handling ----------------------------------------------------------------

    @property
    def idle(self) -> bool:
        return self.pending is None and not self.buf

    def _process(self) -> None:
        buf = self.buf
        while not self.closed and not self.discarding:
            request = self.pending
            if request is None:
                while buf[:2] == b"\r\n":  # tolerate stray CRLF between requests
                    del buf[:2]
                end = buf.find(b"\r\n\r\n")
                if end > MAX_HEAD or (end < 0 and len(buf) > MAX_HEAD):
                    raise HttpError(431, "request head is larger than 64 KiB")
                if end < 0:
                    return
                request = _parse_head(bytes(buf[:end]))
                del buf[:end + 4]
                if request.length > self.state.max_body:
                    raise HttpError(413, f"request body of {request.length} bytes is larger than"
                                         f" the {self.state.max_body} byte limit")
                self.pending = request
                self.continue_sent = False
            if request.chunked:
                body = _parse_chunked(buf, self.state.max_body)
                if body is None:
                    self._maybe_continue(request)
                    return
            else:
                if len(buf) < request.length:
                    self._maybe_continue(request)
                    return
                body = bytes(buf[:request.length])
                del buf[:request.length]
            self.pending = None
            request.body = body
            self._respond(request)

    def _maybe_continue(self, request: Request) -> None:
        if not self.continue_sent and request.headers.get("expect", "").lower() == "100-continue":
            self.continue_sent = True
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _respond(self, request: Request) -> None:
        started = time.perf_counter()
        try:
            status, body, content_type, extra = self.state.app(request)
        except Exception as exc:  # noqa: BLE001 - the app maps errors itself; this is a bug
            import traceback

            traceback.print_exc(file=sys.stderr)
            status, body, content_type, extra = (500, error_body(f"internal error: {exc}"),
                                                 "application/json", None)
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
        self.transport.write(data if head_only else data + body)

    def _fail(self, status: int, message: str) -> None:
        """Answer a request we could not read, then stop reading this connection.

        The write side is shut down first and the rest of the upload discarded for a moment, so
        the client reads the error instead of a connection reset.
        """
        self.pending = None
        self.buf.clear()
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
