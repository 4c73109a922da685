"""Built-in deployer ``local``: training and serving containers on the local Docker engine.

Training runs the image exactly as SageMaker does: ``docker run IMAGE train`` with the ``/opt/ml``
tree of :mod:`mldock.local.opt_ml` mounted; metrics are tailed from the tree while it runs. With
``options["instance_count"]`` above 1 (``mldock train --instances N``) it runs N hosts as a
SageMaker job on N instances: :mod:`mldock.local.multihost`. Serving
runs ``IMAGE serve`` detached with the model mounted at ``/opt/ml/model``, published on 127.0.0.1,
and waits for ``/ping``. Endpoints are found again through container labels.

Replacing a live endpoint never loses it to a bad request. The port is checked first (1-65535,
or 0 for "any free port"; a port held by anything but the old endpoint is refused). Then:

* **another port**: the old container is renamed aside and keeps serving while the new one starts
  under the endpoint's name; the old one is removed only once the new one answers ``/ping``;
* **the same port** (the default on redeploy): a probe container is started first on a free
  temporary port; only once it answers is it removed and the old container *stopped* (not removed),
  so the new one can take the port. Should that final start still fail, the old container is
  started again on its port.

Either way a new endpoint that never becomes ready is removed, the old one is left serving, and
the error says why in one line.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from mldock.errors import MldockError, NotFoundError, UsageError
from mldock.interfaces import (
    Deployer,
    Deployment,
    DeployRequest,
    HealthCheck,
    Prediction,
    TrainingJob,
    TrainingResult,
)
from mldock.interfaces.common import ProgressSink, null_progress
from mldock.interfaces.deploy import MetricsSink
from mldock.local import opt_ml
from mldock.local.engine import docker_client, engine_health
from mldock.runtime.names import ENV_RUN_ID, MANIFEST_NAME, METRICS_FILE_NAME
from mldock.training.metrics_tail import MetricsTail

LABEL_ENDPOINT = "mldock.endpoint"
LABEL_RUN = "mldock.run_id"
LABEL_PROJECT = "mldock.project"
LABEL_PROBE = "mldock.probe"
KILLED_CODES = {137, 143}
DEFAULT_PORT = 8080


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # as the engine's proxy does: connections in TIME_WAIT must not count as "in use"
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def train_container_name(run_id: str) -> str:
    """The training container of a run: known before it starts, so the run can record it."""
    return f"mldock-train-{run_id}"


def _valid_port(port: Any) -> int | None:
    """``port`` as an int in 0-65535 (0: any free port) or None; checked before anything changes."""
    if port is None:
        return None
    try:
        value = int(port)
    except (TypeError, ValueError):
        value = -1
    if not 0 <= value <= 65535 or isinstance(port, bool):
        raise UsageError(f"invalid port {port!r}: use 1-65535 (or 0 for any free port)",
                         hint="e.g. --port 8080; the endpoint was left as it was")
    return value


def _suffix() -> str:
    return uuid.uuid4().hex[:8]


def _remove_quietly(container: Any) -> None:
    with contextlib.suppress(Exception):  # gone already: nothing to clean up
        container.remove(force=True)


def _local_folder(location: str) -> Path:
    """A local folder from a path or ``file://`` URI (the local target works on local files)."""
    if location.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        location = unquote(urlsplit(location).path)
    elif "://" in location:
        raise MldockError(f"the local deployer needs a local folder, got {location}",
                          hint="fetch the model first (mldock deploy does)", exit_code=2)
    return Path(location).resolve()


def _wait_port_free(port: int, seconds: float) -> bool:
    """Whether ``port`` is free, waiting up to ``seconds`` (the engine frees a removed
    container's port a moment after the removal returns)."""
    deadline = time.monotonic() + seconds
    while not _port_free(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _free_port(start: int) -> int:
    start = min(start, 65535 - 99)
    for port in range(start, start + 100):
        if _port_free(port):
            return port
    raise MldockError(f"no free port between {start} and {start + 99}", hint="pass --port")


class LocalDeployer(Deployer):
    """Training and serving containers on the local engine."""

    def __init__(self, project_dir: Path, config: Any = None):
        self.project_dir = Path(project_dir)
        self.config = config
        self._client = None

    @property
    def client(self) -> Any:  # a docker.DockerClient (the SDK ships no type information)
        if self._client is None:
            self._client = docker_client()
        return self._client

    def _require_image(self, image: str) -> None:
        from docker.errors import ImageNotFound

        try:
            self.client.images.get(image)
        except ImageNotFound:
            raise MldockError(f"image {image} is not on this machine",
                              hint="run 'mldock build' (or retrain with the current code)",
                              exit_code=4) from None

    # --- training -----------------------------------------------------------------------------
    def train(self, job: TrainingJob, *, progress: ProgressSink = null_progress,
              on_metrics: MetricsSink | None = None) -> TrainingResult:
        self._require_image(job.image)
        work_dir = job.options.get("work_dir") or job.output_uri
        count = int(job.options.get("instance_count") or 1)
        if count > 1:  # N containers on a private network, laid out as SageMaker's N hosts
            from mldock.local.multihost import train_hosts

            return train_hosts(self.client, job, count, root=_local_folder(work_dir),
                               base_name=train_container_name(job.run_id), progress=progress,
                               on_metrics=on_metrics)
        tree = opt_ml.layout(_local_folder(work_dir), job.hyperparameters, job.inputs)
        volumes = {str(tree.resolve()): {"bind": "/opt/ml", "mode": "rw"}}
        for name, folder in job.inputs.items():
            volumes[str(Path(folder).resolve())] = {"bind": f"/opt/ml/input/data/{name}",
                                                    "mode": "ro"}
        name = train_container_name(job.run_id)
        environment = {"TRAINING_JOB_NAME": name, ENV_RUN_ID: job.run_id,
                       "PYTHONUNBUFFERED": "1", **job.environment}
        container = self.client.containers.run(
            job.image, ["train"], detach=True, name=name, volumes=volumes, environment=environment,
            labels={LABEL_RUN: job.run_id, "mldock.role": "train"},
            extra_hosts=dict(job.options.get("extra_hosts") or {}) or None)
        status = "failed"
        try:
            streamer = threading.Thread(target=self._stream_logs, args=(container, progress),
                                        daemon=True)
            streamer.start()
            sink = on_metrics or (lambda metrics: None)
            with MetricsTail(tree / "output" / "data" / METRICS_FILE_NAME, sink):
                try:
                    code = container.wait()["StatusCode"]
                except KeyboardInterrupt:
                    progress("stopping the training container (SIGTERM, checkpoint hook runs)...")
                    container.stop(timeout=30)
                    code = container.wait()["StatusCode"]
                    streamer.join(timeout=5)
                    status = "killed"
                    raise
                finally:
                    streamer.join(timeout=10)
            status = "finished" if code == 0 else ("killed" if code in KILLED_CODES else "failed")
        finally:
            _remove_quietly(container)  # cleanup must not hide the real outcome
        failure = None
        if status == "failed":
            failure = opt_ml.failure_text(tree) or f"training container exited with code {code}"
        return TrainingResult(run_id=job.run_id, status=status, job_id=name,
                              model_uri=str(tree / "model"), failure_reason=failure)

    @staticmethod
    def _stream_logs(container: Any, progress: ProgressSink) -> None:
        buffer = b""
        for chunk in container.logs(stream=True, follow=True):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                progress(line.decode("utf-8", "replace"))
        if buffer:
            progress(buffer.decode("utf-8", "replace"))

    # --- serving ------------------------------------------------------------------------------
    def _containers(self, name: str | None = None) -> list[Any]:
        label = f"{LABEL_ENDPOINT}={name}" if name else LABEL_ENDPOINT
        return self.client.containers.list(all=True, filters={"label": label})

    def deploy(self, request: DeployRequest, *,
               progress: ProgressSink = null_progress) -> Deployment:
        port = _valid_port(request.options.get("port"))
        self._require_image(request.image)
        model_dir = _local_folder(request.options.get("model_dir") or request.model_uri)
        if not (model_dir / MANIFEST_NAME).is_file():
            raise MldockError(f"{model_dir} holds no trained model (no mldock-model.json)",
                              hint="train first: mldock train", exit_code=4)
        previous = self._containers(request.name)
        old = previous[0] if previous else None
        for extra in previous[1:]:  # leftovers of an interrupted replacement
            extra.remove(force=True)
        old_port = self._published_port(old) if old is not None else None
        if port is None:
            port = old_port or _free_port(DEFAULT_PORT)
        elif port == 0:
            port = _free_port(DEFAULT_PORT)
        if port != old_port and not _port_free(port):
            raise MldockError(f"port {port} on 127.0.0.1 is already in use",
                              hint="free it or choose another with --port")
        timeout = float(request.options.get("startup_timeout", 120))
        if old is not None and port == old_port:
            progress(f"trying the new model on a temporary port before replacing {request.name}")
            probe = self._serve(request, model_dir, _free_port(port + 1),
                                f"mldock-{request.name}-probe-{_suffix()}", endpoint=False)
            try:
                self._wait_ready(probe, self._url(probe), timeout, request.name, old)
            finally:
                _remove_quietly(probe)
        return self._replace(request, model_dir, port, old, timeout, progress)

    def _replace(self, request: DeployRequest, model_dir: Path, port: int, old: Any,
                 timeout: float, progress: ProgressSink) -> Deployment:
        """Start the endpoint's container on ``port``; remove ``old`` only once it answers."""
        name = f"mldock-{request.name}"
        if old is not None:
            progress(f"replacing endpoint {request.name} (run {old.labels.get(LABEL_RUN)})")
            old.rename(f"{name}-old-{_suffix()}")
            if self._published_port(old) == port:
                old.stop(timeout=10)
                if not _wait_port_free(port, 10.0):
                    self._restore(old, name)
                    raise MldockError(f"port {port} was not freed by the old endpoint",
                                      hint="try again, or choose another with --port")
        try:
            container = self._serve(request, model_dir, port, name, endpoint=True)
            url = self._url(container)
            progress(f"waiting for {url}/ping ...")
            self._wait_ready(container, url, timeout, request.name, old)
        except BaseException:
            if old is not None:
                self._restore(old, name)
            raise
        if old is not None:
            _remove_quietly(old)
        return Deployment(name=request.name, url=url, status="ready", run_id=request.run_id,
                          image=request.image, details={"container": container.name})

    @staticmethod
    def _restore(old: Any, name: str) -> None:
        """Put the old endpoint back as it was: its name, and serving if it was stopped."""
        old.rename(name)
        old.reload()
        if old.status != "running":
            old.start()

    def _serve(self, request: DeployRequest, model_dir: Path, port: int, name: str, *,
               endpoint: bool) -> Any:
        """``IMAGE serve`` detached on 127.0.0.1:``port``; a probe carries no endpoint label,
        so it is never listed or used as the endpoint."""
        from docker.errors import APIError

        labels = {LABEL_RUN: request.run_id, LABEL_PROJECT: str(request.options.get("project", ""))}
        labels[LABEL_ENDPOINT if endpoint else LABEL_PROBE] = request.name
        try:
            return self.client.containers.run(
                request.image, ["serve"], detach=True, name=name,
                ports={"8080/tcp": ("127.0.0.1", port)},
                volumes={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}},
                environment={ENV_RUN_ID: request.run_id, **request.environment},
                labels=labels)
        except APIError as exc:
            with contextlib.suppress(Exception):
                self.client.containers.get(name).remove(force=True)
            reason = (exc.explanation or str(exc)).strip().splitlines()[-1][:200]
            raise MldockError(f"cannot start the serving container on port {port}: {reason}",
                              hint="choose another port with --port") from None

    def _url(self, container: Any) -> str:
        container.reload()
        return f"http://127.0.0.1:{self._published_port(container)}"

    def _wait_ready(self, container: Any, url: str, timeout: float, endpoint: str = "",
                    old: Any = None) -> None:
        """Wait for ``/ping``; on failure remove ``container``, say whether ``old`` still serves."""
        keeps = (f" (endpoint {endpoint} still serves run {old.labels.get(LABEL_RUN)})"
                 if old is not None else "")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                # S310 is fine here: url is the http://127.0.0.1:<port> this deployer published
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs(tail=20).decode("utf-8", "replace").strip()
                last = logs.splitlines()[-1] if logs else "no output"
                container.remove(force=True)
                raise MldockError(f"the new serving container exited before it was ready:"
                                  f" {last}{keeps}",
                                  hint="see the model's load() and the container log above")
            time.sleep(0.25)
        logs = container.logs(tail=5).decode("utf-8", "replace").strip()
        container.remove(force=True)
        raise MldockError(f"the new endpoint at {url} was not ready after {timeout:.0f} s{keeps}",
                          hint=f"its last log line: {logs.splitlines()[-1] if logs else 'none'}")

    @staticmethod
    def _published_port(container: Any) -> int | None:
        ports = (container.attrs.get("HostConfig", {}).get("PortBindings") or {}).get("8080/tcp")
        if ports:
            return int(ports[0]["HostPort"])
        return None

    def _as_deployment(self, container: Any) -> Deployment:
        port = self._published_port(container)
        status = "ready" if container.status == "running" else container.status
        return Deployment(name=container.labels[LABEL_ENDPOINT],
                          url=f"http://127.0.0.1:{port}" if port else "",
                          status=status, run_id=container.labels.get(LABEL_RUN),
                          image=(container.image.tags or [container.image.id])[0],
                          details={"container": container.name})

    def undeploy(self, name: str) -> None:
        found = self._containers(name)
        if not found:
            raise NotFoundError(f"no local endpoint named {name!r}",
                                hint="see 'mldock deploy --list'")
        for container in found:
            container.remove(force=True)

    def get(self, name: str) -> Deployment:
        found = self._containers(name)
        if not found:
            raise NotFoundError(f"no local endpoint named {name!r}",
                                hint="deploy one with 'mldock deploy'")
        return self._as_deployment(found[0])

    def list(self) -> list[Deployment]:
        return sorted((self._as_deployment(c) for c in self._containers()), key=lambda d: d.name)

    streams_requests = True  # predict() takes an open binary file and streams it

    def max_payload_bytes(self, name: str) -> int | None:
        """The request size the endpoint accepts, as it advertises on ``/execution-parameters``
        (None when it cannot be asked: the caller falls back to the runtime's default)."""
        try:
            url = self.get(name).url
            # S310 is fine here: url is the http://127.0.0.1:<port> this deployer published
            with urllib.request.urlopen(f"{url}/execution-parameters",  # noqa: S310
                                        timeout=5) as answer:
                mb = float(json.loads(answer.read(65536))["MaxPayloadInMB"])
        except (MldockError, OSError, ValueError, KeyError, TypeError):
            return None
        return int(mb * 2**20) if mb > 0 else None

    def predict(self, name: str, body: bytes | BinaryIO, *,
                content_type: str = "application/json",
                accept: str = "application/json") -> Prediction:
        """Send one request; a binary file ``body`` is streamed from disk, never held whole."""
        deployment = self.get(name)
        if deployment.status != "ready":
            raise MldockError(f"endpoint {name!r} is {deployment.status}",
                              hint="redeploy with 'mldock deploy'")
        headers = {"Content-Type": content_type, "Accept": accept}
        if not isinstance(body, bytes | bytearray):
            headers["Content-Length"] = str(os.fstat(body.fileno()).st_size - body.tell())
        # S310 is fine below: the URL is the http://127.0.0.1:<port> this deployer published
        request = urllib.request.Request(f"{deployment.url}/invocations",  # noqa: S310
                                         data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:  # noqa: S310
                return Prediction(answer.read(), answer.headers.get("Content-Type", ""),
                                  answer.status)
        except urllib.error.HTTPError as exc:
            return Prediction(exc.read(), exc.headers.get("Content-Type", ""), exc.code)
        except (urllib.error.URLError, OSError) as exc:
            raise MldockError(f"endpoint {name!r} at {deployment.url} did not answer: {exc}",
                              hint="check 'mldock deploy --list'", exit_code=3) from None

    def check(self) -> builtins.list[HealthCheck]:  # ``list`` is a method here
        return [engine_health()]
