"""An online deployment's container, started as Azure ML starts a custom-container deployment.

The environment's ``inferenceConfig`` names the liveness, readiness and scoring routes and the
port. The model version's folder is downloaded from Azurite into a host folder mounted at
``/var/azureml-app/azureml-models/<model>/<version>`` (``AZUREML_MODEL_DIR``), with the model
folder itself one level below, where Azure ML puts it. The container runs on a bridge network
with its port published on a free loopback port (many deployments may use port 8080 at once);
it needs nothing from Azurite, the fake fetched the model. Provisioning moves Creating →
Succeeded when the readiness route answers 200, or Failed when the container exits or never
gets ready (with the end of its log as the error).
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import references

MODELS_ROOT = "/var/azureml-app/azureml-models"
READY_TIMEOUT = 600.0
LOG_TAIL = 15


@dataclass
class Serving:
    """A deployment's running container and where it answers."""

    deployment_id: str
    port: int = 0
    routes: dict[str, str] = field(default_factory=dict)
    container: Any = None
    stopped: threading.Event = field(default_factory=threading.Event)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def routes_of(environment: dict[str, Any]) -> tuple[int, dict[str, str]]:
    """``(container port, {"liveness"|"readiness"|"scoring": path})`` of an environment."""
    config = environment["properties"].get("inferenceConfig") or {}
    routes, port = {}, 0
    for key in ("liveness", "readiness", "scoring"):
        route = config.get(f"{key}Route") or {}
        routes[key] = route.get("path") or "/"
        port = port or int(route.get("port") or 0)
    return port or 8080, routes


def start(fake: Any, deployment: dict[str, Any], environment: dict[str, Any],
          model: dict[str, Any] | None) -> Serving:
    """Download the model, start the container, watch it until ready (on a thread)."""
    name = deployment["id"].split("/onlineEndpoints/")[1].replace("/deployments/", "-")
    serving = Serving(deployment["id"])
    container_port, serving.routes = routes_of(environment)
    serving.port = _free_port()
    env = {"AZUREML_ENDPOINT_NAME": name.split("-")[0],
           "AZUREML_DEPLOYMENT_NAME": deployment["name"],
           **(deployment["properties"].get("environmentVariables") or {})}
    binds: dict[Path, str] = {}
    if model is not None:
        host, inside = _model_folder(fake, deployment, model)
        binds[host] = inside
        env["AZUREML_MODEL_DIR"] = inside
    serving.container = fake.containers.start_served(
        f"azmlfake-{name[:50]}-{fake.session_id[:8]}", environment["properties"]["image"],
        environment=env, binds=binds, ports={f"{container_port}/tcp": serving.port})
    threading.Thread(target=_watch, args=(fake, serving), daemon=True).start()
    return serving


def _model_folder(fake: Any, deployment: dict[str, Any],
                  model: dict[str, Any]) -> tuple[Path, str]:
    parts = model["id"].split("/")
    model_name, version = parts[-3], parts[-1]
    workspace = deployment["id"].split("/onlineEndpoints/")[0]
    stores = {d["name"]: d["properties"]["containerName"]
              for d in fake.store.children(workspace, "datastores")}
    # a model registered from a job's output (azureml://jobs/<job>/outputs/model) is read from
    # the storage behind that output, as the service does
    uri = references.resolve(fake, workspace, model["properties"]["modelUri"])
    container, prefix = fake.blob.locate(uri, stores)
    host = fake.containers.scratch("models", deployment["name"] + "-" + fake.session_id[:6],
                                   model_name, version)
    leaf = PurePosixPath(prefix.rstrip("/")).name or model_name
    if fake.blob.download(container, prefix, host / leaf) == 0:
        raise RuntimeError(f"model {model_name}:{version}: nothing at"
                           f" {model['properties']['modelUri']}")
    return host, f"{MODELS_ROOT}/{model_name}/{version}"


def _watch(fake: Any, serving: Serving) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not serving.stopped.is_set():
        serving.container.reload()
        if serving.container.status in ("exited", "dead"):
            return _failed(fake, serving, "the container exited")
        status = _get(serving.port, serving.routes["readiness"])
        if status == 200:
            fake.store.update(serving.deployment_id, provisioningState="Succeeded")
            return None
        if time.monotonic() > deadline:
            return _failed(fake, serving, f"not ready after {READY_TIMEOUT:.0f} s")
        time.sleep(0.3)
    return None


def _failed(fake: Any, serving: Serving, why: str) -> None:
    tail = logs(serving, LOG_TAIL)
    fake.store.update(serving.deployment_id, provisioningState="Failed")
    fake.deployment_errors[serving.deployment_id.lower()] = {
        "code": "ResourceNotReady", "message": f"User container has crashed or terminated: {why}."
        f" Container logs: {tail}"}


def _get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        return connection.getresponse().status
    except OSError:
        return 0
    finally:
        connection.close()


def logs(serving: Serving, tail: int | None = None) -> str:
    if serving.container is None:
        return ""
    try:
        data = serving.container.logs(tail=tail if tail else "all")
    except Exception:  # noqa: BLE001 - removed meanwhile: no logs to show
        return ""
    return str(data.decode(errors="replace"))


def stop(fake: Any, serving: Serving) -> None:
    serving.stopped.set()
    if serving.container is not None:
        fake.containers.remove(serving.container)


def score(serving: Serving, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
    """Forward one scoring request to the container: ``(status, body, content type)``."""
    connection = http.client.HTTPConnection("127.0.0.1", serving.port, timeout=60)
    try:
        connection.request("POST", serving.routes["scoring"], body=body, headers=headers)
        answer = connection.getresponse()
        return (answer.status, answer.read(),
                answer.getheader("Content-Type", "application/octet-stream"))
    finally:
        connection.close()
