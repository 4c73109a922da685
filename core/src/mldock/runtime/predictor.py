"""Loading the user's predictor in the background and calling it.

The server binds its port before the model loads (platform probes start at once), so this module
keeps a small state machine — loading, ready, failed — that health routes read without touching
the model. The predictor named by ``MLDOCK_PREDICTOR`` (or the manifest's ``predictor``) may be a
class (instantiated with no arguments), an object with ``predict``, or a plain function.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mldock.runtime import refs
from mldock.runtime.logs import log
from mldock.runtime.manifest import read_manifest
from mldock.runtime.modeldir import materialize
from mldock.runtime.names import ENV_PREDICTOR

LOADING, READY, FAILED = "loading", "ready", "failed"


class ModelState:
    """What health routes report and predict routes call. Attributes are swapped atomically."""

    def __init__(self) -> None:
        self.status = LOADING
        self.error: str | None = None
        self.model_dir: Path | None = None
        self.manifest: dict[str, Any] = {}
        self.predict: Callable[..., Any] | None = None
        self.takes_parameters = False
        self.load_seconds: float | None = None

    @property
    def ready(self) -> bool:
        return self.status == READY

    def call(self, payload: Any, parameters: Mapping[str, Any] | None = None) -> Any:
        """Run the predictor; ``parameters`` are passed only if ``predict`` accepts them."""
        predict = self.predict
        if predict is None:
            raise RuntimeError("call() before the model is ready")
        if parameters and self.takes_parameters:
            return predict(payload, parameters=parameters)
        return predict(payload)


def _accepts_parameters(func: Callable[..., Any]) -> bool:
    import inspect

    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return False
    return "parameters" in signature.parameters or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())


def load_into(state: ModelState, source: str, reference: str | None,
              env: Mapping[str, str], on_done: Callable[[ModelState], None] | None = None) -> None:
    """Materialize the model, import and load the predictor; record success or the error.

    ``on_done`` is called with the state once it is ready or failed (the server uses it to
    stop after a failed load instead of answering 500 forever)."""
    started = time.monotonic()
    try:
        model_dir = materialize(source, env)
        manifest = read_manifest(model_dir)
        reference = reference or manifest.get("predictor")
        obj = refs.resolve(reference, ENV_PREDICTOR)
        if isinstance(obj, type):
            obj = obj()
        if hasattr(obj, "load"):
            obj.load(model_dir)
        predict = getattr(obj, "predict", None)
        if predict is None:
            if not callable(obj):
                raise refs.BadReference(f"MLDOCK_PREDICTOR={reference!r} has no predict method")
            predict = obj
        state.model_dir, state.manifest = model_dir, manifest
        state.takes_parameters = _accepts_parameters(predict)
        state.predict = predict
        state.load_seconds = time.monotonic() - started
        state.status = READY
        log(f"model loaded from {model_dir} in {state.load_seconds:.2f}s")
    except BaseException as exc:  # noqa: BLE001 - reported on readiness routes
        state.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        state.status = FAILED
        log("model failed to load:\n" + "".join(traceback.format_exception(
            type(exc), exc, exc.__traceback__)).rstrip())
    if on_done is not None:
        on_done(state)


def start_loading(state: ModelState, source: str, reference: str | None,
                  env: Mapping[str, str],
                  on_done: Callable[[ModelState], None] | None = None) -> threading.Thread:
    thread = threading.Thread(target=load_into, args=(state, source, reference, env, on_done),
                              name="mldock-model-loader", daemon=True)
    thread.start()
    return thread
