"""The HTTPS server: a thread per connection, every request through faults, then the routes.

Each request is recorded (method, path, query, parsed JSON body) in :attr:`FakeServer.requests`
so a test can read what the SDK really sent. An :class:`~.routing.ArmError` becomes ARM's error
shape; any other exception is the fake's own bug and answers 500 with the traceback's last line
(and is kept in :attr:`FakeServer.crashes` so the fixture can fail the test that caused it).
"""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .faults import Faults
from .routing import ArmError, Request, Response, Router
from .tls import FakeTLS

LOOPBACK = "127.0.0.1"


@dataclass
class Recorded:
    """One request as received: what tests assert on. ``body`` is the text sent (empty for
    none); :attr:`json` parses it."""

    method: str
    path: str
    query: dict[str, str]
    body: str
    status: int = 0

    @property
    def json(self) -> Any:
        """The body parsed as JSON (None for an empty or non-JSON body)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class FakeServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, router: Router, faults: Faults, tls: FakeTLS,
                 on_request: Callable[[Request], Response | None] | None = None) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.router = router
        self.faults = faults
        self.on_request = on_request
        self.socket = tls.server_context().wrap_socket(self.socket, server_side=True)
        self.requests: list[Recorded] = []
        self.crashes: list[str] = []
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, name="azureml-fake",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def answer(self, request: Request) -> Response:
        """The response to one request: an injected fault, else the route's answer."""
        fault = self.faults.take(request.method, request.path)
        try:
            if fault is not None:
                raise fault
            return self.router.dispatch(request)
        except ArmError as error:
            return Response(error.status, error.body(),
                            {"x-ms-failure-cause": "service", "x-ms-error-code": error.code})
        except Exception as exc:  # noqa: BLE001 - a bug of the fake: answer, the fixture reports it
            self.crashes.append(f"{request.method} {request.path}: {traceback.format_exc()}")
            return Response(500, {"error": {"code": "FakeCrashed", "message": repr(exc),
                                            "details": []}})


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FakeServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded on the server instead."""

    def _handle(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, parts.path, dict(urllib.parse.parse_qsl(parts.query)),
                          {k.lower(): v for k, v in self.headers.items()}, body,
                          base_url=self.server.url)
        record = Recorded(request.method, request.path, request.query,
                          body.decode(errors="replace"))
        self.server.requests.append(record)
        response = self.server.answer(request)
        record.status = response.status
        payload, content_type = response.encoded()
        self.send_response(response.status)
        headers = {"Content-Type": content_type, **response.headers,
                   "Content-Length": str(len(payload)), "x-ms-request-id": "fake"}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = _handle

