"""The tuner's objective, reported the way each platform's tuner reads it, from ``ctx.log_metric``.

A trial's container gets the objective's name (``MLDOCK_TUNE_OBJECTIVE``, or Vertex's own
``CLOUD_ML_HP_METRIC_TAG``); when the user's code logs that metric, the runtime also hands it to
the platform, so ``train(ctx)`` and the project's requirements stay as they are:

* **SageMaker** reads every metric from the log by the regex of its ``MetricDefinitions``: the
  ``mldock-metric KEY=VALUE`` line ``log_metric`` prints already (:func:`metric_line_regex`
  gives a plugin that regex). Nothing more here.
* **Vertex AI** reads the file ``cloudml-hypertune`` writes: JSON lines
  ``{"<tag>": "<value>", "global_step": "<step>", "timestamp": <t>, "trial": "<id>"}`` at
  ``CLOUD_ML_HP_METRIC_FILE`` (default ``/tmp/hypertune/output.metrics``), the last 100 reports,
  rewritten whole on each report (here atomically, so the reader never sees half a file).
* **Azure ML** sweeps read the primary metric from the job's MLflow run: the value is posted to
  MLflow's REST API (``runs/log-metric``) at ``MLFLOW_TRACKING_URI`` (``azureml://`` becomes
  ``https://``) with ``MLFLOW_TRACKING_TOKEN`` for ``MLFLOW_RUN_ID``, by a background thread, so
  a slow service never slows the training loop; :meth:`MlflowReporter.close` waits for it.

Reporting never breaks training: a failure is one warning on stderr, the values keep going to
the metrics file and the log.
"""

from __future__ import annotations

import json
import os
import queue
import re
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from mldock.runtime.names import ENV_OBJECTIVE, METRIC_LINE_PREFIX
from mldock.runtime.platform import AZUREML, VERTEX

HYPERTUNE_FILE = "/tmp/hypertune/output.metrics"  # noqa: S108 - the path Vertex AI reads
HYPERTUNE_KEEP = 100


def metric_line_regex(key: str) -> str:
    """A regex whose group 1 is the value of metric ``key`` in the runtime's log line
    (``mldock-metric KEY=VALUE [step=N]``): SageMaker's ``MetricDefinitions`` ``Regex``."""
    number = r"([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
    return f"{METRIC_LINE_PREFIX} {re.escape(key)}={number}"


def _warn(text: str) -> None:
    sys.stderr.write(f"mldock-runtime: warning: {text}\n")
    sys.stderr.flush()


class HypertuneReporter:
    """Writes the objective where Vertex AI's tuning service reads it."""

    def __init__(self, tag: str, env: Mapping[str, str]) -> None:
        self.key = self.tag = tag
        self.path = env.get("CLOUD_ML_HP_METRIC_FILE") or HYPERTUNE_FILE
        self.trial = env.get("CLOUD_ML_TRIAL_ID") or "0"
        self.entries: deque[dict[str, Any]] = deque(maxlen=HYPERTUNE_KEEP)
        self.failed = False

    def report(self, value: float, step: int | None) -> None:
        self.entries.append({"timestamp": time.time(), "trial": str(self.trial),
                             self.tag: str(float(value)), "global_step": str(int(step or 0))})
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries)
        folder = os.path.dirname(self.path) or "."
        try:
            os.makedirs(folder, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=".output.", dir=folder)
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, self.path)
        except OSError as exc:
            if not self.failed:
                self.failed = True
                _warn(f"could not write the hypertune file {self.path}: {exc}")

    def close(self) -> None:
        """Nothing is pending: every report is on disk when :meth:`report` returns."""


def tracking_base(uri: str) -> str:
    """The HTTP base of an MLflow tracking URI (Azure ML's ``azureml://host/path`` is served
    over HTTPS at the same host and path)."""
    if uri.startswith("azureml://"):
        uri = "https://" + uri[len("azureml://"):]
    return uri.rstrip("/")


class MlflowReporter:
    """Posts the objective to the job's MLflow run over MLflow's REST API (standard library)."""

    def __init__(self, key: str, env: Mapping[str, str], *, timeout: float = 30.0) -> None:
        self.key = key
        self.url = tracking_base(env["MLFLOW_TRACKING_URI"]) + "/api/2.0/mlflow/runs/log-metric"
        self.run_id = env["MLFLOW_RUN_ID"]
        self.token = env.get("MLFLOW_TRACKING_TOKEN") or ""
        self.timeout = timeout
        self.sent = 0
        self.failed = False
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="mldock-mlflow-objective",
                                        daemon=True)
        self._thread.start()

    def report(self, value: float, step: int | None) -> None:
        self._queue.put({"run_id": self.run_id, "key": self.key, "value": float(value),
                         "timestamp": int(time.time() * 1000), "step": int(step or 0)})

    def close(self, timeout: float = 60.0) -> None:
        """Send what is queued, then stop (waits at most ``timeout`` seconds)."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            self._post(body)

    def _post(self, body: dict[str, Any]) -> None:
        import urllib.error  # only a trial on Azure ML pays for importing the HTTP client
        import urllib.request

        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url, data=json.dumps(body).encode(),  # noqa: S310
                                         headers=headers, method="POST")
        problem = "no answer after 3 tries"
        for attempt in range(3):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout):  # noqa: S310
                    self.sent += 1
                return
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
                if exc.code < 500 and exc.code != 429:
                    break
            except (OSError, ValueError) as exc:
                problem = str(exc)
            time.sleep(0.5 * (attempt + 1))
        self._failed(problem)

    def _failed(self, why: str) -> None:
        if not self.failed:  # never the token: only the status or the socket's complaint
            self.failed = True
            _warn(f"could not log {self.key} to the job's MLflow run ({why}); the tuner may not"
                  " see this trial's objective")


def objective_reporter(platform: str, env: Mapping[str, str] | None = None,
                       ) -> HypertuneReporter | MlflowReporter | None:
    """The reporter this platform's tuner needs, or ``None`` (not a tuning trial, or a
    platform whose tuner reads the log: SageMaker, local)."""
    env = os.environ if env is None else env
    key = (env.get(ENV_OBJECTIVE) or env.get("CLOUD_ML_HP_METRIC_TAG") or "").strip()
    if not key:
        return None
    if platform == VERTEX or env.get("CLOUD_ML_HP_METRIC_FILE"):
        return HypertuneReporter(key, env)
    if platform == AZUREML and env.get("MLFLOW_TRACKING_URI") and env.get("MLFLOW_RUN_ID"):
        return MlflowReporter(key, env)
    return None
