"""The fake itself: one object holding the state, and the threaded HTTP server answering for it.

Tests read resources back through :class:`VertexFake` (``fake.custom_job(id)``, ``fake.model``,
``fake.endpoint``, ``fake.batch_job``, ``fake.list(collection)``), inject faults
(``fake.fail_next``) and see every request the fake received (``fake.journal``). A handler bug
answers 500 and is kept in ``fake.internal_errors``; the fixture fails the test that caused it.
"""

from __future__ import annotations

import http.server
import json
import threading
import traceback
import uuid
from collections.abc import Iterable
from typing import Any

from vertex_fake import faults, operations, tokens
from vertex_fake.errors import ApiError, invalid, not_found, permission_denied
from vertex_fake.routing import Handler, Request, Response, Router

PROJECT = "mldock-fake-project"
PROJECT_NUMBER = "123456789012"
LOCATIONS = frozenset({
    "us-central1", "us-east1", "us-east4", "us-west1", "us-west4", "northamerica-northeast1",
    "europe-west1", "europe-west2", "europe-west3", "europe-west4", "europe-west9",
    "asia-east1", "asia-northeast1", "asia-southeast1", "australia-southeast1",
})
SESSION_LABEL = "mldock.test.vertex-fake"  # every container the fake starts carries it


class VertexFake:
    """State and behaviour of the fake; :meth:`start` serves it on 127.0.0.1.

    Attributes:
        project, project_number: the one project that exists (names use the number, as Vertex
            AI's answers do; requests may use either).
        access_token: the token ``/token`` issues (a registry's ``oauth2accesstoken`` password).
        session_id: the value of the ``mldock.test.vertex-fake`` label on its containers.
        storage_emulator: ``http://127.0.0.1:PORT`` of the GCS emulator (batch jobs read and
            write there; containers get it as ``STORAGE_EMULATOR_HOST``).
        require_auth: refuse requests without a bearer token (default: anonymous allowed).
    """

    def __init__(self, storage_emulator: str | None = None) -> None:
        self.project = PROJECT
        self.project_number = PROJECT_NUMBER
        self.locations = set(LOCATIONS)
        self.access_token = tokens.new_access_token()
        self.session_id = uuid.uuid4().hex[:12]
        self.storage_emulator = storage_emulator
        self.require_auth = False
        self.deploy_timeout_s = 300.0  # a serving container must answer its health route by then
        self.disabled_services: set[str] = set()  # Service Usage answers these DISABLED
        self.operation_delay_s = 0.3  # operations are not done at once: clients must poll
        self.trusted_keys: dict[str, tokens.TrustedKey] = {}
        self.token_grants: list[dict[str, Any]] = []
        self.operations = operations.OperationStore()
        self.faults = faults.Faults()
        self.journal: list[tuple[str, str, bytes]] = []
        self.internal_errors: list[str] = []
        self.lock = threading.RLock()
        self.resources: dict[str, dict[str, Any]] = {}
        self.extra: dict[str, Any] = {}  # route modules keep their helpers here (runner, logs)
        self.router = Router()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- serving ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fake is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_endpoint(self) -> str:
        """What ``client_options={"api_endpoint": …}`` and ``[deploy.vertex] api_endpoint``
        take."""
        return self.url

    def start(self) -> VertexFake:
        from vertex_fake.server import ROUTE_MODULES

        for module in ROUTE_MODULES:
            self.router.add(module.ROUTES)
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="vertex-fake",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, then stop and remove every container the fake started."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for stopper in list(self.extra.get("on_stop", [])):
            stopper()

    def add_routes(self, routes: Iterable[tuple[str, str, Handler]]) -> None:
        """More routes, tried before the built-in ones (a test's own endpoint)."""
        extra = Router()
        extra.add(routes)
        self.router.routes[:0] = extra.routes

    # --- faults -------------------------------------------------------------------------------

    def fail_next(self, pattern: str, http_status: int, google_status: str, message: str,
                  details: list[dict[str, Any]] | None = None, times: int = 1) -> None:
        """Answer the next request whose ``"<VERB> <path>"`` matches ``pattern`` (a regex) with
        this error, ``times`` times. Details: ``errors.error_info(reason, domain, **metadata)``."""
        self.faults.add(pattern, http_status, google_status, message, details, times)

    # --- names and state ----------------------------------------------------------------------

    def parent(self, params: dict[str, str], permission: str) -> str:
        """``projects/<number>/locations/<location>`` for a request's path, or the refusal the
        service gives (403 for a project the caller cannot see, 400 for a bad location)."""
        project, location = params["project"], params["location"]
        if project not in (self.project, self.project_number):
            raise permission_denied(permission, f"//aiplatform.googleapis.com/projects/{project}"
                                    f"/locations/{location}")
        if location not in self.locations:
            raise invalid(f"Location {location} is not supported for Vertex AI in project"
                          f" {project}; supported: {', '.join(sorted(self.locations))}.")
        return f"projects/{self.project_number}/locations/{location}"

    def canonical(self, name: str) -> str:
        """``name`` with the project's number instead of its id."""
        prefix = f"projects/{self.project}/"
        return (f"projects/{self.project_number}/" + name[len(prefix):]
                if name.startswith(prefix) else name)

    def put(self, collection: str, name: str, resource: Any) -> None:
        with self.lock:
            self.resources.setdefault(collection, {})[name] = resource

    def remove(self, collection: str, name: str) -> None:
        with self.lock:
            self.resources.get(collection, {}).pop(name, None)

    def find(self, collection: str, name_or_id: str) -> Any:
        """A resource by full name (project id or number) or by its last segment (404 if
        none)."""
        name = self.canonical(name_or_id)
        with self.lock:
            items = self.resources.get(collection, {})
            if name in items:
                return items[name]
            for key, value in items.items():
                if key.rsplit("/", 1)[-1] == name_or_id:
                    return value
        raise not_found(name)

    def list(self, collection: str, parent: str | None = None) -> list[Any]:
        """Every resource of a collection (``customJobs``, ``models``, ``endpoints``,
        ``batchPredictionJobs``, ``repositories``), oldest first, optionally under ``parent``."""
        with self.lock:
            items = list(self.resources.get(collection, {}).items())
        prefix = self.canonical(parent) + "/" if parent else ""
        return [value for key, value in items if key.startswith(prefix)]

    def custom_job(self, name_or_id: str) -> Any:
        """The ``aiplatform_v1.CustomJob`` as the fake holds it now."""
        return self.find("customJobs", name_or_id)

    def model(self, name_or_id: str) -> Any:
        return self.find("models", name_or_id)

    def endpoint(self, name_or_id: str) -> Any:
        return self.find("endpoints", name_or_id)

    def batch_job(self, name_or_id: str) -> Any:
        return self.find("batchPredictionJobs", name_or_id)

    def log_entries(self) -> list[dict[str, Any]]:
        """Cloud Logging entries of the job containers so far (what ``entries:list`` reads)."""
        from vertex_fake.logs import log_store

        return log_store(self).entries()

    def requests_to(self, pattern: str) -> list[tuple[str, str, bytes]]:
        """Journal entries ``(verb, path, body)`` whose ``"<VERB> <path>"`` matches."""
        import re

        compiled = re.compile(pattern)
        return [entry for entry in list(self.journal)
                if compiled.search(f"{entry[0]} {entry[1]}")]

    # --- one request --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one request: fault, authentication, route, handler; errors in Google's
        shape."""
        self.journal.append((request.method, request.path, request.body))
        try:
            fault = self.faults.take(request.method, request.path)
            if fault is not None:
                raise fault
            if request.path != "/token":
                tokens.check_bearer(self, request.headers)
            handler = self.router.match(request)
            answer = handler(self, request)
            with self.lock:  # workers change resources in place: serialise a consistent one
                return _as_response(answer, request)
        except ApiError as error:
            return Response(error.http_status, json.dumps(error.body()).encode())
        except Exception:  # noqa: BLE001 - a bug of the fake: a 500 and a failed test
            text = traceback.format_exc()
            self.internal_errors.append(f"{request.method} {request.path}\n{text}")
            error = ApiError("INTERNAL", "vertex fake: internal error (see"
                             " fake.internal_errors)")
            return Response(500, json.dumps(error.body()).encode())


def _as_response(answer: Any, request: Request) -> Response:
    from vertex_fake import wire

    if isinstance(answer, Response):
        return answer
    if isinstance(answer, operations.Operation):
        return Response.json(answer.wire(request.int_enums))
    if isinstance(answer, dict):
        return Response.json(answer)
    return Response.json(wire.to_wire(answer, request.int_enums))


def _handler_for(fake: VertexFake) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path, _, query = self.path.partition("?")
            request = Request(self.command, path, query,
                              {k.lower(): v for k, v in self.headers.items()}, body)
            response = fake.handle(request)
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for key, value in response.headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(response.body)

        do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the journal keeps every request."""

    return Handler
