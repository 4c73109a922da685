"""The page's HTTP server: HTML shells, static files and the JSON the page reads.

Routes (all ``GET``; anything else is 405)::

    /runs                    the runs table          /api/runs?…           a page of runs
    /runs/ID                 one run                 /api/runs/ID          the run in full
    /compare?ids=A,B[,…]     runs side by side       /api/runs/ID/metrics?keys=a,b[&low&high&points]
    /endpoints               what is deployed        /api/runs/ID/log?offset=N
    /static/…                the page's files        /api/compare?ids=A,B  /api/endpoints

An unknown run is a 404 page, a malformed query a 400 page (JSON routes answer JSON errors), and
nothing that goes wrong inside reaches the browser as a traceback: it is a one-line 500.
"""

from __future__ import annotations

import html
import json
import math
import mimetypes
import re
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mldock.errors import NotFoundError
from mldock.ui.app import UiApp
from mldock.ui.query import QueryError, parse_runs_query

RUN_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
MAX_COMPARE = 10
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline';"
                               " img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class HttpError(Exception):
    """An answer other than 200, with the one line the page shows."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _static(name: str) -> bytes:
    return resources.files("mldock.ui").joinpath("static", *name.split("/")).read_bytes()


class Handler(BaseHTTPRequestHandler):
    """One request; the :class:`UiApp` it serves hangs on the server."""

    server: UiServer
    server_version = "mldock-ui"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write("mldock ui: " + (format % args) + "\n")

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        wants_json = parts.path.startswith("/api/")
        try:
            self._check_host()
            query = parse_qs(parts.query, keep_blank_values=True, max_num_fields=200)
            self._route(parts.path, query)
        except HttpError as exc:
            self._error(exc.status, exc.message, wants_json)
        except NotFoundError as exc:
            self._error(HTTPStatus.NOT_FOUND, exc.message, wants_json)
        except QueryError as exc:
            self._error(HTTPStatus.BAD_REQUEST, str(exc), wants_json)
        except (ConnectionError, TimeoutError):
            return
        except Exception as exc:  # noqa: BLE001 - one line for the page, the detail on stderr
            sys.stderr.write(f"mldock ui: {self.path}: {type(exc).__name__}: {exc}\n")
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(exc).__name__}: {first}",
                        wants_json)

    def _not_get(self) -> None:
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, "the page is read-only: GET only",
                    self.path.startswith("/api/"))

    do_POST = do_PUT = do_DELETE = do_PATCH = _not_get

    # --- routing ------------------------------------------------------------------------------
    def _route(self, path: str, query: dict[str, list[str]]) -> None:
        for pattern, action in ROUTES:
            match = re.fullmatch(pattern, path)
            if match:
                action(self, query, *match.groups())
                return
        raise HttpError(HTTPStatus.NOT_FOUND, f"no page at {path[:200]}")

    def _page_run(self, query: dict[str, list[str]], run_id: str) -> None:
        self._shell("run", run=self.server.app.run(run_id).id)

    def _page_compare(self, query: dict[str, list[str]]) -> None:
        self._shell("compare", ids=",".join(self.server.app.compare_ids(self._ids(query))))

    def _api_metrics(self, query: dict[str, list[str]], run_id: str) -> None:
        self._json(self.server.app.metrics(run_id, **_metrics_args(query)))

    def _api_log(self, query: dict[str, list[str]], run_id: str) -> None:
        self._json(self.server.app.log(run_id, _int_arg(query, "offset", 0, 0, 2**62)))

    def _ids(self, query: dict[str, list[str]]) -> list[str]:
        raw = ",".join(query.get("ids", []))
        ids = [i for i in raw.split(",") if i]
        if not 2 <= len(ids) <= MAX_COMPARE:
            raise HttpError(HTTPStatus.BAD_REQUEST,
                            f"compare needs 2 to {MAX_COMPARE} run ids: ?ids=RUN1,RUN2")
        bad = [i for i in ids if not re.fullmatch(RUN_ID, i)]
        if bad:
            raise HttpError(HTTPStatus.BAD_REQUEST, f"{bad[0][:80]!r} is not a run id")
        return ids

    def _check_host(self) -> None:
        """Refuse a Host header naming another site (DNS rebinding) when bound to loopback."""
        if not self.server.loopback_only:
            return
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host not in ("127.0.0.1", "localhost", "::1", ""):
            raise HttpError(HTTPStatus.FORBIDDEN, f"host {host[:80]!r} is not this machine")

    # --- answers ------------------------------------------------------------------------------
    def _shell(self, page: str, **data: str) -> None:
        attributes = " ".join(f'data-{k}="{html.escape(v)}"' for k, v in
                              {"page": page, "project": self.server.app.title, **data}.items())
        body = _static("index.html").decode().replace("<body>", f"<body {attributes}>", 1)
        self._send(HTTPStatus.OK, body.encode(), "text/html; charset=utf-8")

    def _static_file(self, name: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_.-]+)*\.(js|css|svg|png|ico)", name) \
                or ".." in name:
            raise HttpError(HTTPStatus.NOT_FOUND, "no such file")
        try:
            data = _static(name)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise HttpError(HTTPStatus.NOT_FOUND, "no such file") from None
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, data, kind + ("; charset=utf-8" if kind.startswith(
            ("text/", "application/javascript")) else ""),
            {"Cache-Control": "max-age=3600"})

    def _json(self, data: Any) -> None:
        body = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str).encode()
        self._send(HTTPStatus.OK, body, "application/json", {"Cache-Control": "no-store"})

    def _redirect(self, where: str) -> None:
        self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": where})

    def _error(self, status: HTTPStatus, message: str, as_json: bool) -> None:
        if as_json:
            body = json.dumps({"error": message, "status": int(status)}).encode()
            self._send(status, body, "application/json")
            return
        page = _static("error.html").decode().replace("{status}", str(int(status))).replace(
            "{reason}", html.escape(status.phrase)).replace("{message}", html.escape(message))
        self._send(status, page.encode(), "text/html; charset=utf-8")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _int_arg(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    values = query.get(name, [])
    if not values:
        return default
    if len(values) > 1 or not re.fullmatch(r"-?\d{1,19}", values[0]) \
            or not low <= int(values[0]) <= high:
        raise QueryError(f"{name}: a whole number from {low} to {high}")
    return int(values[0])


def _float_arg(query: dict[str, list[str]], name: str) -> float | None:
    values = query.get(name, [])
    if not values or values == [""]:
        return None
    try:
        value = float(values[0])
    except ValueError:
        raise QueryError(f"{name} {values[0][:40]!r} is not a number") from None
    if len(values) > 1 or not math.isfinite(value):
        raise QueryError(f"{name}: one finite number")
    return value


def _metrics_args(query: dict[str, list[str]]) -> dict[str, Any]:
    from mldock.ui.curves import DEFAULT_POINTS, MAX_POINTS

    keys = [k for v in query.get("keys", []) for k in v.split(",") if k]
    if not keys or len(keys) > 50:
        raise QueryError("keys: 1 to 50 metric names, comma-separated")
    return {"keys": keys, "low": _float_arg(query, "low"), "high": _float_arg(query, "high"),
            "max_points": _int_arg(query, "points", DEFAULT_POINTS, 4, MAX_POINTS)}


Action = Callable[..., None]
ROUTES: list[tuple[str, Action]] = [
    (r"/?", lambda h, q: h._redirect("/runs")),
    (r"/runs", lambda h, q: h._shell("runs")),
    (rf"/runs/({RUN_ID})", Handler._page_run),
    (r"/compare", Handler._page_compare),
    (r"/endpoints", lambda h, q: h._shell("endpoints")),
    (r"/static/(.+)", lambda h, q, name: h._static_file(name)),
    (r"/api/runs", lambda h, q: h._json(h.server.app.runs_page(parse_runs_query(q)))),
    (rf"/api/runs/({RUN_ID})", lambda h, q, run_id: h._json(h.server.app.details(run_id))),
    (rf"/api/runs/({RUN_ID})/metrics", Handler._api_metrics),
    (rf"/api/runs/({RUN_ID})/log", Handler._api_log),
    (r"/api/compare", lambda h, q: h._json(h.server.app.compare(h._ids(q)))),
    (r"/api/endpoints", lambda h, q: h._json({"environments": h.server.app.endpoints()})),
]
"""Path pattern (whole path) → what answers it, first match wins."""


class UiServer(ThreadingHTTPServer):
    """The threaded server with the app it serves."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: UiApp, *, verbose: bool = False):
        self.app = app
        self.verbose = verbose
        self.loopback_only = address[0] in ("127.0.0.1", "localhost", "::1")
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}"

    def serve_in_thread(self) -> threading.Thread:
        """Serve from a daemon thread (tests, benchmarks); stop with :meth:`shutdown`."""
        thread = threading.Thread(target=self.serve_forever, name="mldock-ui", daemon=True)
        thread.start()
        return thread
