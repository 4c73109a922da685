"""Every platform's routes on one server (CONTAINER-CONTRACT.md, "Serving: one server").

SageMaker (``/ping``, ``/invocations``, ``/execution-parameters``), Vertex AI (``/health``,
``/predict`` and the ``AIP_*_ROUTE`` paths), Azure ML (``/score``), Open Inference Protocol v2
(``/v2/...``) and ``/metrics``. Health handlers read the load state only, never the model.
Every error body is ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mldock.runtime import payload as pl
from mldock.runtime import tensors
from mldock.runtime.httpproto import HttpError, Request, Response, error_body
from mldock.runtime.logs import log
from mldock.runtime.metrics import CONTENT_TYPE as METRICS_TYPE
from mldock.runtime.metrics import Metrics
from mldock.runtime.predictor import FAILED, ModelState

JSON_TYPE = "application/json"
_OK = b'{"status":"ok"}'
_ALIVE = b'{"status":"alive"}'

Handler = Callable[[Request, str], Response]


@dataclass(frozen=True)
class AppConfig:
    """What the routes need to know; built from the environment by :mod:`mldock.runtime.server`."""

    workers: int = 1
    max_payload_mb: float = 6.0
    health_route: str | None = None  # AIP_HEALTH_ROUTE
    predict_route: str | None = None  # AIP_PREDICT_ROUTE
    model_name: str = "model"
    predict_threads: int = 1  # MLDOCK_PREDICT_THREADS: predictions run at once per worker


def _json(status: int, data: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return status, json.dumps(data).encode("utf-8"), JSON_TYPE, headers


def _normalize(path: str) -> str:
    if path.startswith(("http://", "https://")):  # absolute-form request target
        path = "/" + path.split("/", 3)[-1] if path.count("/") >= 3 else "/"
    if "%" in path:
        from urllib.parse import unquote

        path = unquote(path)
    return path.rstrip("/") if len(path) > 1 else path


class App:
    """Maps a :class:`Request` to a :data:`Response`, recording metrics for each."""

    def __init__(self, config: AppConfig, state: ModelState, metrics: Metrics) -> None:
        self.config = config
        self.state = state
        self.metrics = metrics
        get, post = "GET", "POST"
        self.routes: dict[str, dict[str, Handler]] = {
            "/ping": {get: self.readiness},
            "/health": {get: self.readiness},
            "/v2/health/ready": {get: self.readiness},
            "/v2/health/live": {get: self.liveness},
            "/invocations": {post: self.invocations},
            "/score": {post: self.invocations},
            "/predict": {post: self.vertex_predict},
            "/execution-parameters": {get: self.execution_parameters},
            "/metrics": {get: self.render_metrics},
            "/v2": {get: self.v2_server_metadata},
        }
        if config.health_route:
            self.routes[_normalize(config.health_route)] = {get: self.readiness}
        if config.predict_route:
            self.routes[_normalize(config.predict_route)] = {post: self.vertex_predict}
        self._blocking = {self.invocations, self.vertex_predict, self.v2_infer}
        self._metrics_lock = threading.Lock()

    # --- dispatch ----------------------------------------------------------------------------

    def _match(self, path: str) -> tuple[str, dict[str, Handler] | None, str]:
        """(route label for metrics, handlers by method, model name for v2 routes)."""
        handlers = self.routes.get(path)
        if handlers is not None:
            return path, handlers, ""
        if path.startswith("/v2/models/"):
            parts = path[len("/v2/models/"):].split("/")
            name, rest = parts[0], parts[1:]
            if len(rest) >= 2 and rest[0] == "versions":
                rest = rest[2:]
            if not rest:
                return "/v2/models/{model}", {"GET": self.v2_model_metadata}, name
            if rest == ["ready"]:
                return "/v2/models/{model}/ready", {"GET": self.v2_model_ready}, name
            if rest == ["infer"]:
                return "/v2/models/{model}/infer", {"POST": self.v2_infer}, name
        return "unknown", None, ""

    def blocking(self, request: Request) -> bool:
        """Does ``request`` run the predictor (so it belongs on a thread, off the event loop)?"""
        handlers = self._match(_normalize(request.path))[1]
        return handlers is not None and handlers.get(request.method) in self._blocking

    def __call__(self, request: Request) -> Response:
        started = time.perf_counter()
        route, handlers, name = self._match(_normalize(request.path))
        method = request.method
        try:
            if handlers is None:
                raise HttpError(404, f"no route {request.path!r}")
            handler = handlers.get("GET" if method == "HEAD" else method)
            if handler is None:
                allowed = ", ".join(sorted({*handlers, *(["HEAD"] if "GET" in handlers else [])}))
                raise HttpError(405, f"{method} is not allowed on {request.path}; use {allowed}",
                                [("Allow", allowed)])
            response = handler(request, name)
        except HttpError as exc:
            response = (exc.status, error_body(exc.message), JSON_TYPE, exc.headers)
        except pl.PayloadError as exc:
            response = (exc.status, error_body(exc.message), JSON_TYPE, None)
        with self._metrics_lock:  # predictions observe from pool threads
            self.metrics.observe(route, method, response[0], time.perf_counter() - started)
        return response

    # --- model state ---------------------------------------------------------------------------

    def _require_ready(self) -> None:
        state = self.state
        if state.ready:
            return
        if state.status == FAILED:
            raise HttpError(500, f"model failed to load: {state.error}")
        raise HttpError(503, "model is loading", [("Retry-After", "1")])

    def _predict(self, payload: Any, parameters: dict[str, Any] | None = None) -> Any:
        """Call the predictor; its input errors are 400s, anything else a logged 500."""
        try:
            return self.state.call(payload, parameters)
        except (ValueError, TypeError, KeyError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise HttpError(400, str(message) or type(exc).__name__) from None
        except Exception as exc:  # noqa: BLE001 - reported as 500, traceback in the log
            traceback.print_exc(file=sys.stderr)
            raise HttpError(500, f"prediction failed ({type(exc).__name__}); see the server"
                                 " log") from None

    @staticmethod
    def _encode(result: Any, kind: str) -> bytes:
        try:
            return pl.encode(result, kind)
        except pl.PayloadError:
            raise
        except RecursionError:
            log("cannot encode a prediction: it is nested too deeply")
            raise HttpError(400, "the prediction is nested too deeply to encode (is the request"
                                 " payload nested thousands of levels deep?)") from None
        except (TypeError, ValueError) as exc:
            traceback.print_exc(file=sys.stderr)
            raise HttpError(500, f"cannot encode the prediction as {kind}: {exc}") from None

    # --- handlers ----------------------------------------------------------------------------

    def liveness(self, request: Request, name: str) -> Response:
        return 200, _ALIVE, JSON_TYPE, None

    def readiness(self, request: Request, name: str) -> Response:
        self._require_ready()
        return 200, _OK, JSON_TYPE, None

    def invocations(self, request: Request, name: str) -> Response:
        """SageMaker / Azure / local: negotiated formats; ``{"instances"}`` answers are wrapped."""
        self._require_ready()
        headers = request.headers
        kind = pl.choose_accept(headers.get("accept"))
        data, envelope, parameters = pl.decode(request.body, headers.get("content-type"))
        result = self._predict(data, parameters)
        if envelope == "instances" and kind == pl.JSON:
            result = {"predictions": result}
        return 200, self._encode(result, kind), kind, None

    def vertex_predict(self, request: Request, name: str) -> Response:
        """Vertex AI: ``{"instances": [...], "parameters": {...}}`` in, ``{"predictions": [...]}``
        out. Vertex's ``:rawPredict`` forwards any body to this route: a CSV or npy one is
        answered as ``/invocations`` answers it."""
        self._require_ready()
        kind = pl.media_type(request.headers.get("content-type"))
        if not pl.is_json_type(kind):
            return self.invocations(request, name)
        body = pl.decode_json(request.body)
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
            raise HttpError(400, 'the body must be {"instances": [...], "parameters": {...}}')
        parameters = body.get("parameters")
        result = self._predict(body["instances"],
                               parameters if isinstance(parameters, dict) else None)
        return 200, self._encode({"predictions": result}, pl.JSON), JSON_TYPE, None

    def execution_parameters(self, request: Request, name: str) -> Response:
        mb = self.config.max_payload_mb
        return _json(200, {"MaxConcurrentTransforms": self.config.workers,
                           "BatchStrategy": "MULTI_RECORD",
                           "MaxPayloadInMB": int(mb) if float(mb).is_integer() else mb})

    def render_metrics(self, request: Request, name: str) -> Response:
        with self._metrics_lock:
            body = self.metrics.render(model_loaded=self.state.ready,
                                       load_seconds=self.state.load_seconds)
        return 200, body, METRICS_TYPE, None

    # --- Open Inference Protocol v2 ------------------------------------------------------------

    def v2_server_metadata(self, request: Request, name: str) -> Response:
        from mldock import __version__

        return _json(200, {"name": "mldock", "version": __version__, "extensions": []})

    def v2_model_metadata(self, request: Request, name: str) -> Response:
        manifest = self.state.manifest
        data: dict[str, Any] = {"name": name or self.config.model_name, "platform": "mldock",
                                "inputs": [], "outputs": []}
        if manifest.get("run_id"):
            data["versions"] = [str(manifest["run_id"])]
        return _json(200, data)

    def v2_model_ready(self, request: Request, name: str) -> Response:
        self._require_ready()
        return _json(200, {"name": name, "ready": True})

    def v2_infer(self, request: Request, name: str) -> Response:
        self._require_ready()
        kind = pl.media_type(request.headers.get("content-type"))
        if not pl.is_json_type(kind):
            raise HttpError(415, f"unsupported Content-Type {kind!r}: v2 infer takes"
                                 " application/json")
        body = pl.decode_json(request.body)
        data, parameters, wanted = tensors.decode_request(body)
        result = self._predict(data, parameters or None)
        try:
            response = tensors.encode_response(result, name, body.get("id"), wanted)
        except RecursionError:
            raise HttpError(400, "the prediction is nested too deeply to encode as a tensor")\
                from None
        except TypeError as exc:
            raise HttpError(500, f"cannot encode the prediction as a tensor: {exc}") from None
        return 200, self._encode(response, pl.JSON), JSON_TYPE, None
