"""Serve an mldock image on an Azure ML *local* online endpoint and score, as an Azure user would.

Runs under the Azure ML SDK's venv (``requirements/azure.txt``), never in the workspace:
``python azure_local.py IMAGE MODEL_DIR REQUEST_FILE ENDPOINT_NAME``, with ``HOME`` pointing at a
folder of the test's own (the SDK keeps its local endpoint state in ``~/.azureml/inferencing``).

``local=True`` needs no Azure account: the subscription, resource group and workspace are plain
strings and the credential is a stub whose tokens are never sent anywhere. The deployment comes
from ``tests/platforms/azure/deployment.yml`` (why YAML: see that file), with the image, the model
folder and the endpoint name filled in. The SDK starts the container with
``AZUREML_MODEL_DIR=/var/azureml-app/azureml-models//<name>/<version>`` (the model folder one level
below), waits a fixed 15 s, and ``invoke`` posts the request file's JSON to ``/score``.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import docker
from azure.ai.ml import MLClient, load_online_deployment
from azure.ai.ml.entities import ManagedOnlineEndpoint
from azure.core.credentials import AccessToken

DEPLOYMENT_YAML = Path(__file__).resolve().parent.parent / "azure" / "deployment.yml"
# The labels the SDK puts on its local endpoint containers (LocalEndpointConstants in azure.ai.ml).
LOCAL_ENDPOINT_LABEL = "azureml-local-endpoint"
ENDPOINT_LABEL = "endpoint"


class LocalOnlyCredential:
    """A credential for ``local=True`` calls, which never reach Azure: a placeholder token."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken("local-only-not-a-token", int(time.time()) + 3600)


def log(message: str) -> None:
    print(f"[azure_local] {message}", file=sys.stderr, flush=True)


def client() -> MLClient:
    return MLClient(LocalOnlyCredential(), subscription_id="00000000-0000-0000-0000-000000000000",
                    resource_group_name="mldock-local", workspace_name="mldock-local",
                    enable_telemetry=False, show_progress=False)


def deploy_and_score(image: str, model_dir: str, request_file: str, name: str) -> dict:
    """Create the endpoint and deployment locally, score, delete; return what each step gave."""
    ml_client = client()
    result: dict = {}
    log(f"creating local endpoint {name}")
    ml_client.online_endpoints.begin_create_or_update(ManagedOnlineEndpoint(name=name), local=True)
    try:
        deployment = load_online_deployment(
            DEPLOYMENT_YAML, params_override=[{"endpoint_name": name}, {"model.path": model_dir},
                                              {"environment.image": image}])
        log(f"creating local deployment {deployment.name} of {image} (the SDK sleeps 15 s)")
        ml_client.online_deployments.begin_create_or_update(deployment, local=True)
        state = ml_client.online_endpoints.get(name=name, local=True)
        result["provisioning_state"] = state.provisioning_state
        result["scoring_uri"] = state.scoring_uri
        result["probes"] = _probe(state.scoring_uri, deployment.environment.inference_config)
        result["container"] = _container_facts(name)
        log("invoking /score")
        answer = ml_client.online_endpoints.invoke(endpoint_name=name, request_file=request_file,
                                                   local=True)
        result["answer"] = answer
        result["predictions"] = _predictions(answer)
    except Exception:
        _show_container_output(name)
        raise
    finally:
        volumes = [m["Name"] for c in _containers(name) for m in c["mounts"]
                   if m.get("Type") == "volume"]
        log(f"deleting local endpoint {name}")
        ml_client.online_endpoints.begin_delete(name=name, local=True)
        result["containers_after_delete"] = [c["id"] for c in _containers(name)]
        result.update(_remove_volumes(volumes))
    return result


def _probe(scoring_uri: str, inference_config: object, wait: float = 120) -> dict[str, int]:
    """GET the liveness and readiness routes the deployment declares, on the endpoint's port.

    The local SDK never probes (it sleeps a fixed 15 s instead); Azure probes, and routes traffic
    only once readiness answers 200, so wait for that as Azure would (a loaded machine may need
    longer than 15 s to import the model's libraries), then report both answers.
    """
    base = urllib.parse.urlsplit(scoring_uri)
    urls = {kind: urllib.parse.urlunsplit((base.scheme, base.netloc,
                                           getattr(inference_config, kind).path, "", ""))
            for kind in ("liveness_route", "readiness_route")}
    deadline = time.monotonic() + wait
    while _status(urls["readiness_route"]) != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    return {urllib.parse.urlsplit(url).path: _status(url) for url in urls.values()}


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def _predictions(answer: str) -> object:
    """``invoke`` returns the body as text (JSON-encoded once more by some SDK versions)."""
    decoded = json.loads(answer)
    if isinstance(decoded, str):
        decoded = json.loads(decoded)
    return decoded.get("predictions") if isinstance(decoded, dict) else decoded


def _labels(name: str) -> dict:
    return {"label": [LOCAL_ENDPOINT_LABEL, f"{ENDPOINT_LABEL}={name}"]}


def _containers(name: str) -> list[dict]:
    engine = docker.from_env()
    try:
        found = engine.containers.list(all=True, filters=_labels(name))
        return [{"id": c.id, "status": c.status, "env": c.attrs["Config"]["Env"] or [],
                 "mounts": c.attrs.get("Mounts") or []} for c in found]
    finally:
        engine.close()


def _container_facts(name: str) -> dict:
    """The one container of the endpoint: its state, Azure variables and model mount."""
    (found,) = _containers(name)
    env = dict(item.split("=", 1) for item in found["env"])
    return {"id": found["id"], "status": found["status"],
            "env": {k: v for k, v in env.items() if k.startswith(("AZUREML_", "AML_"))},
            "mounts": [{k: m.get(k) for k in ("Type", "Name", "Source", "Destination")}
                       for m in found["mounts"]]}


def _remove_volumes(names: list[str]) -> dict:
    """Remove the anonymous volumes the endpoint's container had; say which the SDK left behind.

    The SDK passes the model mount to docker-py as ``"SRC:DEST:z"``; docker-py strips only
    ``:ro``/``:rw`` when it declares the container's volumes, so ``DEST:z`` becomes an anonymous
    volume, and the SDK's delete removes the container without its volumes (azure-ai-ml 1.35.2,
    docker 7.2; no upstream issue found).
    """
    engine = docker.from_env()
    left, removed = [], []
    try:
        for volume_name in names:
            try:
                volume = engine.volumes.get(volume_name)
            except docker.errors.NotFound:
                continue
            left.append(volume_name)
            volume.remove(force=True)
            removed.append(volume_name)
    finally:
        engine.close()
    return {"volumes": names, "volumes_left_by_sdk": left, "volumes_removed": removed}


def _show_container_output(name: str) -> None:
    """On failure, the container's own output is the account of why: put it on stderr."""
    engine = docker.from_env()
    try:
        for container in engine.containers.list(all=True,
                                                filters=_labels(name)):
            output = container.logs(tail=60).decode("utf-8", "replace")
            log(f"container {container.short_id} ({container.status}) output:\n{output}")
    finally:
        engine.close()


def main(argv: list[str]) -> int:
    image, model_dir, request_file, name = argv
    print(json.dumps(deploy_and_score(image, model_dir, request_file, name)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
