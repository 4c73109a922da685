"""A deployed model's serving container, started the way Vertex AI starts it.

The model's ``containerSpec`` (image, command, args, env, routes, port) runs with host
networking on a free port given as ``AIP_HTTP_PORT``, with ``AIP_HEALTH_ROUTE``,
``AIP_PREDICT_ROUTE``, ``AIP_STORAGE_URI`` (the model's ``artifactUri``), ``AIP_MODE=PREDICTION``,
``AIP_DEPLOYED_MODEL_ID``, ``AIP_ENDPOINT_ID``, ``AIP_MACHINE_TYPE`` and
``STORAGE_EMULATOR_HOST``. It is ready when its health route answers 200; a container that
exits, or never gets ready within ``fake.deploy_timeout_s``, fails the deployment with Vertex's
message.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from mldock.testing.processes import free_port, http_request

from vertex_fake import containers as engine
from vertex_fake.errors import ApiError

DEFAULT_HEALTH = "/health"   # Vertex AI derives defaults from the ids; fixed routes are enough
DEFAULT_PREDICT = "/predict"
NEVER_READY = ("Model server never became ready. Please validate that your model file or"
               " container configuration are valid.")


@dataclass
class Server:
    """A running serving container."""

    container: Any
    port: int
    health_route: str
    predict_route: str

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def post(self, body: bytes, content_type: str = "application/json",
             timeout: float = 120.0) -> tuple[int, dict[str, str], bytes]:
        return http_request("POST", self.url + self.predict_route, body,
                            {"Content-Type": content_type}, timeout=timeout)


def start(fake: Any, model: Any, *, name: str, deployed_model_id: str, endpoint_id: str,
          machine_type: str, mode: str = "PREDICTION") -> Server:
    """Start ``model``'s container and wait for its health route (ApiError if it never
    answers 200)."""
    spec = model.container_spec
    docker = engine.containers(fake)
    try:
        docker.ensure_image(spec.image_uri)
    except engine.ImageUnavailable as exc:
        raise ApiError("INVALID_ARGUMENT", str(exc)) from exc
    port = free_port()
    health = spec.health_route or DEFAULT_HEALTH
    predict = spec.predict_route or DEFAULT_PREDICT
    env = {var.name: var.value for var in spec.env}
    env.update({"AIP_HTTP_PORT": str(port), "AIP_HEALTH_ROUTE": health,
                "AIP_PREDICT_ROUTE": predict, "AIP_STORAGE_URI": model.artifact_uri,
                "AIP_MODE": mode, "AIP_DEPLOYED_MODEL_ID": deployed_model_id,
                "AIP_ENDPOINT_ID": endpoint_id, "AIP_MACHINE_TYPE": machine_type})
    if not model.artifact_uri:
        env.pop("AIP_STORAGE_URI")
    if fake.storage_emulator:
        env["STORAGE_EMULATOR_HOST"] = fake.storage_emulator
    container = docker.run(spec.image_uri, name=name, env=env, command=list(spec.command),
                           args=list(spec.args),
                           labels={"mldock.test.vertex-deployed-model": deployed_model_id})
    server = Server(container, port, health, predict)
    try:
        _wait_ready(fake, server)
    except ApiError:
        docker.remove(container)
        raise
    return server


def _wait_ready(fake: Any, server: Server) -> None:
    deadline = time.monotonic() + fake.deploy_timeout_s
    while time.monotonic() < deadline:
        server.container.reload()
        if server.container.status in ("exited", "dead"):
            tail = server.container.logs(tail=5).decode("utf-8", "replace").strip()
            raise ApiError("INVALID_ARGUMENT", f"{NEVER_READY} The container exited with"
                           f" status {server.container.attrs['State']['ExitCode']}: {tail[-500:]}")
        with contextlib.suppress(OSError):
            status, _, _ = http_request("GET", server.url + server.health_route, timeout=5)
            if status == 200:
                return
        time.sleep(0.2)
    raise ApiError("DEADLINE_EXCEEDED", NEVER_READY)


def stop(fake: Any, server: Server) -> None:
    engine.containers(fake).remove(server.container)
