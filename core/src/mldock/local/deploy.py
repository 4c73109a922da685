"""Built-in deployer ``local``: training and serving containers on the local Docker engine.

Training runs the image exactly as SageMaker does: ``docker run IMAGE train`` with the ``/opt/ml``
tree of :mod:`mldock.local.opt_ml` mounted; metrics are tailed from the tree while it runs. Serving
runs ``IMAGE serve`` detached with the model mounted at ``/opt/ml/model``, published on 127.0.0.1,
and waits for ``/ping``. Endpoints are found again through container labels.
"""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from mldock.errors import MldockError, NotFoundError
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
from mldock.training.metrics_tail import MetricsTail

LABEL_ENDPOINT = "mldock.endpoint"
LABEL_RUN = "mldock.run_id"
LABEL_PROJECT = "mldock.project"
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
    def client(self):
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
        tree = opt_ml.layout(_local_folder(work_dir), job.hyperparameters, job.inputs)
        volumes = {str(tree.resolve()): {"bind": "/opt/ml", "mode": "rw"}}
        for name, folder in job.inputs.items():
            volumes[str(Path(folder).resolve())] = {"bind": f"/opt/ml/input/data/{name}",
                                                    "mode": "ro"}
        name = f"mldock-train-{job.run_id}"
        environment = {"TRAINING_JOB_NAME": name, "MLDOCK_RUN_ID": job.run_id,
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
            with MetricsTail(tree / "output" / "data" / "mldock-metrics.jsonl", sink):
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
            try:
                container.remove(force=True)
            except Exception:  # noqa: BLE001 - cleanup must not hide the real outcome
                pass
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

    def deploy(self, request: DeployRequest, *, progress: ProgressSink = null_progress) -> Deployment:
        self._require_image(request.image)
        model_dir = _local_folder(request.options.get("model_dir") or request.model_uri)
        if not (model_dir / "mldock-model.json").is_file():
            raise MldockError(f"{model_dir} holds no trained model (no mldock-model.json)",
                              hint="train first: mldock train", exit_code=4)
        previous = self._containers(request.name)
        port = request.options.get("port")
        if port is None and previous:
            port = self._published_port(previous[0])
        for old in previous:
            progress(f"replacing endpoint {request.name} (run {old.labels.get(LABEL_RUN)})")
            old.remove(force=True)
        if port is None:
            port = _free_port(DEFAULT_PORT)
        elif not _wait_port_free(int(port), 10.0 if previous else 0.0):
            raise MldockError(f"port {port} on 127.0.0.1 is already in use",
                              hint="free it or choose another with --port")
        port = int(port)
        container = self.client.containers.run(
            request.image, ["serve"], detach=True, name=f"mldock-{request.name}",
            ports={"8080/tcp": ("127.0.0.1", port)},
            volumes={str(model_dir): {"bind": "/opt/ml/model", "mode": "ro"}},
            environment={"MLDOCK_RUN_ID": request.run_id, **request.environment},
            labels={LABEL_ENDPOINT: request.name, LABEL_RUN: request.run_id,
                    LABEL_PROJECT: str(request.options.get("project", ""))})
        url = f"http://127.0.0.1:{port}"
        progress(f"waiting for {url}/ping ...")
        self._wait_ready(container, url, float(request.options.get("startup_timeout", 120)))
        return Deployment(name=request.name, url=url, status="ready", run_id=request.run_id,
                          image=request.image, details={"container": container.name})

    def _wait_ready(self, container: Any, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            container.reload()
            if container.status in ("exited", "dead"):
                logs = container.logs(tail=20).decode("utf-8", "replace").strip()
                last = logs.splitlines()[-1] if logs else "no output"
                container.remove(force=True)
                raise MldockError(f"the serving container exited before it was ready: {last}",
                                  hint="see the model's load() and the container log above")
            time.sleep(0.25)
        raise MldockError(f"the endpoint at {url} was not ready after {timeout:.0f} s",
                          hint=f"check 'docker logs {container.name}'")

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

    def predict(self, name: str, body: bytes, *, content_type: str = "application/json",
                accept: str = "application/json") -> Prediction:
        deployment = self.get(name)
        if deployment.status != "ready":
            raise MldockError(f"endpoint {name!r} is {deployment.status}",
                              hint="redeploy with 'mldock deploy'")
        request = urllib.request.Request(f"{deployment.url}/invocations", data=body, method="POST",
                                         headers={"Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return Prediction(answer.read(), answer.headers.get("Content-Type", ""),
                                  answer.status)
        except urllib.error.HTTPError as exc:
            return Prediction(exc.read(), exc.headers.get("Content-Type", ""), exc.code)
        except (urllib.error.URLError, OSError) as exc:
            raise MldockError(f"endpoint {name!r} at {deployment.url} did not answer: {exc}",
                              hint="check 'mldock deploy --list'", exit_code=3) from None

    def check(self) -> list[HealthCheck]:
        return [engine_health()]
