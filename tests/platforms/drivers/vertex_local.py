"""Serve an mldock image with Vertex AI's own local mode and predict, as a Vertex user would.

Runs under the Vertex SDK's venv (``requirements/vertex.txt``), never in the workspace:
``python vertex_local.py IMAGE MODEL PAYLOAD_JSON [ENV_JSON]``.
``LocalModel.deploy_to_local_endpoint`` starts the image the way the SDK does
(``AIP_HTTP_PORT``, ``AIP_HEALTH_ROUTE``, ``AIP_PREDICT_ROUTE`` and ``AIP_STORAGE_URI``, but no
``AIP_MODE``), with the routes the mldock Vertex deployer registers: ``/predict``, ``/health``,
port 8080. ``MODEL`` is a local folder (the SDK bind-mounts it and points ``AIP_STORAGE_URI`` at
the mount) or a ``gs://`` URI (passed on as ``AIP_STORAGE_URI``: the container downloads the
model); ``ENV_JSON`` adds variables to the container (``serving_container_environment_variables``),
e.g. ``STORAGE_EMULATOR_HOST``.

The SDK only *stops* its container when the endpoint closes; this driver removes it (by the id
the endpoint holds) and reports what it saw, so the test can check both. Progress goes to stderr;
the last stdout line is one JSON object.
"""

from __future__ import annotations

import json
import sys

import docker
from google.cloud.aiplatform.prediction import LocalModel

PREDICT_ROUTE = "/predict"
HEALTH_ROUTE = "/health"
PORT = 8080


def log(message: str) -> None:
    print(f"[vertex_local] {message}", file=sys.stderr, flush=True)


def serve_and_predict(image: str, model_dir: str, payload: dict,
                      env: dict[str, str] | None = None) -> dict:
    """Deploy to a local endpoint, check health, predict, close it; return what each step gave."""
    model = LocalModel(serving_container_image_uri=image,
                       serving_container_predict_route=PREDICT_ROUTE,
                       serving_container_health_route=HEALTH_ROUTE,
                       serving_container_ports=[PORT],
                       serving_container_environment_variables=env or None)
    result: dict = {}
    log(f"deploy_to_local_endpoint({image}, artifact_uri={model_dir})")
    endpoint = model.deploy_to_local_endpoint(artifact_uri=model_dir, container_ready_timeout=180)
    try:
        with endpoint:  # serve() on enter (waits for the health route), stop() on exit
            result["container_id"] = endpoint.container.id
            result["container_env"] = _aip_env(endpoint.container)
            health = endpoint.run_health_check()
            result["health_status"] = health.status_code
            log(f"health {health.status_code}; predicting")
            response = endpoint.predict(request=json.dumps(payload),
                                        headers={"Content-Type": "application/json"})
            result["predict_status"] = response.status_code
            result["predict_body"] = response.text
            if response.ok:
                result["predictions"] = response.json().get("predictions")
        result["status_after_stop"] = endpoint.get_container_status()
    finally:
        if endpoint.container is not None:
            result["container_id"] = endpoint.container.id
            result["removed"] = _remove(endpoint.container.id,
                                        show_logs="predictions" not in result)
            endpoint.container = None  # its __del__ would stop() a container that is gone
    return result


def _aip_env(container) -> dict[str, str]:
    """The ``AIP_*`` variables the SDK gave the container (what the runtime has to recognise)."""
    pairs = (item.split("=", 1) for item in container.attrs["Config"]["Env"] or [])
    return {key: value for key, value in pairs if key.startswith("AIP_")}


def _remove(container_id: str, show_logs: bool) -> bool:
    """Remove the container the SDK left stopped; True once the engine no longer knows it.

    When the endpoint failed, the container's own output goes to stderr first: the SDK logs it
    through a logger nobody configured, and it is the only account of why the image gave up.
    """
    client = docker.from_env()
    try:
        container = client.containers.get(container_id)
        if show_logs:
            log("container output:\n" + container.logs(tail=60).decode("utf-8", "replace"))
        container.remove(force=True)
        log(f"removed container {container_id[:12]}")
    except docker.errors.NotFound:
        pass
    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    finally:
        client.close()
    return False


def main(argv: list[str]) -> int:
    image, model_dir, payload_json, *extra = argv
    env = json.loads(extra[0]) if extra else None
    result = serve_and_predict(image, model_dir, json.loads(payload_json), env)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
