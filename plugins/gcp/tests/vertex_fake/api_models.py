"""Vertex AI ``models``: ``:upload`` (an operation), get, list, delete (an operation).

An upload is checked like the service checks it (display name, labels, a container image,
routes that start with ``/``, at most one port, ``gs://`` artifact URI, env names) and becomes a
``Model`` with ``versionId`` 1 (or the next version of ``parentModel``). A model still deployed
to an endpoint cannot be deleted (FAILED_PRECONDITION naming the endpoint).
"""

from __future__ import annotations

import re
import threading
from typing import Any

from vertex_fake import listing, validate, wire
from vertex_fake.api_jobs import ENV_NAME, delete_metadata
from vertex_fake.errors import ApiError, invalid
from vertex_fake.routing import Request

BASE = "/v1/projects/{project}/locations/{location}/models"
MODEL_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


def _types() -> Any:
    from google.cloud.aiplatform_v1 import types

    return types


def finish_later(fake: Any, operation: Any, response: Any) -> None:
    """Finish ``operation`` after ``fake.operation_delay_s``: clients must really poll."""
    timer = threading.Timer(fake.operation_delay_s, operation.finish, args=(response,))
    timer.daemon = True
    timer.start()


def check_model(model: Any) -> None:
    validate.display_name(model.display_name, "model.display_name")
    validate.labels(model.labels, "model.labels")
    validate.encryption(model.encryption_spec, "model.encryption_spec")
    spec = model.container_spec
    validate.image_uri(spec.image_uri, "model.container_spec.image_uri")
    for field in ("predict_route", "health_route"):
        route = getattr(spec, field)
        if route and not route.startswith("/"):
            raise invalid(f"model.container_spec.{field} must start with '/'.",
                          f"model.container_spec.{field}")
    if len(spec.ports) > 1:
        raise invalid("model.container_spec.ports: at most one port is supported.",
                      "model.container_spec.ports")
    for port in spec.ports:
        if not 1 <= port.container_port <= 65535:
            raise invalid(f"model.container_spec.ports: invalid port {port.container_port}.",
                          "model.container_spec.ports")
    for var in spec.env:
        if not ENV_NAME.fullmatch(var.name) or var.name.startswith("AIP_"):
            raise invalid(f"model.container_spec.env: {var.name!r} is invalid or reserved"
                          " (AIP_ variables are set by Vertex AI).", "model.container_spec.env")
    validate.gcs_uri(model.artifact_uri, "model.artifact_uri")


def upload(fake: Any, request: Request) -> Any:
    types = _types()
    parent = fake.parent(request.params, "aiplatform.models.upload")
    upload_request = request.message(types.UploadModelRequest, parent=parent)
    model = upload_request.model
    check_model(model)
    if upload_request.model_id and not MODEL_ID.fullmatch(upload_request.model_id):
        raise invalid("model_id must be 1-63 lowercase letters, digits, '_' or '-'.",
                      "model_id")
    version = "1"
    if upload_request.parent_model:
        previous = fake.model(upload_request.parent_model)
        name = previous.name
        version = str(int(previous.version_id or "1") + 1)
    else:
        name = f"{parent}/models/{upload_request.model_id or wire.new_id()}"
        if name in {m.name for m in fake.list("models")}:
            raise ApiError("ALREADY_EXISTS", f"Model {name} already exists.")
    for field in ("name", "create_time", "update_time", "version_id", "deployed_models"):
        model._pb.ClearField(field)
    model.name, model.version_id = name, version
    model.version_aliases.append("default")
    model.create_time = model.update_time = model.version_create_time = \
        model.version_update_time = wire.now()
    model.supported_deployment_resources_types = [
        types.Model.DeploymentResourcesType.DEDICATED_RESOURCES]
    fake.put("models", name, model)
    operation = fake.operations.start(name, types.UploadModelOperationMetadata(
        generic_metadata=types.GenericOperationMetadata(create_time=wire.now())))
    finish_later(fake, operation, types.UploadModelResponse(model=name, model_version_id=version))
    return operation


def _name(fake: Any, request: Request, permission: str) -> str:
    parent = fake.parent(request.params, permission)
    return f"{parent}/models/{request.params['model'].split('@', 1)[0]}"


def get(fake: Any, request: Request) -> Any:
    return fake.model(_name(fake, request, "aiplatform.models.get"))


def list_models(fake: Any, request: Request) -> dict[str, Any]:
    parent = fake.parent(request.params, "aiplatform.models.list")
    return listing.page(fake, request, "models", parent, "models")


def delete(fake: Any, request: Request) -> Any:
    from google.protobuf import empty_pb2

    name = _name(fake, request, "aiplatform.models.delete")
    with fake.lock:
        model = fake.model(name)
        users = [endpoint.name for endpoint in fake.list("endpoints")
                 if any(d.model == model.name for d in endpoint.deployed_models)]
        if users:
            raise ApiError("FAILED_PRECONDITION", f"The Model \"{name}\" is deployed or being"
                           f" deployed at the following Endpoint(s): {', '.join(users)}.")
        fake.remove("models", name)
    operation = fake.operations.start(name, delete_metadata())
    finish_later(fake, operation, empty_pb2.Empty())
    return operation


ROUTES = [
    ("POST", BASE + ":upload", upload),
    ("GET", BASE, list_models),
    ("GET", BASE + "/{model}", get),
    ("DELETE", BASE + "/{model}", delete),
]
