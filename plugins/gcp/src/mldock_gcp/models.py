"""Vertex AI models: the image as serving container over a model folder, and the long-running
operations that upload, deploy and delete them.

Endpoints (:mod:`mldock_gcp.serving`) and batch jobs (:mod:`mldock_gcp.batch`) both start by
uploading a model; a Vertex model is the pair (image, ``artifactUri``) plus how to run it: the
runtime's port and routes. Vertex adds the ``AIP_*`` variables itself, which is how the runtime
knows it serves on Vertex.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from mldock.errors import MldockError, NotFoundError

from mldock_gcp.clients import VertexClients
from mldock_gcp.config import VertexOptions
from mldock_gcp.errors import translated

SERVING_PORT = 8080  # the runtime's default; Vertex passes it again as AIP_HTTP_PORT
PREDICT_ROUTE = "/predict"  # the runtime answers these (and $AIP_PREDICT_ROUTE / _HEALTH_ROUTE)
HEALTH_ROUTE = "/health"


def wait_operation(operation: Any, *, action: str, resource: str | None = None,
                   timeout_s: float, poll_s: float) -> Any:
    """The result of a long-running operation, polled every ``poll_s`` for ``timeout_s`` at most.

    Its error (Vertex's ``google.rpc.Status``) becomes one :class:`MldockError` line. A timeout
    leaves the operation running on Vertex (it may still succeed) and says so.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        with translated(action, resource=resource):
            if operation.done():
                return operation.result()
        if time.monotonic() >= deadline:
            name = getattr(getattr(operation, "operation", None), "name", "") or "its operation"
            raise MldockError(f"cannot {action}: still running after {timeout_s:g} s ({name})",
                              hint="it may still finish on Vertex AI: check 'mldock --env gcp"
                                   " deploy --list', or raise deploy_timeout_s")
        time.sleep(poll_s)


def model_resource(*, name: str, image: str, artifact_uri: str, labels: Mapping[str, str],
                   environment: Mapping[str, str], options: VertexOptions) -> Any:
    """The Vertex ``Model`` to upload: the image serving ``artifact_uri`` on the runtime's port
    and routes. Vertex adds the ``AIP_*`` variables itself (the runtime detects Vertex by them);
    it refuses user variables starting with ``AIP_``, so none is set here."""
    from google.cloud import aiplatform_v1 as aip

    spec = aip.ModelContainerSpec(
        image_uri=image, env=[aip.EnvVar(name=k, value=str(v)) for k, v in environment.items()],
        ports=[aip.Port(container_port=SERVING_PORT)], predict_route=PREDICT_ROUTE,
        health_route=HEALTH_ROUTE)
    model = aip.Model(display_name=name, artifact_uri=artifact_uri, container_spec=spec,
                      labels=dict(labels))
    if options.encryption_key:
        model.encryption_spec = aip.EncryptionSpec(kms_key_name=options.encryption_key)
    return model


def upload_model(clients: VertexClients, model: Any, *, timeout_s: float,
                 poll_s: float) -> str:
    """Upload ``model`` (ModelService.UploadModel, an operation); its resource name."""
    with translated(f"upload model {model.display_name}", resource=f"model {model.display_name}"):
        operation = clients.models.upload_model(parent=clients.parent, model=model)
    done = wait_operation(operation, action=f"upload model {model.display_name}",
                          timeout_s=timeout_s, poll_s=poll_s)
    return str(done.model)


def delete_model(clients: VertexClients, model: str, *, timeout_s: float, poll_s: float) -> None:
    """Delete a model; one that is gone already is fine."""
    try:
        with translated(f"delete model {model}", resource=f"model {model}"):
            operation = clients.models.delete_model(name=model)
        wait_operation(operation, action=f"delete model {model}", resource=f"model {model}",
                       timeout_s=timeout_s, poll_s=poll_s)
    except NotFoundError:
        pass
